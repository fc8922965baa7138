//! Single sign-on with OpenID Connect providers: `GET /auth/oidc/{provider}/start` sends the
//! browser to the provider; `GET /auth/oidc/{provider}/callback` checks what comes back and
//! sends the browser to the SPA with a single-use login code (or an error) in the URL
//! fragment. The SPA exchanges the code at `POST /auth/exchange` ([`super::sso`]).
//!
//! The protocol is the `openidconnect` crate's ([`provider`]); rollcall adds the state kept
//! across instances ([`states`]), the claim mapping (`domain::identity`) and the accounts
//! ([`accounts`]).

pub mod accounts;
pub mod provider;
pub mod states;

use std::net::SocketAddr;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::Connection;
use url::Url;

use super::Authenticator;
use super::sessions::{digest, random_secret};
use super::sso::{self, Provider as ListedProvider};
use crate::config::sso::SsoSettings;
use crate::db;
use crate::error::{ApiError, problems};
use provider::Provider;

/// Why a sign-in failed, as the SPA reads it from `#login_error=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// No state, an unknown, used or expired one, or one started in another browser.
    InvalidState,
    /// The provider refused, failed, was unreachable or too slow, or the user cancelled.
    ProviderError,
    /// The ID token's signature, issuer, audience, times or nonce did not hold up.
    InvalidIdToken,
    AccountDisabled,
    /// The identity is not linked and its claims may not create (or link) an account.
    NoAccount,
}

impl SignInError {
    pub fn code(self) -> &'static str {
        match self {
            SignInError::InvalidState => "invalid_state",
            SignInError::ProviderError => "provider_error",
            SignInError::InvalidIdToken => "invalid_id_token",
            SignInError::AccountDisabled => "account_disabled",
            SignInError::NoAccount => "no_account",
        }
    }
}

/// The configured providers, and where their callbacks send the browser.
pub struct Sso {
    providers: Vec<Provider>,
    /// Bounds the pending sign-ins anonymous clients can make this instance store.
    starts: StartBudget,
    spa_url: Url,
    cookie_path: String,
    secure_cookies: bool,
    /// Without `ROLLCALL_PUBLIC_URL` (a local try): the host the callback comes back to.
    /// A browser that starts at another name for this server (`localhost` for `127.0.0.1`)
    /// is sent there first, or the cookie set at `/start` would not come back with it.
    default_host: Option<String>,
}

impl Sso {
    /// `bound` is the address the server listens on: without `ROLLCALL_PUBLIC_URL`, the
    /// public URL is `http://` and that address (loopback for a wildcard bind).
    pub fn new(settings: &SsoSettings, bound: SocketAddr) -> anyhow::Result<Self> {
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => {
                let mut addr = bound;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Url::parse(&format!("http://{addr}"))?
            }
        };
        let base = public_url.as_str().trim_end_matches('/').to_owned();
        let providers = settings
            .providers
            .iter()
            .map(|provider| Provider::new(provider.clone(), &base))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for provider in &providers {
            tracing::info!(
                provider = provider.settings.id,
                issuer = provider.settings.issuer,
                redirect_uri = provider.redirect_uri(),
                "single sign-on provider configured"
            );
            if provider.settings.claims.role.is_none() {
                tracing::warn!(
                    provider = provider.settings.id,
                    "ROLLCALL_OIDC_{}_ROLE_CLAIM is not set: first sign-ins cannot create accounts",
                    provider.settings.id.to_uppercase()
                );
            }
        }
        let mut spa_url = settings.spa_url.clone().unwrap_or_else(|| public_url.clone());
        spa_url.set_fragment(None);
        Ok(Self {
            providers,
            starts: StartBudget::default(),
            spa_url,
            cookie_path: format!("{}/api/v1/auth/oidc/", public_url.path().trim_end_matches('/')),
            secure_cookies: public_url.scheme() == "https",
            default_host: settings
                .public_url
                .is_none()
                .then(|| public_url[url::Position::BeforeHost..url::Position::AfterPort].to_owned()),
        })
    }

    pub fn listed(&self) -> Vec<ListedProvider> {
        self.providers
            .iter()
            .map(|p| ListedProvider { id: p.settings.id.clone(), name: p.settings.name.clone() })
            .collect()
    }

    fn provider(&self, id: &str) -> Result<&Provider, ApiError> {
        self.providers
            .iter()
            .find(|p| p.settings.id == id)
            .ok_or(ApiError::NotFound("no such identity provider"))
    }

    /// 302 to the SPA with `#login_code=…` or `#login_error=…`.
    fn to_spa(&self, outcome: Result<String, SignInError>) -> HttpResponse {
        let fragment = match outcome {
            Ok(code) => format!("login_code={code}"),
            Err(error) => format!("login_error={}", error.code()),
        };
        redirect(&format!("{}#{fragment}", self.spa_url))
    }

    /// The cookie that binds one sign-in to its browser: named after the state, so that
    /// sign-ins in two tabs do not undo each other.
    fn cookie<'c>(&self, state: &str, value: String) -> Cookie<'c> {
        Cookie::build(cookie_name(state), value)
            .path(self.cookie_path.clone())
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(CookieDuration::seconds(states::STATE_TTL.num_seconds()))
            .finish()
    }
}

/// Sign-ins this instance starts per ten minutes (the life of a pending one), so anonymous
/// `/start`s cannot fill the database; a lecture hall of 1,000 fits many times over.
const STARTS_PER_WINDOW: u32 = 20_000;
const START_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Default)]
struct StartBudget(std::sync::Mutex<Option<(std::time::Instant, u32)>>);

impl StartBudget {
    fn take(&self) -> Result<(), ApiError> {
        let mut window = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let (started, count) = match *window {
            Some((started, count)) if now.duration_since(started) < START_WINDOW => (started, count),
            _ => (now, 0),
        };
        if count >= STARTS_PER_WINDOW {
            return Err(ApiError::ServerBusy("too many sign-ins are under way"));
        }
        *window = Some((started, count + 1));
        Ok(())
    }
}

fn cookie_name(state: &str) -> String {
    format!("rollcall_oidc_{}", &hex::encode(digest(state))[..16])
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

problems!(StartProblems {
    ApiError::NotFound("") => "No provider with this id is configured",
    ApiError::ServerBusy("") => "More sign-ins are under way on this instance than it keeps",
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

/// Start signing in at an identity provider.
///
/// Redirects (302) to the provider's authorization endpoint (authorization code flow with
/// PKCE S256, `state` and `nonce`), and sets a short-lived HttpOnly, SameSite=Lax cookie
/// that binds the sign-in to this browser. When the provider cannot be reached, redirects
/// to the SPA with `#login_error=provider_error` instead. Meant for a top-level browser
/// navigation (a link or `location.assign`), not for `fetch`.
#[utoipa::path(
    tag = "auth",
    security(()),
    params(("provider" = String, Path, description = "A provider id from `GET /auth/providers`", example = "uni")),
    responses(
        (status = 302, description = "To the provider (or, when it is unreachable, to the SPA with `#login_error=provider_error`)",
            headers(("Location" = String, description = "Where the browser goes next"),
                    ("Set-Cookie" = String, description = "`rollcall_oidc_…`: binds the sign-in to this browser"))),
        StartProblems
    )
)]
#[get("/auth/oidc/{provider}/start")]
pub async fn start(
    req: HttpRequest,
    sso: web::Data<Sso>,
    auth: web::Data<Authenticator>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = sso.provider(&path)?;
    if let Some(host) = &sso.default_host
        && req.connection_info().host() != host
    {
        return Ok(redirect(&format!("http://{host}{}", req.uri())));
    }
    sso.starts.take()?;
    let now = auth.clock.now();
    let authorization = match provider.authorize(now).await {
        Ok(authorization) => authorization,
        Err(error) => return Ok(sso.to_spa(Err(error))),
    };
    let browser_secret = random_secret::<32>();
    let (state, nonce, verifier) =
        (authorization.state.clone(), authorization.nonce.clone(), authorization.pkce_verifier.clone());
    let (provider_id, secret) = (provider.settings.id.clone(), browser_secret.clone());
    db::run(&auth.pool, move |conn| {
        let new = states::NewState {
            state: &state,
            provider: &provider_id,
            browser_secret: &secret,
            nonce: &nonce,
            pkce_verifier: &verifier,
        };
        Ok::<_, ApiError>(states::save(conn, &new, now)?)
    })
    .await?;
    let mut response = redirect(&authorization.url);
    response
        .add_cookie(&sso.cookie(&authorization.state, browser_secret))
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("cookie: {e}")))?;
    Ok(response)
}

problems!(CallbackProblems {
    ApiError::NotFound("") => "No provider with this id is configured",
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

/// The provider's redirect back to rollcall.
///
/// Checks `state` (single-use, from this browser, any instance), exchanges `code` with
/// the PKCE verifier, verifies the ID token, maps the claims to an account, and redirects
/// (302) to the SPA (`ROLLCALL_SPA_URL`) with `#login_code=…` (exchange it at
/// `POST /auth/exchange` within 60 s) or `#login_error=` one of `invalid_state`,
/// `provider_error`, `invalid_id_token`, `account_disabled`, `no_account`.
#[utoipa::path(
    tag = "auth",
    security(()),
    params(
        ("provider" = String, Path, description = "The provider id", example = "uni"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state `/start` sent"),
        ("error" = Option<String>, Query, description = "The provider's error (e.g. `access_denied` when the user cancelled)"),
        ("iss" = Option<String>, Query, description = "The provider's issuer (RFC 9207); checked when present"),
    ),
    responses(
        (status = 302, description = "To the SPA with `#login_code=…` or `#login_error=…`",
            headers(("Location" = String, description = "`<ROLLCALL_SPA_URL>#login_code=…` or `#login_error=…`"))),
        CallbackProblems
    )
)]
#[get("/auth/oidc/{provider}/callback")]
pub async fn callback(
    req: HttpRequest,
    sso: web::Data<Sso>,
    auth: web::Data<Authenticator>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = sso.provider(&path)?;
    let query = Callback::parse(req.query_string());
    let Some(state) = query.state.filter(|s| s.len() <= 256) else {
        return Ok(sso.to_spa(Err(SignInError::InvalidState)));
    };
    let now = auth.clock.now();
    let cookie = req.cookie(&cookie_name(&state)).map(|c| c.value().to_owned());
    let taken = {
        let state = state.clone();
        db::run(&auth.pool, move |conn| Ok::<_, ApiError>(states::take(conn, &state)?)).await?
    };
    let outcome = match taken {
        Some(pending) if pending.fits(&provider.settings.id, cookie.as_deref(), now) => {
            sign_in(provider, &auth, query.code, query.error, query.iss, pending, now).await?
        }
        _ => Err(SignInError::InvalidState),
    };
    match &outcome {
        Ok(_) => tracing::info!(provider = provider.settings.id, "single sign-on: login code issued"),
        Err(error) => {
            tracing::info!(provider = provider.settings.id, outcome = error.code(), "single sign-on refused")
        }
    }
    let mut response = sso.to_spa(outcome);
    if cookie.is_some() {
        let mut gone = sso.cookie(&state, String::new());
        gone.make_removal();
        response.add_cookie(&gone).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("cookie: {e}")))?;
    }
    Ok(response)
}

/// The rest of a callback, once its state was found good: the provider's answer, then the
/// account. `Ok(Err(_))` is a refusal for the SPA; `Err(_)` is rollcall's own failure.
async fn sign_in(
    provider: &Provider,
    auth: &Authenticator,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
    pending: states::Pending,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<String, SignInError>, ApiError> {
    if error.is_some() {
        return Ok(Err(SignInError::ProviderError));
    }
    // RFC 9207: an `iss` naming another issuer is a mix-up.
    if iss.is_some_and(|iss| iss != provider.settings.issuer) {
        return Ok(Err(SignInError::ProviderError));
    }
    let Some(code) = code else { return Ok(Err(SignInError::ProviderError)) };
    let identity = match provider.finish(code, pending.pkce_verifier, pending.nonce, now).await {
        Ok(identity) => identity,
        Err(error) => return Ok(Err(error)),
    };
    let profile = provider.settings.claims.profile(&identity.claims);
    let settings = provider.settings.clone();
    db::run(&auth.pool, move |conn| {
        conn.transaction(|conn| {
            Ok(match accounts::sign_in(conn, &settings, &identity.subject, &profile, now)? {
                Ok(user_id) => Ok(sso::issue(conn, user_id, now)?),
                Err(refused) => Err(refused),
            })
        })
    })
    .await
}

/// The callback's query, read leniently (a repeated parameter's last value counts): a
/// missing or bad parameter is the sign-in's failure, never a 400 page in the browser.
#[derive(Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

impl Callback {
    fn parse(query: &str) -> Self {
        let mut found = Callback::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut found.code,
                "state" => &mut found.state,
                "error" => &mut found.error,
                "iss" => &mut found.iss,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        found
    }
}

//! Talking to one OpenID provider, through the `openidconnect` crate: discovery (lazy,
//! cached), the authorization URL with PKCE S256, `state` and `nonce`, the code exchange,
//! the ID token's verification against the provider's JWKS (refetched on an unknown `kid`,
//! at most once a minute), and userinfo for claims the ID token lacks.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, JwsSigningAlgorithm, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, UserInfoClaims,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::SignInError;
use crate::config::sso::ProviderSettings;

/// `iat` and `exp` may be this far off the provider's clock.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);
/// A JWKS is fetched again for an unknown `kid` at most this often.
const JWKS_REFETCH_AFTER: TimeDelta = TimeDelta::seconds(60);
/// Discovery is repeated after this long, so a provider's changed endpoints are picked up.
const METADATA_TTL: TimeDelta = TimeDelta::hours(24);
/// After a failed discovery, sign-ins fail at once for this long instead of each waiting
/// for the provider again.
const DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);

/// Every claim, whatever its name: the operator's mapping decides which matter.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AllClaims {
    #[serde(flatten)]
    rest: Map<String, Value>,
}
impl AdditionalClaims for AllClaims {}

type IdFields = IdTokenFields<
    AllClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenAnswer = StandardTokenResponse<IdFields, CoreTokenType>;
type RpClient = Client<
    AllClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenAnswer,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What `/start` keeps for the callback, and where it sends the browser.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified sign-in: the subject, and every claim (ID token first, then userinfo).
pub struct Identity {
    pub subject: String,
    pub claims: Map<String, Value>,
}

struct Discovered {
    metadata: CoreProviderMetadata,
    discovered_at: DateTime<Utc>,
    jwks_fetched_at: DateTime<Utc>,
}

#[derive(Default)]
struct Cache {
    discovered: Option<Discovered>,
}

pub struct Provider {
    pub settings: ProviderSettings,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
    /// One discovery or JWKS fetch at a time; sign-ins wait for it rather than repeat it.
    cache: Mutex<Cache>,
    /// When discovery last failed (or hung): sign-ins fail at once for a few seconds after.
    failed_at: std::sync::Mutex<Option<Instant>>,
}

impl Provider {
    pub fn new(settings: ProviderSettings, public_url: &str) -> anyhow::Result<Self> {
        let redirect_uri = RedirectUrl::new(format!(
            "{}/api/v1/auth/oidc/{}/callback",
            public_url.trim_end_matches('/'),
            settings.id
        ))?;
        let http = reqwest::Client::builder()
            // Following redirects would let a provider point rollcall anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            settings,
            redirect_uri,
            http,
            cache: Mutex::new(Cache::default()),
            failed_at: Default::default(),
        })
    }

    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }

    /// The authorization URL for a new sign-in, with fresh `state`, `nonce` and PKCE verifier.
    pub async fn authorize(&self, now: DateTime<Utc>) -> Result<Authorization, SignInError> {
        let metadata = self.metadata(now).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(metadata);
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                || CsrfToken::new_random_len(32),
                || Nonce::new_random_len(32),
            )
            .add_scopes(self.settings.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.into(),
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.into_secret(),
        })
    }

    /// Exchanges the authorization code, verifies the ID token, and gathers the claims.
    /// Bounded by the provider timeout as a whole.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
        now: DateTime<Utc>,
    ) -> Result<Identity, SignInError> {
        tokio::time::timeout(self.settings.timeout, self.finish_unbounded(code, pkce_verifier, nonce, now))
            .await
            .unwrap_or_else(|_| Err(self.failed("no answer in time")))
    }

    async fn finish_unbounded(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
        now: DateTime<Utc>,
    ) -> Result<Identity, SignInError> {
        let metadata = self.metadata(now).await?;
        let client = self.client(metadata.clone());
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| self.failed("the provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                // The ID token is decoded with the answer: a malformed one fails here.
                RequestTokenError::Parse(..) => self.refused(&format!("token answer: {error}")),
                other => self.failed(&format!("code exchange: {other}")),
            })?;
        let id_token = answer.extra_fields().id_token().ok_or(SignInError::InvalidIdToken)?;
        let nonce = Nonce::new(nonce);
        let verified = match id_token.claims(&self.verifier(&metadata, metadata.jwks().clone(), now), &nonce)
        {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys since they were fetched (by this
                // sign-in's discovery, or by another sign-in meanwhile).
                let jwks = self.keys_for_unknown_kid(now).await?;
                id_token.claims(&self.verifier(&metadata, jwks, now), &nonce).cloned()
            }
            other => other.cloned(),
        }
        .map_err(|error| self.refused(&error.to_string()))?;
        let subject = verified.subject().as_str().to_owned();
        let mut claims = match serde_json::to_value(&verified) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(SignInError::InvalidIdToken),
        };
        let missing = self.settings.claims.names().any(|name| !claims.contains_key(name));
        if missing
            && let Ok(request) =
                client.user_info(answer.access_token().clone(), Some(verified.subject().clone()))
        {
            let info: UserInfoClaims<AllClaims, CoreGenderClaim> = request
                .request_async(&self.http)
                .await
                .map_err(|error| self.failed(&format!("userinfo: {error}")))?;
            if let Ok(Value::Object(more)) = serde_json::to_value(&info) {
                for (name, value) in more {
                    claims.entry(name).or_insert(value);
                }
            }
        }
        Ok(Identity { subject, claims })
    }

    fn client(&self, metadata: CoreProviderMetadata) -> RpClient {
        let secret_post_only = metadata.token_endpoint_auth_methods_supported().is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        let client = RpClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|secret| ClientSecret::new(secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        if secret_post_only { client.set_auth_type(AuthType::RequestBody) } else { client }
    }

    /// Checks signature (asymmetric algorithms the provider announces; never `none`, never
    /// the client secret), `iss`, `aud` (no untrusted extra audience), `exp` and `iat` with
    /// 60 s of skew, and the nonce (by the caller).
    fn verifier(
        &self,
        metadata: &CoreProviderMetadata,
        jwks: CoreJsonWebKeySet,
        now: DateTime<Utc>,
    ) -> CoreIdTokenVerifier<'static> {
        let mut algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| !alg.uses_shared_secret() && **alg != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect();
        if algorithms.is_empty() {
            algorithms.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
        }
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.settings.client_id.clone()),
            metadata.issuer().clone(),
            jwks,
        )
        .set_allowed_algs(algorithms)
        // `exp` is checked against `time_fn() >= exp`: a token may be up to 60 s past it.
        .set_time_fn(move || now - CLOCK_SKEW)
        .set_issue_time_verifier_fn(move |iat| {
            if iat <= now + CLOCK_SKEW { Ok(()) } else { Err(format!("issued in the future ({iat})")) }
        })
    }

    /// The provider's metadata (with its JWKS), discovered on first use and cached.
    async fn metadata(&self, now: DateTime<Utc>) -> Result<CoreProviderMetadata, SignInError> {
        if self.recently_failed() {
            return Err(SignInError::ProviderError);
        }
        let mut cache = self.cache.lock().await;
        if let Some(found) = &cache.discovered
            && now - found.discovered_at < METADATA_TTL
        {
            return Ok(found.metadata.clone());
        }
        if self.recently_failed() {
            return Err(SignInError::ProviderError);
        }
        let issuer =
            IssuerUrl::new(self.settings.issuer.clone()).map_err(|_| self.failed("bad issuer URL"))?;
        // Bounded here, where a failure is recorded: a provider that accepts and never
        // answers makes the next sign-ins fail at once, like one that refuses. (Waiting for the
        // lock is bounded by its holder's discovery.)
        let discovered = tokio::time::timeout(
            self.settings.timeout,
            CoreProviderMetadata::discover_async(issuer, &self.http),
        )
        .await
        .map_err(|_| "no answer in time".to_owned())
        .and_then(|result| result.map_err(|error| error.to_string()));
        match discovered {
            Ok(metadata) => {
                cache.discovered =
                    Some(Discovered { metadata: metadata.clone(), discovered_at: now, jwks_fetched_at: now });
                Ok(metadata)
            }
            Err(error) => match &cache.discovered {
                // A day-old copy is better than none while the provider's discovery fails.
                Some(found) => {
                    tracing::warn!(provider = self.settings.id, "rediscovery failed, metadata kept: {error}");
                    Ok(found.metadata.clone())
                }
                None => {
                    self.mark_failed();
                    Err(self.failed(&format!("discovery: {error}")))
                }
            },
        }
    }

    fn recently_failed(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < DISCOVERY_BACKOFF)
    }

    fn mark_failed(&self) {
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// The keys to try again with after an unknown `kid`: fetched anew, unless that happened
    /// less than a minute ago; then the cached ones (which another sign-in may have renewed).
    async fn keys_for_unknown_kid(&self, now: DateTime<Utc>) -> Result<CoreJsonWebKeySet, SignInError> {
        let mut cache = self.cache.lock().await;
        let Some(found) = cache.discovered.as_mut() else { return Err(SignInError::InvalidIdToken) };
        if now - found.jwks_fetched_at < JWKS_REFETCH_AFTER {
            return Ok(found.metadata.jwks().clone());
        }
        let jwks = CoreJsonWebKeySet::fetch_async(found.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|error| self.failed(&format!("JWKS: {error}")))?;
        tracing::info!(provider = self.settings.id, "fetched the provider's keys again (unknown key id)");
        found.metadata = found.metadata.clone().set_jwks(jwks.clone());
        found.jwks_fetched_at = now;
        Ok(jwks)
    }

    /// The provider failed us: logged (never with tokens), `provider_error`.
    fn failed(&self, why: &str) -> SignInError {
        tracing::warn!(provider = self.settings.id, "single sign-on provider failed: {why}");
        SignInError::ProviderError
    }

    /// The provider's answer did not hold up: logged, `invalid_id_token`.
    fn refused(&self, why: &str) -> SignInError {
        tracing::warn!(provider = self.settings.id, "single sign-on ID token refused: {why}");
        SignInError::InvalidIdToken
    }
}

//! Single sign-on's two ends that do not talk to a provider: the list of configured
//! providers the SPA shows, and `POST /auth/exchange`, which turns a single-use login code
//! (handed to the SPA in the URL fragment after a provider's callback) into the normal
//! login answer.
//!
//! The OpenID Connect flow itself (`/auth/oidc/{provider}/start` and `/callback`, which
//! issue login codes) is in [`super::oidc`].

use actix_web::{HttpRequest, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::login::LoginResponse;
use super::oidc::Sso;
use super::sessions::{self, Started, digest};
use super::{Authenticator, queries};
use crate::client::{ClientInfo, TrustedProxies};
use crate::db;
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use crate::schema::login_codes;

/// How long a login code may wait for its exchange.
pub const LOGIN_CODE_TTL_SECONDS: i64 = 60;

/// A configured identity provider, as the SPA lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Provider {
    /// Used in `/auth/oidc/{id}/start`.
    #[schema(example = "uni")]
    pub id: String,
    /// What the sign-in button says.
    #[schema(example = "University login")]
    pub name: String,
}

/// The identity providers people may sign in with.
///
/// One entry per configured OpenID Connect provider (`ROLLCALL_OIDC_PROVIDERS`), in the
/// configured order, for the SPA's sign-in buttons; empty when none is configured. A button
/// navigates the browser to `/api/v1/auth/oidc/{id}/start`.
#[utoipa::path(
    tag = "auth",
    security(()),
    responses((status = 200, description = "The providers; empty when none is configured", body = Vec<Provider>))
)]
#[get("/auth/providers")]
pub async fn list_providers(sso: web::Data<Sso>) -> web::Json<Vec<Provider>> {
    web::Json(sso.listed())
}

/// A login code from the provider's callback.
#[derive(Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The `login_code` from the URL fragment the callback redirected to.
    pub login_code: String,
}

problems!(ExchangeProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Validation(Vec::new()) => "`login_code` is missing",
    ApiError::InvalidCredentials => "Unknown, used or expired login code",
    ApiError::AccountDisabled => "The account was disabled",
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

/// Exchange a login code for a session.
///
/// A login code works once, within 60 s of the sign-in that issued it; the answer is the
/// same as `POST /auth/login`'s. An unknown, used or expired code is 401
/// `invalid_credentials`.
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = ExchangeRequest, example = json!({"login_code": "3f1c…"})),
    responses((status = 200, description = "Logged in", body = LoginResponse), ExchangeProblems)
)]
#[post("/auth/exchange")]
pub async fn exchange(
    req: HttpRequest,
    auth: web::Data<Authenticator>,
    proxies: web::Data<TrustedProxies>,
    body: JsonObject<ExchangeRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let code = body.into_inner().login_code;
    // Codes are 64 hex digits; anything much longer is not one, and not worth a query.
    if code.len() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    let client = ClientInfo::describe(&req, &proxies);
    let (now, ttl) = (auth.clock.now(), auth.session_ttl);
    let (user, started) = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            let user_id = redeem(conn, &code, now)?.ok_or(ApiError::InvalidCredentials)?;
            let user = queries::find_user(conn, user_id)?.ok_or(ApiError::InvalidCredentials)?;
            if user.disabled {
                return Err(ApiError::AccountDisabled);
            }
            Ok((user, sessions::start(conn, user_id, now, ttl, &client)?))
        })
    })
    .await?;
    let Started { session_id, expires_at, refresh_token } = started;
    tracing::info!(user_id = user.id, session_id, "login code exchanged");
    Ok(web::Json(LoginResponse::new(&auth, user, session_id, expires_at, refresh_token, now)?))
}

/// Issues a login code for `user_id`, valid for 60 s from `now`; returns the code.
pub fn issue(conn: &mut PgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<String> {
    let code = sessions::random_secret::<32>();
    diesel::insert_into(login_codes::table)
        .values((
            login_codes::code_hash.eq(digest(&code)),
            login_codes::user_id.eq(user_id),
            login_codes::expires_at.eq(now + chrono::Duration::seconds(LOGIN_CODE_TTL_SECONDS)),
        ))
        .execute(conn)?;
    Ok(code)
}

/// Uses up a login code; the user it was for, if it was unused and unexpired.
fn redeem(conn: &mut PgConnection, code: &str, now: DateTime<Utc>) -> QueryResult<Option<i64>> {
    diesel::update(
        login_codes::table
            .filter(login_codes::code_hash.eq(digest(code)))
            .filter(login_codes::used_at.is_null())
            .filter(login_codes::expires_at.gt(now)),
    )
    .set(login_codes::used_at.eq(now))
    .returning(login_codes::user_id)
    .get_result(conn)
    .optional()
}

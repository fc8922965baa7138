//! `POST /auth/login`: username and password in, access token out, with failures
//! throttled per username across every server instance.

use actix_web::{HttpRequest, post, web};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jwt::TokenUser;
use super::password::Hasher;
use super::sessions::{self, Started};
use super::{Authenticator, attempts, queries};
use crate::client::{ClientInfo, TrustedProxies};
use crate::db;
use crate::domain::user::User;
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// A username and password to log in with.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The account's username, matched regardless of case.
    #[schema(example = "demo.teacher")]
    pub username: String,
    /// The account's password.
    #[schema(example = "demo-teacher-pw")]
    pub password: String,
}

/// A fresh access token and refresh token, and the user they belong to.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// A JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 3600)]
    pub expires_in: i64,
    /// Opaque; send it to `POST /auth/refresh` for new tokens before the access token
    /// expires. Each works once. Keep it out of reach of scripts (see the README).
    pub refresh_token: String,
    /// Seconds until the session ends: no refresh works after that.
    #[schema(example = 1209600)]
    pub refresh_expires_in: i64,
    pub user: User,
}

impl LoginResponse {
    /// The answer for a session that was just started or refreshed.
    pub fn new(
        auth: &Authenticator,
        user: User,
        session_id: i64,
        session_ends: DateTime<Utc>,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let expires = auth.keys.expiry(now, session_ends);
        let token_user = TokenUser { id: user.id, role: user.role, username: &user.username, session_id };
        Ok(Self {
            access_token: auth.keys.issue(token_user, now, expires)?,
            token_type: "Bearer",
            expires_in: (expires - now).num_seconds(),
            refresh_token,
            refresh_expires_in: (session_ends - now).num_seconds(),
            user,
        })
    }
}

problems!(LoginProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::InvalidCredentials => "Wrong username or password",
    ApiError::AccountDisabled => "The right password for a disabled account",
    ApiError::Validation(Vec::new()) => "A field is missing",
    ApiError::TooManyAttempts { retry_after_secs: 1 } => "Too many failures; see `Retry-After`",
    ApiError::ServerBusy("") => "Too many logins at once",
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

/// Log in.
///
/// Wrong username and wrong password get the same answer in about the same time. After
/// 10 failures for one username within 5 minutes, every attempt answers 429 until the
/// oldest failure is 5 minutes old (`Retry-After` says when). Passwords are checked a few at
/// a time (about one per core); when more logins wait than the server queues, the extra
/// ones answer 503 `server_busy` with `Retry-After` at once.
///
/// Every login starts a session (see `GET /me/sessions`): the access token names it, and the
/// refresh token renews the access token until the session ends or is revoked. A disabled
/// account answers 403 `account_disabled` to its right password (401 as usual to a wrong one).
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = LoginRequest, example = json!({"username": "demo.teacher", "password": "demo-teacher-pw"})),
    responses((status = 200, description = "Logged in", body = LoginResponse), LoginProblems)
)]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    auth: web::Data<Authenticator>,
    hasher: web::Data<Hasher>,
    proxies: web::Data<TrustedProxies>,
    body: JsonObject<LoginRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Absurd input is a failed login like any other, but never worth hashing.
    if username.len() > 64 || password.len() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    let client = ClientInfo::describe(&req, &proxies);
    let now = auth.clock.now();
    let attempt = attempts::begin(&auth.pool, &username, now).await?;
    let name = username.clone();
    let found =
        db::run(&auth.pool, move |conn| Ok::<_, ApiError>(queries::find_credentials(conn, &name)?)).await?;
    let (user, hash) = found.map_or((None, None), |(user, hash)| (Some(user), hash));
    // Always hash, so an unknown username costs as much as a wrong password; and hash with
    // no connection or lock held, so a queue of hashes cannot exhaust the pool.
    let verified = hasher.verify(password, hash.clone()).await?;
    let Some(user) = user.filter(|_| verified) else {
        attempts::failed(attempt).await?;
        tracing::info!("login failed");
        return Err(ApiError::InvalidCredentials);
    };
    let (ttl, user_id, own) = (auth.session_ttl, user.id, attempt.id());
    let started = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            // The account as it is now, locked: a reset or a disable committed while the
            // password was being checked wins over this login.
            let (current_hash, disabled) = queries::lock_account(conn, user_id)?;
            if current_hash != hash {
                // Right for the password it was checked against, so no failure: taken back.
                queries::forget_attempt(conn, own)?;
                return Ok(Err(ApiError::InvalidCredentials));
            }
            attempts::succeeded(conn, &username, own, now)?;
            if disabled {
                return Ok(Err(ApiError::AccountDisabled));
            }
            Ok(Ok(sessions::start(conn, user_id, now, ttl, &client)?))
        })
    })
    .await?;
    attempt.settled();
    let started = started?;
    tracing::info!(user_id, session_id = started.session_id, "login succeeded");
    let Started { session_id, expires_at, refresh_token } = started;
    Ok(web::Json(LoginResponse::new(&auth, user, session_id, expires_at, refresh_token, now)?))
}

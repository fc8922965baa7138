//! `POST /auth/login`: username and password in, access token out, with failures
//! throttled per username across every server instance.

use actix_web::{post, web};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::password::Hasher;
use super::{Authenticator, queries};
use crate::db;
use crate::domain::throttle::LOGIN;
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

/// A fresh access token and the user it belongs to.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// A JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: i64,
    pub user: User,
}

problems!(LoginProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::InvalidCredentials => "Wrong username or password",
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
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = LoginRequest, example = json!({"username": "demo.teacher", "password": "demo-teacher-pw"})),
    responses((status = 200, description = "Logged in", body = LoginResponse), LoginProblems)
)]
#[post("/auth/login")]
pub async fn login(
    auth: web::Data<Authenticator>,
    hasher: web::Data<Hasher>,
    body: JsonObject<LoginRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Absurd input is a failed login like any other, but never worth hashing.
    if username.len() > 64 || password.len() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    let now = auth.clock.now();
    let name = username.clone();
    let begun = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        Ok(conn.transaction(|conn| begin(conn, &name, now))?)
    })
    .await?;
    let Attempt { failure_id, user, hash } = match begun {
        Begun::Throttled { retry_after_secs } => return Err(ApiError::TooManyAttempts { retry_after_secs }),
        Begun::Counted(attempt) => attempt,
    };
    // Always hash, so an unknown username costs as much as a wrong password; and hash with
    // no connection or lock held, so a queue of hashes cannot exhaust the pool.
    let verified = match hasher.verify(password, hash).await {
        Ok(verified) => verified,
        Err(err) => {
            // Not checked, so not a failure: give the attempt back.
            db::run(&auth.pool, move |conn| {
                Ok::<_, ApiError>(queries::forget_login_failure(conn, failure_id)?)
            })
            .await?;
            return Err(err.into());
        }
    };
    match user.filter(|_| verified) {
        Some(user) => {
            db::run(&auth.pool, move |conn| {
                Ok::<_, ApiError>(queries::clear_login_failures(conn, &username, LOGIN.since(now))?)
            })
            .await?;
            let access_token = auth.keys.issue(user.id, user.role, &user.username, now)?;
            tracing::info!(user_id = user.id, "login succeeded");
            Ok(web::Json(LoginResponse {
                access_token,
                token_type: "Bearer",
                expires_in: auth.keys.ttl_seconds(),
                user,
            }))
        }
        None => {
            tracing::info!("login failed");
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// A login attempt already counted as a failure, and what to check its password against.
struct Attempt {
    failure_id: i64,
    user: Option<User>,
    hash: Option<String>,
}

enum Begun {
    Counted(Attempt),
    Throttled { retry_after_secs: u64 },
}

/// Serialised per username: checks the throttle and counts this attempt as a failure before
/// its password is checked, so concurrent guesses cannot slip past the count while their
/// hashes run. A successful login then clears the failures, its own included.
fn begin(conn: &mut diesel::PgConnection, username: &str, now: DateTime<Utc>) -> diesel::QueryResult<Begun> {
    queries::lock_username(conn, username)?;
    let (failures, oldest) = queries::recent_login_failures(conn, username, LOGIN.since(now))?;
    if let Some(retry_after_secs) = LOGIN.retry_after(failures, oldest, now) {
        return Ok(Begun::Throttled { retry_after_secs });
    }
    let failure_id = queries::record_login_failure(conn, username, now)?;
    let (user, hash) = match queries::find_credentials(conn, username)? {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    Ok(Begun::Counted(Attempt { failure_id, user, hash }))
}

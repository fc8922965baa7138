//! `POST /auth/login`: username and password in, access token out, with failures
//! throttled per username across every server instance.

use actix_web::{post, web};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Authenticator, password, queries};
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
});

enum Outcome {
    LoggedIn(User),
    WrongCredentials,
    Throttled { retry_after_secs: u64 },
}

/// Log in.
///
/// Wrong username and wrong password get the same answer in about the same time. After
/// 10 failures for one username within 5 minutes, every attempt answers 429 until the
/// oldest failure is 5 minutes old (`Retry-After` says when).
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = LoginRequest, example = json!({"username": "demo.teacher", "password": "demo-teacher-pw"})),
    responses((status = 200, description = "Logged in", body = LoginResponse), LoginProblems)
)]
#[post("/auth/login")]
pub async fn login(
    auth: web::Data<Authenticator>,
    body: JsonObject<LoginRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Absurd input is a failed login like any other, but never worth hashing.
    if username.len() > 64 || password.len() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    let now = auth.clock.now();
    let outcome = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        Ok(conn.transaction(|conn| attempt(conn, &username, &password, now))?)
    })
    .await?;
    match outcome {
        Outcome::LoggedIn(user) => {
            let access_token = auth.keys.issue(user.id, user.role, &user.username, now)?;
            tracing::info!(user_id = user.id, "login succeeded");
            Ok(web::Json(LoginResponse {
                access_token,
                token_type: "Bearer",
                expires_in: auth.keys.ttl_seconds(),
                user,
            }))
        }
        Outcome::WrongCredentials => {
            tracing::info!("login failed");
            Err(ApiError::InvalidCredentials)
        }
        Outcome::Throttled { retry_after_secs } => Err(ApiError::TooManyAttempts { retry_after_secs }),
    }
}

/// One attempt, serialised per username so concurrent guesses cannot slip past the count.
fn attempt(
    conn: &mut diesel::PgConnection,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Outcome> {
    queries::lock_username(conn, username)?;
    let (failures, oldest) = queries::recent_login_failures(conn, username, LOGIN.since(now))?;
    if let Some(retry_after_secs) = LOGIN.retry_after(failures, oldest, now) {
        return Ok(Outcome::Throttled { retry_after_secs });
    }
    let found = queries::find_credentials(conn, username)?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Always hash, so an unknown username costs as much as a wrong password.
    let verified = password::verify(password, hash.as_deref());
    match user.filter(|_| verified) {
        Some(user) => {
            queries::clear_login_failures(conn, username, LOGIN.since(now))?;
            Ok(Outcome::LoggedIn(user))
        }
        None => {
            queries::record_login_failure(conn, username, now)?;
            Ok(Outcome::WrongCredentials)
        }
    }
}

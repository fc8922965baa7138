//! `POST /auth/login`: username and password in, access token out, with failures
//! throttled per username across every server instance.

use actix_web::{post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::password;
use crate::db;
use crate::error::{ApiError, Problem};
use crate::rejections::JsonObject;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::queries;

/// Failures allowed per username within `WINDOW` before logins answer 429.
const MAX_FAILURES: i64 = 10;
const WINDOW: Duration = Duration::minutes(5);

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
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed body (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures (`too_many_attempts`); see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the next attempt is allowed"))),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: JsonObject<LoginRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Absurd input is a failed login like any other, but never worth hashing.
    if username.len() > 64 || password.len() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    let now = state.clock.now();
    let outcome = db::run(&state.pool, move |conn| {
        Ok(conn.transaction(|conn| attempt(conn, &username, &password, now))?)
    })
    .await?;
    match outcome {
        Outcome::LoggedIn(user) => {
            let access_token = state.tokens.issue(user.id, user.role, &user.username, now)?;
            tracing::info!(user_id = user.id, "login succeeded");
            Ok(web::Json(LoginResponse {
                access_token,
                token_type: "Bearer",
                expires_in: state.tokens.ttl_seconds(),
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
    let (failures, oldest) = queries::recent_login_failures(conn, username, now - WINDOW)?;
    if failures >= MAX_FAILURES {
        let free_at = oldest.unwrap_or(now) + WINDOW;
        return Ok(Outcome::Throttled { retry_after_secs: seconds_until(now, free_at) });
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
            queries::clear_login_failures(conn, username, now - WINDOW)?;
            Ok(Outcome::LoggedIn(user))
        }
        None => {
            queries::record_login_failure(conn, username, now)?;
            Ok(Outcome::WrongCredentials)
        }
    }
}

/// Whole seconds from `now` until `then`, at least 1.
pub fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    let millis = (then - now).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000).max(1)
}

//! The session routes: renew tokens (`POST /auth/refresh`), log out, and list or end one's
//! own sessions.

use actix_web::{HttpResponse, delete, get, post, web};
use diesel::Connection;
use serde::Deserialize;
use utoipa::ToSchema;

use super::Authenticator;
use super::extract::Authenticated;
use super::login::LoginResponse;
use super::sessions::{self, Refreshed, Session};
use crate::db;
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// A refresh token to trade for new tokens.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The `refresh_token` of the last login, refresh or activation answer.
    #[schema(example = "9f2c…")]
    pub refresh_token: String,
}

problems!(RefreshProblems {
    ApiError::Unauthorized("") => "Unknown refresh token, or its session has ended",
    ApiError::SessionRevoked => "The session was revoked, or this refresh token was already used (which revokes it)",
    ApiError::Validation(Vec::new()) => "`refresh_token` is missing",
});

/// Renew the tokens.
///
/// Answers like a login: a new access token **and a new refresh token**. The refresh token
/// sent stops working; presenting it again (or racing two refreshes with it) revokes the
/// whole session, since only a stolen copy would be used twice. A v1 client that never sends
/// its refresh token simply logs in again when the access token expires.
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = RefreshRequest, example = json!({"refresh_token": "3b9e4f0c6a1d…"})),
    responses((status = 200, description = "New tokens for the same session", body = LoginResponse), RefreshProblems)
)]
#[post("/auth/refresh")]
pub async fn refresh(
    auth: web::Data<Authenticator>,
    body: JsonObject<RefreshRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let token = body.into_inner().refresh_token;
    if token.len() > 128 {
        return Err(ApiError::Unauthorized("unknown refresh token"));
    }
    let now = auth.clock.now();
    let refreshed = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        Ok(conn.transaction(|conn| sessions::refresh(conn, &token, now))?)
    })
    .await?;
    match refreshed {
        Refreshed::Rotated { user, session_id, expires_at, refresh_token } => {
            Ok(web::Json(LoginResponse::new(&auth, user, session_id, expires_at, refresh_token, now)?))
        }
        Refreshed::Revoked => Err(ApiError::SessionRevoked),
        Refreshed::Invalid => Err(ApiError::Unauthorized("unknown refresh token, or its session has ended")),
    }
}

/// Log out.
///
/// Revokes the caller's session: its access and refresh tokens stop working on every
/// server instance, and its open dashboards are closed.
#[utoipa::path(tag = "auth", responses((status = 204, description = "Logged out")))]
#[post("/auth/logout")]
pub async fn logout(auth: web::Data<Authenticator>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let (session_id, now) = (caller.session_id, auth.clock.now());
    db::run(&auth.pool, move |conn| Ok::<_, ApiError>(sessions::revoke(conn, &[session_id], now)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// My sessions.
///
/// The caller's live sessions (neither ended nor revoked), newest first; `current` marks
/// the one making this request.
#[utoipa::path(tag = "auth", responses((status = 200, description = "Live sessions, newest first", body = Vec<Session>)))]
#[get("/me/sessions")]
pub async fn list_my_sessions(
    auth: web::Data<Authenticator>,
    caller: Authenticated,
) -> Result<web::Json<Vec<Session>>, ApiError> {
    let (user_id, current, now) = (caller.user.id, caller.session_id, auth.clock.now());
    let mut live =
        db::run(&auth.pool, move |conn| Ok::<_, ApiError>(sessions::live_of(conn, user_id, now)?)).await?;
    for session in &mut live {
        session.current = session.id == current;
    }
    Ok(web::Json(live))
}

problems!(EndMySessionProblems {
    ApiError::NotFound("") => "No session of yours has this id",
});

/// End one of my sessions.
///
/// Revokes it (ending the current one is a logout). Another user's session, or none with
/// this id, is 404.
#[utoipa::path(
    tag = "auth",
    params(("session_id" = i64, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), EndMySessionProblems)
)]
#[delete("/me/sessions/{session_id}")]
pub async fn end_my_session(
    auth: web::Data<Authenticator>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (session_id, user_id, now) = (path.into_inner(), caller.user.id, auth.clock.now());
    db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        if !sessions::belongs_to(conn, session_id, user_id)? {
            return Err(ApiError::NotFound("no session of yours has this id"));
        }
        sessions::revoke(conn, &[session_id], now)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

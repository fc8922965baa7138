//! `POST /me/password`: change one's own password, knowing the current one.

use actix_web::{HttpResponse, post, web};
use diesel::Connection;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::Authenticated;
use super::password::Hasher;
use super::{Authenticator, attempts, queries, sessions};
use crate::db;
use crate::domain::text::{Invalid, Password};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// The current password, and the one to use from now on.
#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    /// The password in use now.
    #[schema(example = "demo-teacher-pw")]
    pub current_password: String,
    /// 8–256 characters.
    #[schema(example = "a much longer passphrase")]
    pub new_password: String,
}

problems!(ChangeMyPasswordProblems {
    ApiError::WrongCurrentPassword => "The current password is wrong (counted like a failed login)",
    ApiError::Validation(Vec::new()) => "A field is missing, or the new password is too short or too long",
    ApiError::TooManyAttempts { retry_after_secs: 1 } => "Too many failed logins for this username",
    ApiError::ServerBusy("") => "Too many passwords are being checked at once",
});

/// Change my password.
///
/// Needs the current password: a wrong one answers 403 `invalid_credentials` and counts as a
/// failed login of the username (so does the throttle's 429). Every other session of the
/// user is revoked; the calling session stays.
#[utoipa::path(
    tag = "auth",
    request_body(content = ChangePassword, example = json!({"current_password": "demo-teacher-pw", "new_password": "a much longer passphrase"})),
    responses((status = 204, description = "Changed; other sessions revoked"), ChangeMyPasswordProblems)
)]
#[post("/me/password")]
pub async fn change_my_password(
    auth: web::Data<Authenticator>,
    hasher: web::Data<Hasher>,
    caller: Authenticated,
    body: JsonObject<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let ChangePassword { current_password, new_password } = body.into_inner();
    let new_password =
        Password::parse(&new_password).map_err(|message| Invalid::field("new_password", message))?;
    if current_password.len() > 256 {
        return Err(ApiError::WrongCurrentPassword);
    }
    let (user_id, username, keep, now) =
        (caller.user.id, caller.user.username.clone(), caller.session_id, auth.clock.now());
    let attempt = attempts::begin(&auth.pool, &username, now).await?;
    let stored =
        db::run(&auth.pool, move |conn| Ok::<_, ApiError>(queries::password_hash(conn, user_id)?)).await?;
    if !hasher.verify(current_password, stored.clone()).await? {
        attempts::failed(attempt).await?;
        return Err(ApiError::WrongCurrentPassword);
    }
    let hash = hasher.hash(new_password.expose().to_owned()).await?;
    let own = attempt.id();
    db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            // A reset, a disable or a revocation of this session committed while the
            // passwords were hashed wins over this change.
            let (current_hash, disabled) = queries::lock_account(conn, user_id)?;
            let live = sessions::load(conn, keep)?
                .is_some_and(|(_, state)| state.check(now) == sessions::SessionCheck::Live);
            if disabled || !live {
                return Err(ApiError::SessionRevoked);
            }
            if current_hash != stored {
                return Err(ApiError::WrongCurrentPassword);
            }
            attempts::succeeded(conn, &username, own, now)?;
            queries::set_password_hash(conn, user_id, Some(&hash))?;
            sessions::revoke_all_of(conn, user_id, Some(keep), now)?;
            Ok(())
        })
    })
    .await?;
    attempt.settled();
    tracing::info!(user_id, "password changed");
    Ok(HttpResponse::NoContent().finish())
}

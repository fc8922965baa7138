//! Activation codes: how a user without a password (imported without one, or reset by an
//! admin) sets one. A code is 128 random bits, single use, expiring, and stored only as a
//! SHA-256; issuing one revokes the user's sessions, any earlier code, and the old password.

use actix_web::{HttpRequest, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::login::LoginResponse;
use super::password::Hasher;
use super::sessions::{self, Started, digest, random_secret};
use super::{Authenticator, attempts, queries};
use crate::client::{ClientInfo, TrustedProxies};
use crate::db;
use crate::domain::text::{Invalid, Password};
use crate::domain::user::User;
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use crate::schema::{activation_codes, users};

/// A fresh activation code, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activation {
    /// Give it to the user (never stored in clear, never shown again); single use.
    #[schema(example = "4f1c9b7a2e6d40c38a51f0e9d2b7c6a1")]
    pub activation_code: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Issues a new activation code for `user_id`: revokes their sessions and any earlier code,
/// and clears their password, so only the code lets them in again.
pub fn issue(
    conn: &mut PgConnection,
    user_id: i64,
    now: DateTime<Utc>,
    ttl: Duration,
) -> QueryResult<Activation> {
    let code = random_secret::<16>();
    let expires_at = now + ttl;
    diesel::insert_into(activation_codes::table)
        .values((
            activation_codes::user_id.eq(user_id),
            activation_codes::code_hash.eq(digest(&code)),
            activation_codes::expires_at.eq(expires_at),
        ))
        .on_conflict(activation_codes::user_id)
        .do_update()
        .set((activation_codes::code_hash.eq(digest(&code)), activation_codes::expires_at.eq(expires_at)))
        .execute(conn)?;
    // A reset asks for a password, single sign-on accounts included.
    diesel::update(users::table.find(user_id))
        .set((users::password_hash.eq(None::<String>), users::sso_only.eq(false)))
        .execute(conn)?;
    sessions::revoke_all_of(conn, user_id, None, now)?;
    Ok(Activation { activation_code: code, expires_at })
}

/// Issues an activation code for a username, from the command line.
pub async fn reset(pool: &crate::db::DbPool, username: &str, ttl: Duration) -> anyhow::Result<Activation> {
    let username = username.to_owned();
    db::run(pool, move |conn| -> anyhow::Result<_> {
        conn.transaction(|conn| {
            let (user, _) = queries::find_credentials(conn, &username)?
                .ok_or_else(|| anyhow::anyhow!("no user is called `{username}`"))?;
            Ok(issue(conn, user.id, Utc::now(), ttl)?)
        })
    })
    .await
}

/// The user a live code belongs to, if it is this username's.
fn holder(
    conn: &mut PgConnection,
    username: &str,
    code: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<User>> {
    activation_codes::table
        .inner_join(users::table)
        .filter(activation_codes::code_hash.eq(digest(code)))
        .filter(activation_codes::expires_at.gt(now))
        .filter(crate::db::lower(users::username).eq(username.to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// A username, their activation code, and the password to set.
#[derive(Deserialize, ToSchema)]
pub struct Activate {
    /// The account's username, matched regardless of case.
    #[schema(example = "ada.l")]
    pub username: String,
    /// The code an administrator (or an import) gave out.
    #[schema(example = "4f1c9b7a2e6d40c38a51f0e9d2b7c6a1")]
    pub activation_code: String,
    /// 8–256 characters.
    #[schema(example = "correct horse battery")]
    pub new_password: String,
}

problems!(ActivateProblems {
    ApiError::InvalidCredentials => "Wrong, used or expired code (counted like a failed login)",
    ApiError::AccountDisabled => "The account is disabled",
    ApiError::Validation(Vec::new()) => "A field is missing, or the new password is too short or too long",
    ApiError::TooManyAttempts { retry_after_secs: 1 } => "Too many failed logins for this username",
    ApiError::ServerBusy("") => "Too many passwords are being hashed at once",
});

/// Set a password with an activation code.
///
/// The code is single use and expires (`ROLLCALL_ACTIVATION_TTL_SECONDS`, default 14 days).
/// A wrong, used or expired code answers 401 `invalid_credentials` and counts as a failed
/// login of the username. Answers like a login: a new session and its tokens.
#[utoipa::path(
    tag = "auth",
    security(()),
    request_body(content = Activate, example = json!({"username": "ada.l", "activation_code": "4f1c9b7a2e6d40c38a51f0e9d2b7c6a1", "new_password": "correct horse battery"})),
    responses((status = 200, description = "Password set; logged in", body = LoginResponse), ActivateProblems)
)]
#[post("/auth/activate")]
pub async fn activate(
    req: HttpRequest,
    auth: web::Data<Authenticator>,
    hasher: web::Data<Hasher>,
    proxies: web::Data<TrustedProxies>,
    body: JsonObject<Activate>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let Activate { username, activation_code, new_password } = body.into_inner();
    let new_password =
        Password::parse(&new_password).map_err(|message| Invalid::field("new_password", message))?;
    if username.len() > 64 || activation_code.len() > 128 {
        return Err(ApiError::InvalidCredentials);
    }
    let client = ClientInfo::describe(&req, &proxies);
    let now = auth.clock.now();
    let attempt = attempts::begin(&auth.pool, &username, now).await?;
    let (name, code) = (username.clone(), activation_code.clone());
    let holder = db::run(&auth.pool, move |conn| Ok::<_, ApiError>(holder(conn, &name, &code, now)?)).await?;
    let Some(user) = holder else {
        attempts::failed(attempt).await?;
        return Err(ApiError::InvalidCredentials);
    };
    if user.disabled {
        // Not a check of the code after all: the attempt is taken back when dropped.
        return Err(ApiError::AccountDisabled);
    }
    // Hashed before the code is used up, so a busy server cannot leave the user with
    // neither a code nor a password.
    let hash = hasher.hash(new_password.expose().to_owned()).await?;
    let (user_id, ttl, own) = (user.id, auth.session_ttl, attempt.id());
    let started = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            let used = diesel::delete(
                activation_codes::table
                    .filter(activation_codes::user_id.eq(user_id))
                    .filter(activation_codes::code_hash.eq(digest(&activation_code)))
                    .filter(activation_codes::expires_at.gt(now)),
            )
            .execute(conn)?;
            if used == 0 {
                // Used (or replaced) by a concurrent request since it was checked.
                return Ok(None);
            }
            if queries::lock_account(conn, user_id)?.1 {
                return Err(ApiError::AccountDisabled);
            }
            attempts::succeeded(conn, &username, own, now)?;
            queries::set_password_hash(conn, user_id, Some(&hash))?;
            Ok(Some(sessions::start(conn, user_id, now, ttl, &client)?))
        })
    })
    .await?;
    let Some(Started { session_id, expires_at, refresh_token }) = started else {
        attempts::failed(attempt).await?;
        return Err(ApiError::InvalidCredentials);
    };
    attempt.settled();
    tracing::info!(user_id, session_id, "account activated");
    let user = User { activation_pending: false, ..user };
    Ok(web::Json(LoginResponse::new(&auth, user, session_id, expires_at, refresh_token, now)?))
}

//! Authentication: login and sessions (refresh, logout, revocation, activation codes,
//! password changes), single sign-on with OpenID Connect providers, access tokens, the
//! bounded password hasher, the login throttle, and the extractors that turn a bearer token
//! into a user of the right role.

pub mod activation;
pub mod attempts;
pub mod change_password;
pub mod extract;
pub mod jwt;
pub mod login;
pub mod oidc;
pub mod password;
pub mod queries;
pub mod revoked;
pub mod session_routes;
pub mod sessions;
pub mod sso;

use chrono::Duration;

use crate::clock::SharedClock;
use crate::db::{self, DbPool};
use crate::domain::user::{Role, User};
use crate::error::ApiError;
use jwt::{TokenError, TokenKeys};
use sessions::SessionCheck;

/// Turns an access token into its user and session, and issues tokens: what every
/// authenticated route, and every route that starts a session, needs.
pub struct Authenticator {
    pub keys: TokenKeys,
    pub pool: DbPool,
    pub clock: SharedClock,
    /// How long a session lasts from its login.
    pub session_ttl: Duration,
    /// How long an activation code stays valid.
    pub activation_ttl: Duration,
}

/// What an access token claims, verified but not looked up.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedToken {
    pub user_id: i64,
    pub role: Role,
    pub session_id: i64,
}

/// A caller whose token, session and account were all checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub session_id: i64,
}

impl Authenticator {
    /// Verifies an access token: the user id, role and session it names (without a lookup).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        let claims = self.keys.verify(token, self.clock.now()).map_err(|err| {
            ApiError::Unauthorized(match err {
                TokenError::Expired => "the access token has expired",
                TokenError::NotYetValid => "the access token is not valid yet",
                TokenError::Invalid => "the access token is invalid",
            })
        })?;
        let user_id: i64 =
            claims.sub.parse().map_err(|_| ApiError::Unauthorized("the access token is invalid"))?;
        Ok(VerifiedToken { user_id, role: claims.role, session_id: claims.sid })
    }

    /// Verifies an access token and loads its user and session: the user must still exist
    /// and the session be live (revoked: 401 `session_revoked`; ended: 401 `unauthorized`).
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let claimed = self.verify(token)?;
        let now = self.clock.now();
        db::run(&self.pool, move |conn| -> Result<_, ApiError> {
            let (user, state) = sessions::load(conn, claimed.session_id)?
                .filter(|(user, _)| user.id == claimed.user_id)
                .ok_or(ApiError::Unauthorized("the access token's user no longer exists"))?;
            match state.check(now) {
                SessionCheck::Live if !user.disabled => {}
                SessionCheck::Live | SessionCheck::Revoked => return Err(ApiError::SessionRevoked),
                SessionCheck::Expired => {
                    return Err(ApiError::Unauthorized("the session has ended; log in again"));
                }
            }
            sessions::touch(conn, claimed.session_id, &state, now)?;
            Ok(Caller { user, session_id: claimed.session_id })
        })
        .await
    }
}

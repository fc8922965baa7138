//! Authentication: login, access tokens, password hashing, and the extractors that turn a
//! bearer token into a user of the right role.

pub mod extract;
pub mod jwt;
pub mod login;
pub mod password;
pub mod queries;

use crate::clock::SharedClock;
use crate::db::{self, DbPool};
use crate::domain::user::{Role, User};
use crate::error::ApiError;
use jwt::{TokenError, TokenKeys};

/// Turns an access token into its user: what every authenticated route needs.
pub struct Authenticator {
    pub keys: TokenKeys,
    pub pool: DbPool,
    pub clock: SharedClock,
}

impl Authenticator {
    /// Verifies an access token: the user id and role it names (without a lookup).
    pub fn verify(&self, token: &str) -> Result<(i64, Role), ApiError> {
        let claims = self.keys.verify(token, self.clock.now()).map_err(|err| {
            ApiError::Unauthorized(match err {
                TokenError::Expired => "the access token has expired",
                TokenError::NotYetValid => "the access token is not valid yet",
                TokenError::Invalid => "the access token is invalid",
            })
        })?;
        let id: i64 =
            claims.sub.parse().map_err(|_| ApiError::Unauthorized("the access token is invalid"))?;
        Ok((id, claims.role))
    }

    /// Verifies an access token and loads its user, who must still exist.
    pub async fn authenticate(&self, token: &str) -> Result<User, ApiError> {
        let (id, _) = self.verify(token)?;
        db::run(&self.pool, move |conn| Ok::<_, ApiError>(queries::find_user(conn, id)?))
            .await?
            .ok_or(ApiError::Unauthorized("the access token's user no longer exists"))
    }
}

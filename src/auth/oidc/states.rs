//! Sign-ins between `/start` and the callback, kept in PostgreSQL so that any instance can
//! finish what another started. Each is used at most once.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::auth::sessions::digest;
use crate::schema::oidc_states;

/// How long a browser may spend at the provider between `/start` and the callback.
pub const STATE_TTL: Duration = Duration::minutes(10);

/// What the callback needs from `/start`.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = oidc_states, check_for_backend(diesel::pg::Pg))]
pub struct Pending {
    pub provider: String,
    pub browser_hash: Vec<u8>,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: DateTime<Utc>,
}

pub struct NewState<'a> {
    pub state: &'a str,
    pub provider: &'a str,
    /// The secret of the cookie that binds the sign-in to the browser that started it.
    pub browser_secret: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
}

/// Stores a new sign-in, and drops the expired ones (so abandoned sign-ins never pile up).
pub fn save(conn: &mut PgConnection, new: &NewState<'_>, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::delete(oidc_states::table.filter(oidc_states::expires_at.le(now))).execute(conn)?;
    diesel::insert_into(oidc_states::table)
        .values((
            oidc_states::state_hash.eq(digest(new.state)),
            oidc_states::provider.eq(new.provider),
            oidc_states::browser_hash.eq(digest(new.browser_secret)),
            oidc_states::nonce.eq(new.nonce),
            oidc_states::pkce_verifier.eq(new.pkce_verifier),
            oidc_states::expires_at.eq(now + STATE_TTL),
        ))
        .execute(conn)
        .map(drop)
}

/// Uses up the sign-in `state` names, expired or not: a replay finds nothing.
pub fn take(conn: &mut PgConnection, state: &str) -> QueryResult<Option<Pending>> {
    diesel::delete(oidc_states::table.find(digest(state)))
        .returning(Pending::as_returning())
        .get_result(conn)
        .optional()
}

impl Pending {
    /// Whether this sign-in may finish now, in the browser that presents `browser_secret`
    /// (the cookie set at `/start`), at `provider`.
    pub fn fits(&self, provider: &str, browser_secret: Option<&str>, now: DateTime<Utc>) -> bool {
        use subtle::ConstantTimeEq;
        let browser_matches =
            browser_secret.is_some_and(|secret| bool::from(digest(secret).ct_eq(&self.browser_hash)));
        self.provider == provider && now < self.expires_at && browser_matches
    }
}

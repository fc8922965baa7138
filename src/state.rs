//! What every handler can reach: the pool, the token keys, the clock and a few settings.

use std::net::IpAddr;

use crate::auth::jwt::TokenKeys;
use crate::clock::SharedClock;
use crate::db::DbPool;

pub struct AppState {
    pub pool: DbPool,
    pub tokens: TokenKeys,
    pub clock: SharedClock,
    /// Peers whose `X-Forwarded-For` we believe.
    pub trusted_proxies: Vec<IpAddr>,
}

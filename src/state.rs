//! What every handler can reach: the pool, the token keys, the clock and a few settings.

use std::net::IpAddr;

use crate::auth::jwt::TokenKeys;
use crate::checkins::batch::Checkins;
use crate::clock::SharedClock;
use crate::db::DbPool;
use crate::live::Heartbeat;
use crate::live::hub::Hub;
use crate::live::limits::ConnectionLimits;
use crate::metrics::Metrics;

pub struct AppState {
    pub pool: DbPool,
    pub tokens: TokenKeys,
    pub clock: SharedClock,
    /// Peers whose `X-Forwarded-For` we believe.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed to call the API from a browser (CORS and the live stream).
    pub cors_origins: Vec<String>,
    pub hub: Hub,
    pub heartbeat: Heartbeat,
    /// Settles check-ins in batches (group commit).
    pub checkins: Checkins,
    /// Caps on live-stream connections (total and per user).
    pub live_limits: ConnectionLimits,
    pub metrics: Metrics,
}

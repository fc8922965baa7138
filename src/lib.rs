//! rollcall: a classroom check-in backend (REST + WebSocket over actix-web and PostgreSQL).
//!
//! The layers, lowest first (`docs/ARCHITECTURE.md` draws them; a test keeps them acyclic):
//! foundations (`clock`, `config`, `schema`, `db`, `domain`, `events`, `error`, `rejections`,
//! `client`, `metrics`), then the features (`auth`, `users`, `courses`, `lessons`, `attendance`,
//! `checkins`, `live`, `ops`), then assembly (`openapi`, `telemetry`, `startup`, `demo`,
//! `watch`, `embedded`, `cli`).

#[cfg(test)]
mod architecture;
pub mod attendance;
pub mod auth;
pub mod checkins;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod courses;
pub mod db;
pub mod demo;
pub mod domain;
pub mod embedded;
pub mod error;
pub mod events;
pub mod lessons;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod rejections;
pub mod schema;
pub mod startup;
pub mod telemetry;
pub mod users;
pub mod watch;

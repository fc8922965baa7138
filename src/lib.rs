//! rollcall: a classroom check-in backend (REST + WebSocket over actix-web and PostgreSQL).

pub mod attendance;
pub mod auth;
pub mod checkins;
pub mod cli;
pub mod clock;
pub mod config;
pub mod courses;
pub mod db;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod lessons;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod rejections;
pub mod rotating_code;
pub mod schema;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod watch;

//! rollcall: a classroom check-in backend (REST + WebSocket over actix-web and PostgreSQL).

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod rejections;
pub mod schema;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod users;

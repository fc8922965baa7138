//! Black-box tests of the HTTP API: a real server on port 0, a fresh PostgreSQL database
//! per test, and a real HTTP client.

mod auth;
mod errors;
mod health;
mod helpers;
mod openapi;
mod tokens;
mod users;

//! Accounts and sessions (API v2 section 1): refresh, logout, sessions, password change,
//! admin changes and resets, activation, and revocation across instances.

mod admin;
mod password;
mod revocation;
mod sessions;

use serde_json::{Value, json};

use crate::helpers::http::Response;
use crate::helpers::{PASSWORD, TestApp};

/// Logs in with the fixture password; returns the whole answer.
async fn login(app: &TestApp, username: &str) -> Value {
    app.login(username, PASSWORD).await.ok(200).clone()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.send(
        reqwest::Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh_token})),
    )
    .await
}

fn access(answer: &Value) -> &str {
    answer["access_token"].as_str().unwrap()
}

fn refresh_token(answer: &Value) -> &str {
    answer["refresh_token"].as_str().unwrap()
}

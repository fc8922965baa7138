//! `spawn_app()`: the real server on port 0 over a fresh database, with a manual clock,
//! and small HTTP helpers that read like the requests a frontend makes.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use rollcall::clock::ManualClock;
use rollcall::config::Settings;
use rollcall::db::{self, DbPool};
use rollcall::startup::Application;
use rollcall::users::model::Role;
use serde_json::{Value, json};

#[path = "../support/database.rs"]
mod database;
pub use database::TestDatabase;

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub const PASSWORD: &str = "password-123";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub pool: DbPool,
    pub admin_token: String,
    // Dropped last: the database outlives the server's connections to it.
    _database: TestDatabase,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// Asserts a problem+json answer with this status and code, and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        &self.body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        &self.body
    }
}

/// A point in time well inside the lifetime of any token the tests mint.
pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap()
}

pub fn settings() -> Settings {
    Settings::from_lookup(|name| match name {
        "ROLLCALL_BIND" => Some("127.0.0.1:0".into()),
        "ROLLCALL_JWT_SECRET" => Some(JWT_SECRET.into()),
        _ => None,
    })
    .expect("test settings are valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(settings()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let database = tokio::task::spawn_blocking(TestDatabase::create).await.unwrap();
    let pool = db::pool(&database.url, 8);
    let clock = ManualClock::new(start_time());
    let app = Application::build(&settings, JWT_SECRET.as_bytes(), pool.clone(), clock.clone())
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut test_app = TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        clock,
        pool,
        admin_token: String::new(),
        _database: database,
    };
    let (_, token) = test_app.create_user_directly("admin", Role::Admin).await;
    test_app.admin_token = token;
    test_app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_response(request.send().await.expect("request reaches the server")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// Logs in and returns the access token.
    pub async fn token_for(&self, username: &str) -> String {
        let response = self.login(username, PASSWORD).await;
        response.ok(200)["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user through the library (no HTTP), returning (id, token).
    pub async fn create_user_directly(&self, username: &str, role: Role) -> (i64, String) {
        let student_number = (role == Role::Student).then(|| format!("n-{username}"));
        let user = rollcall::users::create(
            &self.pool,
            rollcall::users::CreateUser {
                username: username.into(),
                password: PASSWORD.into(),
                role,
                real_name: format!("Real {username}"),
                student_number,
            },
            self.clock.now(),
        )
        .await
        .expect("create user");
        (user.id, self.token_for(username).await)
    }

    /// Creates a user through `POST /users` as the admin, returning (id, token).
    pub async fn create_user(&self, username: &str, role: &str) -> (i64, String) {
        let mut body = json!({"username": username, "password": PASSWORD, "role": role, "real_name": format!("Real {username}")});
        if role == "student" {
            body["student_number"] = json!(format!("n-{username}"));
        }
        let created = self.post("/api/v1/users", &self.admin_token, body).await;
        let id = created.ok(201)["id"].as_i64().unwrap();
        (id, self.token_for(username).await)
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }
}

use rollcall::clock::Clock;

pub async fn into_response(response: reqwest::Response) -> Response {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response { status, headers, body, text }
}

//! `spawn_app()`: the real server on port 0 over a fresh database, with a manual clock,
//! and small HTTP helpers that read like the requests a frontend makes.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use rollcall::auth::jwt::TokenKeys;
use rollcall::clock::ManualClock;
use rollcall::config::Settings;
use rollcall::db::{self, DbPool};
use rollcall::domain::user::Role;
use rollcall::startup::Application;
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
    pub hub: rollcall::live::hub::Hub,
    pub hasher: actix_web::web::Data<rollcall::auth::password::Hasher>,
    pub stopper: rollcall::startup::Stopper,
    // Dropped last: the database outlives the server's connections to it.
    database: TestDatabase,
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
    spawn_with(settings, database, pool).await
}

async fn spawn_with(settings: Settings, database: TestDatabase, pool: DbPool) -> TestApp {
    // Quiet unless RUST_LOG asks (e.g. RUST_LOG=rollcall=debug cargo test -- --nocapture).
    if std::env::var_os("RUST_LOG").is_some() {
        rollcall::telemetry::init(rollcall::config::LogFormat::Text);
    }
    let clock = ManualClock::new(start_time());
    let app =
        Application::build(&settings, JWT_SECRET.as_bytes(), pool.clone(), &database.url, clock.clone())
            .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (hub, stopper, hasher) = (app.hub(), app.stopper(), app.hasher());
    tokio::spawn(app.run_until_stopped());
    let mut test_app = TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        clock,
        pool,
        admin_token: String::new(),
        hub,
        hasher,
        stopper,
        database,
    };
    let (_, token) = test_app.create_user_directly("admin", Role::Admin).await;
    test_app.admin_token = token;
    // The event listener resyncs every live lesson when it connects; waiting for it here
    // keeps that resync from landing in the middle of a test's expected messages.
    for _ in 0..500 {
        if test_app.hub.listener_up() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    test_app
}

impl TestApp {
    /// The URL of this test's own database, for sessions outside the server.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

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

    /// Creates a user straight in the database (password `PASSWORD`), returning (id, token).
    pub async fn create_user_directly(&self, username: &str, role: Role) -> (i64, String) {
        let id = insert_users(&self.pool, &[username.to_owned()], role).await[0];
        (id, self.token(id, role, username))
    }

    /// An access token as login would issue it, without the password hashing.
    pub fn token(&self, id: i64, role: Role, username: &str) -> String {
        TokenKeys::new(
            JWT_SECRET.as_bytes(),
            "rollcall",
            "rollcall-api",
            std::time::Duration::from_secs(3600),
        )
        .issue(id, role, username, self.clock.now())
        .unwrap()
    }

    /// A teacher with a course of `students` enrolled students and one lesson.
    pub async fn class(&self, name: &str, students: usize) -> Class {
        let (teacher_id, teacher) =
            self.create_user_directly(&format!("{name}.teacher"), Role::Teacher).await;
        let course = self.post("/api/v1/courses", &teacher, json!({"title": format!("{name} course")})).await;
        let course_id = course.ok(201)["id"].as_i64().unwrap();
        let lesson = self
            .post(&format!("/api/v1/courses/{course_id}/lessons"), &teacher, json!({"title": "Lesson 1"}))
            .await;
        let lesson_id = lesson.ok(201)["id"].as_i64().unwrap();
        let usernames: Vec<String> = (0..students).map(|i| format!("{name}.s{i:03}")).collect();
        let ids = insert_users(&self.pool, &usernames, Role::Student).await;
        let students: Vec<Student> = ids
            .iter()
            .zip(&usernames)
            .map(|(id, username)| Student { id: *id, token: self.token(*id, Role::Student, username) })
            .collect();
        if !students.is_empty() {
            let enrolled = self
                .post(
                    &format!("/api/v1/courses/{course_id}/students"),
                    &teacher,
                    json!({"usernames": usernames}),
                )
                .await;
            assert_eq!(enrolled.ok(200)["enrolled"].as_array().unwrap().len(), students.len());
        }
        Class { teacher, teacher_id, course_id, lesson_id, students }
    }

    /// Opens check-in for the class's lesson with these settings; returns the state.
    pub async fn open_checkin(&self, class: &Class, settings: Value) -> Value {
        self.open_lesson(&class.teacher, class.lesson_id, settings).await
    }

    pub async fn open_lesson(&self, teacher: &str, lesson_id: i64, settings: Value) -> Value {
        let response =
            self.post(&format!("/api/v1/lessons/{lesson_id}/checkin/open"), teacher, settings).await;
        response.ok(200).clone()
    }

    /// The code the teacher's screen shows now.
    pub async fn current_code(&self, class: &Class) -> String {
        self.code_of(&class.teacher, class.lesson_id).await
    }

    pub async fn code_of(&self, teacher: &str, lesson_id: i64) -> String {
        let frame = self.get(&format!("/api/v1/lessons/{lesson_id}/checkin/code"), teacher).await;
        frame.ok(200)["code"].as_str().unwrap().to_owned()
    }

    pub async fn check_in(&self, student: &Student, code: &str) -> Response {
        self.post("/api/v1/checkins", &student.token, json!({"code": code})).await
    }

    /// A check-in with extra request headers (device id, user agent, forwarding) and body.
    pub async fn check_in_with(&self, token: &str, body: Value, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.post(self.url("/api/v1/checkins")).bearer_auth(token).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        into_response(request.send().await.expect("request reaches the server")).await
    }

    /// A POST whose body is sent exactly as given, with this content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Response {
        let request = self.client.post(self.url(path)).header("content-type", content_type).body(body);
        into_response(request.send().await.expect("request reaches the server")).await
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

/// Counts the SQL statements the server runs, to prove a handler's query count does not
/// grow with the data.
#[derive(Debug, Default)]
pub struct QueryCounter(std::sync::atomic::AtomicUsize);

impl QueryCounter {
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct CountQueries(Arc<QueryCounter>);

impl diesel::r2d2::CustomizeConnection<diesel::PgConnection, diesel::r2d2::Error> for CountQueries {
    fn on_acquire(&self, conn: &mut diesel::PgConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::{Connection, InstrumentationEvent};
        let counter = self.0.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Ok(())
    }
}

/// Like `spawn_app`, with every statement the server runs counted.
pub async fn spawn_app_counting_queries() -> (TestApp, Arc<QueryCounter>) {
    let counter = Arc::new(QueryCounter::default());
    let database = tokio::task::spawn_blocking(TestDatabase::create).await.unwrap();
    let pool = db::pool_builder(4)
        .connection_customizer(Box::new(CountQueries(counter.clone())))
        .build_unchecked(diesel::r2d2::ConnectionManager::new(database.url.clone()));
    (spawn_with(settings(), database, pool).await, counter)
}

pub struct Class {
    pub teacher: String,
    pub teacher_id: i64,
    pub course_id: i64,
    pub lesson_id: i64,
    pub students: Vec<Student>,
}

pub struct Student {
    pub id: i64,
    pub token: String,
}

/// Inserts users with password `PASSWORD` (hashed once per test process); returns ids.
pub async fn insert_users(pool: &DbPool, usernames: &[String], role: Role) -> Vec<i64> {
    use diesel::prelude::*;
    use rollcall::schema::users;
    static HASH: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| rollcall::auth::password::hash(PASSWORD).unwrap());
    let rows: Vec<_> = usernames
        .iter()
        .map(|name| {
            (
                users::username.eq(name.clone()),
                users::password_hash.eq(HASH.clone()),
                users::role.eq(role),
                users::real_name.eq(format!("Real {name}")),
                users::student_number.eq((role == Role::Student).then(|| format!("n-{name}"))),
                users::created_at.eq(start_time()),
            )
        })
        .collect();
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        diesel::insert_into(users::table).values(&rows).returning(users::id).get_results(&mut conn).unwrap()
    })
    .await
    .unwrap()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens the live stream of a lesson with these extra request headers and query.
    pub async fn connect_live(
        &self,
        lesson_id: i64,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "{}/api/v1/lessons/{lesson_id}/checkin/live{query}",
            self.address.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
    }

    /// The live stream, authenticated by bearer token.
    pub async fn watch(&self, lesson_id: i64, token: &str) -> Socket {
        let auth = format!("Bearer {token}");
        self.connect_live(lesson_id, "", &[("authorization", &auth)]).await.expect("the live stream opens")
    }

    /// The HTTP status a refused live-stream request got.
    pub async fn live_refusal(&self, lesson_id: i64, query: &str, headers: &[(&str, &str)]) -> u16 {
        match self.connect_live(lesson_id, query, headers).await {
            Ok(_) => panic!("the live stream opened"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

/// The next JSON text message (answering pings on the way), within 5 s.
pub async fn next_message(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the stream is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON text"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; returns the close code (None if it just went away).
pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

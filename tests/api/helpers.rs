//! `spawn_app()`: the real server on port 0 over a fresh database, with a manual clock.
//! The submodules hold what tests do with it: `http` requests that read like a frontend's,
//! `fixtures` (users, classes, open lessons) and `websocket` (the live stream).

pub mod fixtures;
pub mod http;
pub mod websocket;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use rollcall::clock::ManualClock;
use rollcall::config::Settings;
use rollcall::db::{self, DbPool};
use rollcall::domain::user::Role;
use rollcall::startup::Application;

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
    // Dropped last: the database outlives the server's connections to it (shared with
    // replicas, dropped with the last of them).
    database: Arc<TestDatabase>,
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
    spawn_app_at(settings, start_time()).await
}

/// A first instance whose manual clock starts at `start` (e.g. the real time, for tests
/// that meet tokens of a real identity provider).
pub async fn spawn_app_at(settings: Settings, start: chrono::DateTime<Utc>) -> TestApp {
    let database = tokio::task::spawn_blocking(TestDatabase::create).await.unwrap();
    let pool = db::pool(&database.url, 8);
    spawn_with_admin(settings, database, pool, start).await
}

/// A first instance on a new database, with its admin.
async fn spawn_with_admin(
    settings: Settings,
    database: TestDatabase,
    pool: DbPool,
    start: chrono::DateTime<Utc>,
) -> TestApp {
    let mut app = spawn_with(settings, Arc::new(database), pool, ManualClock::new(start)).await;
    let (_, token) = app.create_user_directly("admin", Role::Admin).await;
    app.admin_token = token;
    app
}

async fn spawn_with(
    settings: Settings,
    database: Arc<TestDatabase>,
    pool: DbPool,
    clock: Arc<ManualClock>,
) -> TestApp {
    // Quiet unless RUST_LOG asks (e.g. RUST_LOG=rollcall=debug cargo test -- --nocapture).
    if std::env::var_os("RUST_LOG").is_some() {
        rollcall::telemetry::init(rollcall::config::LogFormat::Text);
    }
    let app =
        Application::build(&settings, JWT_SECRET.as_bytes(), pool.clone(), &database.url, clock.clone())
            .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (hub, stopper, hasher) = (app.hub(), app.stopper(), app.hasher());
    tokio::spawn(app.run_until_stopped());
    let test_app = TestApp {
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
    /// A second server instance on the same database and clock, as another replica behind a
    /// load balancer would be; events reach it only through PostgreSQL.
    pub async fn replica(&self) -> TestApp {
        self.replica_with(settings()).await
    }

    /// A replica with its own settings.
    pub async fn replica_with(&self, settings: Settings) -> TestApp {
        let pool = db::pool(&self.database.url, 8);
        let mut replica = spawn_with(settings, self.database.clone(), pool, self.clock.clone()).await;
        replica.admin_token = self.admin_token.clone();
        replica
    }

    /// Waits until the server's event listener is connected (at most 5 s), so a change made
    /// from now on reaches the dashboards.
    pub async fn wait_for_listener(&self) {
        for _ in 0..500 {
            if self.hub.listener_up() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the event listener did not connect");
    }

    /// The URL of this test's own database, for sessions outside the server.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }
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
    (spawn_with_admin(settings(), database, pool, start_time()).await, counter)
}

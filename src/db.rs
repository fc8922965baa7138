//! The connection pool, embedded migrations, and the one way code runs diesel queries: on
//! the blocking thread pool. Knows nothing of HTTP; `error` maps its failures to answers.

use std::time::Duration;

use diesel::PgConnection;
use diesel::RunQueryDsl;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

mod prepared;

pub use prepared::Prepared;

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

diesel::define_sql_function!(
    /// SQL `lower()`, for case-insensitive usernames.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a request waits for a pooled connection before answering 503, so a request
/// made while the database is down or the pool is exhausted is answered within 2 s.
const CHECKOUT_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long one statement may run before PostgreSQL cancels it (answered 503): a stuck
/// query must not hold a pooled connection, and the request behind it, for ever.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the pool without connecting: the server starts even if the database is
/// briefly away, and `/readyz` reports it.
pub fn pool(url: &str, size: u32) -> DbPool {
    pool_builder(size).build_unchecked(ConnectionManager::new(url))
}

/// The pool settings, for callers that add to them (tests count queries this way).
pub fn pool_builder(size: u32) -> diesel::r2d2::Builder<ConnectionManager<PgConnection>> {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        // A connection killed by a database restart is noticed here, not by a user.
        .test_on_check_out(true)
        .connection_customizer(Box::new(SessionSettings))
}

/// Settings applied to every new pooled connection.
#[derive(Debug)]
pub struct SessionSettings;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        let timeout = format!("SET statement_timeout = {}", STATEMENT_TIMEOUT.as_millis());
        diesel::sql_query(timeout).execute(conn).map(drop).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Applies pending migrations; returns how many ran.
pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<usize> {
    // A migration may legitimately run longer than a request's statement timeout.
    diesel::sql_query("SET statement_timeout = 0").execute(conn)?;
    let applied =
        conn.run_pending_migrations(MIGRATIONS).map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.len())
}

/// Why a closure could not be run against the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No pooled connection within the checkout timeout: the database is down or busy.
    #[error("no database connection available")]
    Unavailable(#[source] diesel::r2d2::PoolError),
    /// The blocking task panicked or was cancelled.
    #[error("the blocking database task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Runs `f` with a pooled connection on the blocking pool. `f` returns the caller's own
/// error type, which only has to say how a [`DbError`] becomes one of its values.
pub async fn run<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(DbError::Unavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(DbError::Task)?
}

/// Whether a failed query means the database is away (down, restarting, or it cancelled a
/// statement that ran past `statement_timeout`): worth a retry, not a bug.
pub fn is_unavailable(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(_, info) => [
            "canceling statement due to statement timeout",
            "terminating connection",
            "the database system is",
            "server closed the connection",
            "connection to server",
        ]
        .iter()
        .any(|needle| info.message().contains(needle)),
        _ => false,
    }
}

/// Whether PostgreSQL refused text input it cannot store (a NUL character).
pub fn is_invalid_text(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(_, info) if info.message().contains("invalid byte sequence"))
}

//! The connection pool, embedded migrations, and the one way handlers run diesel code:
//! on the blocking thread pool, with pool and connection failures mapped to 503.

use std::time::Duration;

use actix_web::web;
use diesel::PgConnection;
use diesel::RunQueryDsl;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ApiError;

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

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

/// Runs `f` with a pooled connection on the blocking pool.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(|_| ApiError::DatabaseUnavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("blocking task failed")))?
}

/// Declares a Rust enum stored as TEXT (its values guarded by a CHECK in the migration)
/// and sent as the same snake_case string in JSON.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            utoipa::ToSchema, diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        // `rename_all` (not a per-variant rename) is what the OpenAPI generator reads; a
        // unit test checks each value's JSON name equals its `as_str`.
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not a valid {}", stringify!($name))),
                }
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                text.parse().map_err(Into::into)
            }
        }
    };
}
pub(crate) use text_enum;

/// `limit`/`offset` for lists that can grow without bound.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many items to return (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// How many items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

impl Page {
    /// Validated (limit, offset).
    pub fn parse(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        let mut errors = Vec::new();
        if !(1..=1000).contains(&limit) {
            errors.push(crate::error::FieldError::new("limit", "must be between 1 and 1000"));
        }
        if offset < 0 {
            errors.push(crate::error::FieldError::new("offset", "must not be negative"));
        }
        crate::error::check(errors)?;
        Ok((limit, offset))
    }
}

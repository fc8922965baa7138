//! The login throttle, shared by everything that checks a secret for a username (login, a
//! password change, an activation). Hashes run with no lock held, so an attempt is
//! recorded as *pending* before its secret is checked, serialised per username: failures
//! plus pending attempts never exceed the throttle's limit, so concurrent guesses cannot
//! slip past it. An attempt over that limit while others are still pending waits for them
//! (they may succeed and clear the failures) instead of being refused. A wrong secret turns
//! the attempt into a failure; a right one clears the username's failures.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};

use super::queries;
use crate::db::{self, DbPool};
use crate::domain::throttle::LOGIN;
use crate::error::ApiError;

/// How long an attempt waits for the pending ones ahead of it before answering 503.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// An attempt recorded as pending. One that is dropped unsettled (an error answered, a
/// request cancelled) is taken back, so no path can leave it pending to block the username.
#[must_use = "a pending attempt is settled by `failed` or `settled` after `succeeded`"]
pub struct Pending {
    id: i64,
    pool: DbPool,
    settled: bool,
}

impl Pending {
    /// The attempt's row, for `succeeded` inside a transaction.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The transaction that ran `succeeded` committed.
    pub fn settled(mut self) {
        self.settled = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (pool, id) = (self.pool.clone(), self.id);
        // Not awaited: the request that held it is over.
        tokio::spawn(async move {
            let forgotten =
                db::run(&pool, move |conn| Ok::<_, ApiError>(queries::forget_attempt(conn, id)?)).await;
            if let Err(err) = forgotten {
                tracing::warn!(error = %err, "could not take back an unsettled login attempt");
            }
        });
    }
}

/// Records an attempt for `username` as pending, or answers 429 while the username is
/// throttled (503 if attempts ahead of it stay pending for too long).
pub async fn begin(pool: &DbPool, username: &str, now: DateTime<Utc>) -> Result<Pending, ApiError> {
    let started = Instant::now();
    loop {
        let name = username.to_owned();
        let recorded = db::run(pool, move |conn| -> Result<_, ApiError> {
            conn.transaction(|conn| try_begin(conn, &name, now))
        })
        .await?;
        match recorded {
            Some(id) => return Ok(Pending { id, pool: pool.clone(), settled: false }),
            None if started.elapsed() < WAIT_LIMIT => tokio::time::sleep(POLL).await,
            None => return Err(ApiError::ServerBusy("too many logins for this username are being checked")),
        }
    }
}

/// `None`: the limit is taken up by attempts still being checked; try again shortly.
fn try_begin(conn: &mut PgConnection, username: &str, now: DateTime<Utc>) -> Result<Option<i64>, ApiError> {
    queries::lock_username(conn, username)?;
    let recent = queries::recent_attempts(conn, username, LOGIN.since(now))?;
    if let Some(retry_after_secs) = LOGIN.retry_after(recent.failures, recent.oldest_failure, now) {
        return Err(ApiError::TooManyAttempts { retry_after_secs });
    }
    if recent.failures + recent.pending >= LOGIN.max_failures {
        return Ok(None);
    }
    Ok(Some(queries::record_pending_attempt(conn, username, now)?))
}

/// The secret was wrong: the attempt counts as a failure.
pub async fn failed(attempt: Pending) -> Result<(), ApiError> {
    let (pool, id) = (attempt.pool.clone(), attempt.id);
    db::run(&pool, move |conn| Ok::<_, ApiError>(queries::mark_failed(conn, id)?)).await?;
    attempt.settled();
    Ok(())
}

/// The secret was right: forgets the username's failures and this attempt (and expired
/// rows of anyone).
pub fn succeeded(
    conn: &mut PgConnection,
    username: &str,
    attempt: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    queries::clear_login_failures(conn, username, attempt, LOGIN.since(now))
}

//! Group commit for check-ins. Every `POST /checkins` becomes a job for one task per
//! instance, which takes all the jobs waiting at that moment and settles them together
//! (`settle`): the right codes whose window this instance's code index knows by one
//! statement that confirms and inserts them and notifies the dashboards, the rest after
//! reading the students with their recent failures and their open windows — atomic on its
//! own without a refused code, and in one transaction that also locks those students'
//! throttles and records the codes with one. Each request is answered only after the commit
//! holding its row; a failed batch fails every job in it with the same error, and nothing of
//! it is stored (once records have committed by themselves, a later failure fails only the
//! attempts it concerns).
//!
//! One batch is in the database at a time; the next forms while it runs. With two in
//! flight, while each batch made three statements or more, one was settled while the other
//! waited for its commit (one: 2,400 check-ins/s in the benchmark; two: 3,200; four: 2,900,
//! as smaller batches cost more statements). Since a right code costs one statement, two in
//! flight only halve the batches, whose commits PostgreSQL serialises anyway (a commit that
//! notifies holds its notify lock): right codes 10,900/s with one, 10,400 with two and 8,100
//! with four; wrong codes, which still read first, are 25% slower with one
//! (`benches/RESULTS.md`). A batch settles its jobs as if they came one at a time (a student
//! checking in to several lessons at once has them all in one batch); the per-student
//! advisory locks, taken in id order by batches with a refused code, serialise the throttle
//! across instances, and the unique (lesson, student) key makes a repeated check-in find
//! the first, so the throttle and idempotency rules see exactly what one request at a time
//! would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::CheckinResult;
use super::codes::OpenCodes;
use super::settle::{Settled, settle_batch};
use crate::auth::revoked::RevokedSessions;
use crate::client::ClientInfo;
use crate::db::{DbConn, DbError, DbPool};
use crate::domain::code::Verdict;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most check-ins settled in one batch.
const MAX_BATCH: usize = 256;

/// Batches in the database at once (see above).
const BATCHES_IN_FLIGHT: usize = 1;

/// The task keeps the connections of its batches between them, sparing each batch the
/// pool's checkout and its test query; one that sat idle longer than this goes back to the
/// pool, whose checkout tests it (a database restart is noticed there, not by a student).
const HELD_IDLE: Duration = Duration::from_secs(1);

/// A connection kept for the next batch, and when its last batch ended.
struct Held {
    conn: DbConn,
    since: Instant,
}

pub enum Outcome {
    Created(CheckinResult),
    Existing(CheckinResult),
    Rejected(Verdict),
    Throttled {
        retry_after_secs: u64,
    },
    /// The token's student no longer exists (or is not a student), or its session ended.
    UnknownStudent,
    /// The token's session was revoked.
    SessionRevoked,
}

/// One student's attempt, as the handler hands it over.
pub struct Attempt {
    pub student_id: i64,
    /// The session of the student's token, confirmed live in the batch.
    pub session_id: i64,
    pub code: String,
    pub client: ClientInfo,
    pub now: DateTime<Utc>,
}

struct Job {
    attempt: Attempt,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// What the batching task settles with, besides the attempts.
pub struct Views {
    pub pool: DbPool,
    /// This instance's view of revoked sessions, which spares each batch a session lookup
    /// while it is complete.
    pub revoked: Arc<RevokedSessions>,
    /// This instance's index of the codes in force, which spares a right code the reads.
    pub codes: Arc<OpenCodes>,
    pub metrics: Arc<Metrics>,
}

/// The handle handlers submit check-ins through.
#[derive(Clone)]
pub struct Checkins {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Checkins {
    /// Starts this instance's batching task on the current runtime.
    pub fn start(views: Views) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::new(views), receiver));
        Self { jobs }
    }

    /// Settles one attempt; resolves once the batch holding it has committed (or failed).
    pub async fn submit(&self, attempt: Attempt) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { attempt, reply })
            .map_err(|_| ApiError::Unexpected(anyhow::anyhow!("the check-in task has stopped")))?;
        answer.await.map_err(|_| ApiError::Unexpected(anyhow::anyhow!("the check-in task dropped a job")))?
    }
}

async fn run(views: Arc<Views>, mut receiver: mpsc::UnboundedReceiver<Job>) {
    // Jobs of students already in a batch being formed wait here for the next one.
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut in_flight = JoinSet::new();
    let mut held: Vec<Held> = Vec::new();
    // A finished batch: whether the database was there, and its connection if reusable.
    let finish = |done: Result<(bool, Option<DbConn>), _>, held: &mut Vec<Held>| match done {
        Ok((available, conn)) => {
            if let Some(conn) = conn {
                held.push(Held { conn, since: Instant::now() });
            }
            !available
        }
        Err(_) => false,
    };
    loop {
        let mut unavailable = false;
        while let Some(done) = in_flight.try_join_next() {
            unavailable |= finish(done, &mut held);
        }
        if in_flight.len() >= BATCHES_IN_FLIGHT || (waiting.is_empty() && !in_flight.is_empty()) {
            tokio::select! {
                Some(done) = in_flight.join_next() => unavailable |= finish(done, &mut held),
                job = receiver.recv(), if in_flight.len() < BATCHES_IN_FLIGHT => match job {
                    Some(job) => waiting.push_back(job),
                    None => break,
                },
            }
        } else if waiting.is_empty() {
            match receiver.recv().await {
                Some(job) => waiting.push_back(job),
                None => break,
            }
        }
        if unavailable {
            // A batch found the database away: everyone queued behind it hears so now,
            // rather than after one more pool timeout each.
            while let Ok(job) = receiver.try_recv() {
                waiting.push_back(job);
            }
            for job in waiting.drain(..) {
                let _ = job.reply.send(Err(ApiError::DatabaseUnavailable));
            }
            continue;
        }
        if waiting.is_empty() || in_flight.len() >= BATCHES_IN_FLIGHT {
            continue;
        }
        while waiting.len() < MAX_BATCH
            && let Ok(job) = receiver.try_recv()
        {
            waiting.push_back(job);
        }
        let batch: Vec<Job> = waiting.drain(..waiting.len().min(MAX_BATCH)).collect();
        let views = views.clone();
        // The most recently used connection; any that idled too long go back to the pool.
        let conn = held.pop().filter(|h| h.since.elapsed() < HELD_IDLE).map(|h| h.conn);
        held.retain(|h| h.since.elapsed() < HELD_IDLE);
        in_flight.spawn(async move { settle(views, batch, conn).await });
    }
    while in_flight.join_next().await.is_some() {}
}

/// Settles and answers a batch on `conn` (else a pooled connection): whether the database
/// was available, and the connection if it can serve the next batch.
async fn settle(views: Arc<Views>, batch: Vec<Job>, conn: Option<DbConn>) -> (bool, Option<DbConn>) {
    let (attempts, replies): (Vec<Attempt>, Vec<_>) = batch.into_iter().map(|j| (j.attempt, j.reply)).unzip();
    let settled = tokio::task::spawn_blocking(move || {
        let mut conn = match conn {
            Some(conn) => conn,
            None => views.pool.get().map_err(|e| ApiError::from(DbError::Unavailable(e)))?,
        };
        let Settled { answers, direct } = settle_batch(&mut conn, &attempts, &views.revoked, &views.codes)?;
        views.metrics.checkins_settled(direct, attempts.len() - direct);
        Ok::<_, ApiError>((answers, conn))
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::from(DbError::Task(e))));
    match settled {
        Ok((answers, conn)) => {
            // A step that failed after the commit may have broken the connection: it goes back
            // to the pool, which drops it if so, rather than serving the next batch.
            let reusable = answers.iter().all(Result::is_ok);
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
            (true, reusable.then_some(conn))
        }
        Err(err) => {
            // The connection goes back to the pool with the error (which drops it if broken).
            for reply in replies {
                let _ = reply.send(Err(clone_error(&err)));
            }
            (!matches!(err, ApiError::DatabaseUnavailable), None)
        }
    }
}

/// The same answer for every job of a failed batch (or of a failed step).
pub(super) fn clone_error(err: &ApiError) -> ApiError {
    match err {
        ApiError::DatabaseUnavailable => ApiError::DatabaseUnavailable,
        ApiError::BadRequest(message) => ApiError::BadRequest(message.clone()),
        // Keep the cause: each job's 500 logs it (ApiError's own text is generic).
        ApiError::Unexpected(cause) => {
            ApiError::Unexpected(anyhow::anyhow!("check-in batch failed: {cause:#}"))
        }
        other => ApiError::Unexpected(anyhow::anyhow!("check-in batch failed: {other}")),
    }
}

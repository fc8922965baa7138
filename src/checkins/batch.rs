//! Group commit for check-ins. Every `POST /checkins` becomes a job for one task per
//! instance, which takes all the jobs waiting at that moment and settles them in a single
//! transaction: one statement each to lock the students, read their recent failures and
//! their open windows, insert the new records, record the rejected codes and notify the
//! dashboards — instead of that many statements per check-in. Each request is answered
//! only after the transaction holding its row has committed; a failed transaction fails
//! every job in it with the same error, and nothing of it is stored.
//!
//! Two batches may be in the database at once, so one is settled while the other waits for
//! its commit (one: 2,400 check-ins/s in the benchmark; two: 3,200; four: 2,900, as smaller
//! batches cost more statements). A student appears at most once per batch (a second job
//! waits for the next one), and the per-student advisory locks, taken in id order, serialise
//! a student's jobs across concurrent batches and across instances, so the throttle and
//! idempotency rules see exactly what one request at a time would.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::client::ClientInfo;
use super::queries::{self, OpenWindow};
use super::{CheckinResult, MAX_FAILURES, WINDOW};
use crate::attendance::records::{self, NewCheckin, RecordRow};
use crate::attendance::status::RecordStatus;
use crate::auth::login::seconds_until;
use crate::db::{self, DbPool};
use crate::error::ApiError;
use crate::live::events::{self, Event};
use crate::rotating_code::Verdict;

/// Most check-ins settled in one transaction.
const MAX_BATCH: usize = 256;

/// Batches in the database at once: while one waits for its commit, the next is settled.
const BATCHES_IN_FLIGHT: usize = 2;

pub enum Outcome {
    Created(CheckinResult),
    Existing(CheckinResult),
    Rejected(Verdict),
    Throttled {
        retry_after_secs: u64,
    },
    /// The token's student no longer exists (or is not a student).
    UnknownStudent,
}

/// One student's attempt, as the handler hands it over.
pub struct Attempt {
    pub student_id: i64,
    pub code: String,
    pub client: ClientInfo,
    pub now: DateTime<Utc>,
}

struct Job {
    attempt: Attempt,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// The handle handlers submit check-ins through.
#[derive(Clone)]
pub struct Checkins {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Checkins {
    /// Starts this instance's batching task on the current runtime.
    pub fn start(pool: DbPool) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver));
        Self { jobs }
    }

    /// Settles one attempt; resolves once its transaction has committed (or failed).
    pub async fn submit(&self, attempt: Attempt) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { attempt, reply })
            .map_err(|_| ApiError::Unexpected(anyhow::anyhow!("the check-in task has stopped")))?;
        answer.await.map_err(|_| ApiError::Unexpected(anyhow::anyhow!("the check-in task dropped a job")))?
    }
}

async fn run(pool: DbPool, mut receiver: mpsc::UnboundedReceiver<Job>) {
    // Jobs of students already in a batch being formed wait here for the next one.
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut in_flight = JoinSet::new();
    loop {
        let mut unavailable = false;
        while let Some(done) = in_flight.try_join_next() {
            unavailable |= matches!(done, Ok(false));
        }
        if in_flight.len() >= BATCHES_IN_FLIGHT || (waiting.is_empty() && !in_flight.is_empty()) {
            tokio::select! {
                done = in_flight.join_next() => unavailable |= matches!(done, Some(Ok(false))),
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
        let mut batch = Vec::new();
        let mut students = HashSet::new();
        let mut later = VecDeque::new();
        while let Some(job) = waiting.pop_front() {
            if batch.len() < MAX_BATCH && students.insert(job.attempt.student_id) {
                batch.push(job);
            } else {
                later.push_back(job);
            }
        }
        waiting = later;
        let pool = pool.clone();
        in_flight.spawn(async move { settle(&pool, batch).await });
    }
    while in_flight.join_next().await.is_some() {}
}

/// Settles and answers a batch; false if the database was unavailable.
async fn settle(pool: &DbPool, batch: Vec<Job>) -> bool {
    let (attempts, replies): (Vec<Attempt>, Vec<_>) = batch.into_iter().map(|j| (j.attempt, j.reply)).unzip();
    let settled = db::run(pool, move |conn| Ok(conn.transaction(|conn| settle_in(conn, &attempts))?)).await;
    match settled {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(clone_error(&err)));
            }
            !matches!(err, ApiError::DatabaseUnavailable)
        }
    }
}

/// The same answer for every job of a failed batch.
fn clone_error(err: &ApiError) -> ApiError {
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

/// What to do with one attempt, given the student's recent failures and open windows.
enum Decision<'a> {
    Unknown,
    Throttled { retry_after_secs: u64 },
    Rejected(Verdict),
    Accept { open: &'a OpenWindow, status: RecordStatus },
}

fn decide<'a>(attempt: &Attempt, failures: &[DateTime<Utc>], windows: &[&'a OpenWindow]) -> Decision<'a> {
    let since = attempt.now - WINDOW;
    let recent: Vec<&DateTime<Utc>> = failures.iter().filter(|at| **at > since).collect();
    if recent.len() as i64 >= MAX_FAILURES {
        let oldest = recent.iter().min().map_or(attempt.now, |at| **at);
        return Decision::Throttled { retry_after_secs: seconds_until(attempt.now, oldest + WINDOW) };
    }
    let open: Vec<&&OpenWindow> = windows.iter().filter(|o| o.window.is_open(attempt.now)).collect();
    let verdicts: Vec<Verdict> =
        open.iter().map(|o| o.window.schedule().verify(&attempt.code, attempt.now)).collect();
    match verdicts.iter().position(|v| *v == Verdict::Accepted) {
        Some(i) => {
            let window = &open[i].window;
            let status = if window.is_late(attempt.now) { RecordStatus::Late } else { RecordStatus::Present };
            Decision::Accept { open: open[i], status }
        }
        None if verdicts.contains(&Verdict::Expired) => Decision::Rejected(Verdict::Expired),
        None => Decision::Rejected(Verdict::Invalid),
    }
}

fn settle_in(conn: &mut PgConnection, attempts: &[Attempt]) -> QueryResult<Vec<Outcome>> {
    let mut ids: Vec<i64> = attempts.iter().map(|a| a.student_id).collect();
    ids.sort_unstable();
    // Confirms the students (their tokens were only verified) and locks them, in id order.
    #[derive(QueryableByName)]
    struct Student {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let students: HashSet<i64> = diesel::sql_query(
        "SELECT id, pg_advisory_xact_lock(hashtextextended('checkin:' || id, 0)) \
         FROM (SELECT id FROM users WHERE id = ANY($1) AND role = 'student' ORDER BY id) AS s",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .load::<Student>(conn)?
    .into_iter()
    .map(|s| s.id)
    .collect();
    let earliest = attempts.iter().map(|a| a.now).min().unwrap_or_else(Utc::now);
    let latest = attempts.iter().map(|a| a.now).max().unwrap_or_else(Utc::now);
    let mut failures: HashMap<i64, Vec<DateTime<Utc>>> = HashMap::new();
    for (student, at) in queries::failures_since(conn, &ids, earliest - WINDOW)? {
        failures.entry(student).or_default().push(at);
    }
    let open = queries::unfinished_windows_for(conn, &ids, latest)?;
    let mut windows: HashMap<i64, Vec<&OpenWindow>> = HashMap::new();
    for (student, window) in &open {
        windows.entry(*student).or_default().push(window);
    }

    let decisions: Vec<Decision> = attempts
        .iter()
        .map(|a| {
            if !students.contains(&a.student_id) {
                return Decision::Unknown;
            }
            decide(
                a,
                failures.get(&a.student_id).map_or(&[], Vec::as_slice),
                windows.get(&a.student_id).map_or(&[], Vec::as_slice),
            )
        })
        .collect();

    let new: Vec<NewCheckin> = attempts
        .iter()
        .zip(&decisions)
        .filter_map(|(a, d)| match d {
            Decision::Accept { open, status } => Some(NewCheckin {
                lesson_id: open.window.lesson_id,
                student_id: a.student_id,
                window_id: open.window.id,
                status: *status,
                at: a.now,
                client_ip: a.client.ip.as_deref(),
                user_agent: a.client.user_agent.as_deref(),
                device_id: a.client.device_id.as_deref(),
            }),
            _ => None,
        })
        .collect();
    let inserted: HashMap<(i64, i64), RecordRow> = records::insert_checkins(conn, &new)?
        .into_iter()
        .map(|row| ((row.lesson_id, row.student_id), row))
        .collect();
    let repeats: Vec<(i64, i64)> =
        new.iter().map(|n| (n.lesson_id, n.student_id)).filter(|key| !inserted.contains_key(key)).collect();
    let existing: HashMap<(i64, i64), RecordRow> = records::find_many(conn, &repeats)?
        .into_iter()
        .map(|row| ((row.lesson_id, row.student_id), row))
        .collect();

    let rejected: Vec<(i64, DateTime<Utc>)> = attempts
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| matches!(d, Decision::Rejected(_)))
        .map(|(a, _)| (a.student_id, a.now))
        .collect();
    queries::record_failures(conn, &rejected, earliest - WINDOW)?;

    let events: Vec<String> = inserted
        .keys()
        .map(|(lesson_id, student_id)| {
            Event::Record { lesson_id: *lesson_id, student_id: *student_id }.encode()
        })
        .collect();
    events::publish_all(conn, &events)?;

    attempts
        .iter()
        .zip(decisions)
        .map(|(attempt, decision)| {
            Ok(match decision {
                Decision::Unknown => Outcome::UnknownStudent,
                Decision::Throttled { retry_after_secs } => Outcome::Throttled { retry_after_secs },
                Decision::Rejected(verdict) => Outcome::Rejected(verdict),
                Decision::Accept { open, .. } => {
                    let key = (open.window.lesson_id, attempt.student_id);
                    let result = |record: &RecordRow| CheckinResult {
                        lesson_id: open.window.lesson_id,
                        lesson_title: open.lesson_title.clone(),
                        course_id: open.course_id,
                        course_title: open.course_title.clone(),
                        status: record.status.into(),
                        checked_in_at: record.checked_in_at,
                    };
                    match (inserted.get(&key), existing.get(&key)) {
                        (Some(record), _) => Outcome::Created(result(record)),
                        (None, Some(record)) => Outcome::Existing(result(record)),
                        (None, None) => return Err(diesel::result::Error::NotFound),
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::lessons::window::Window;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn open(id: i64, late_after_seconds: Option<i32>) -> OpenWindow {
        OpenWindow {
            window: Window {
                id,
                lesson_id: id * 10,
                secret: vec![id as u8; 32],
                opened_at: at(0),
                closes_at: at(600),
                closed_at: None,
                rotation_seconds: 10,
                code_length: 6,
                late_after_seconds,
            },
            lesson_title: format!("Lesson {id}"),
            course_id: id,
            course_title: format!("Course {id}"),
        }
    }

    fn attempt(code: String, now: DateTime<Utc>) -> Attempt {
        Attempt { student_id: 7, code, client: ClientInfo::default(), now }
    }

    #[test]
    fn the_matching_window_among_several_is_accepted_and_lateness_is_computed() {
        let (first, second) = (open(1, None), open(2, Some(30)));
        let code = second.window.schedule().code(4);
        let windows = [&first, &second];
        match decide(&attempt(code.clone(), at(45)), &[], &windows) {
            Decision::Accept { open, status } => {
                assert_eq!(open.window.id, 2);
                assert_eq!(status, RecordStatus::Late, "45 s after opening, late after 30");
            }
            _ => panic!("the code of window 2 was not accepted"),
        }
        assert!(matches!(
            decide(&attempt(code, at(45)), &[], &[&first]),
            Decision::Rejected(Verdict::Invalid)
        ));
    }

    #[test]
    fn a_code_of_an_earlier_step_is_expired_and_a_closed_window_matches_nothing() {
        let window = open(1, None);
        let old = window.window.schedule().code(0);
        assert!(matches!(
            decide(&attempt(old.clone(), at(35)), &[], &[&window]),
            Decision::Rejected(Verdict::Expired)
        ));
        assert!(matches!(
            decide(&attempt(old, at(600)), &[], &[&window]),
            Decision::Rejected(Verdict::Invalid)
        ));
    }

    #[test]
    fn ten_failures_within_the_window_throttle_until_the_oldest_leaves_it() {
        let window = open(1, None);
        let code = window.window.schedule().code(9);
        let failures: Vec<DateTime<Utc>> = (0..10).map(|i| at(40 + i)).collect();
        match decide(&attempt(code.clone(), at(90)), &failures, &[&window]) {
            Decision::Throttled { retry_after_secs } => {
                assert_eq!(retry_after_secs, 10, "the oldest is at 40 s")
            }
            _ => panic!("not throttled with 10 failures in the last 60 s"),
        }
        // One second after the oldest left the window, the right code goes through.
        assert!(matches!(decide(&attempt(code, at(100)), &failures, &[&window]), Decision::Accept { .. }));
    }
}

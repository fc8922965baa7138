//! Settling one batch of check-ins. A right code whose window this instance's code index
//! knows (`codes`) is stored by one statement that confirms what the full path reads
//! first. Every other attempt is settled the full way: confirm the students, read their
//! recent failures and open windows, decide each attempt, store the new records
//! (announcing them to the dashboards) and, under the throttle locks, the rejected codes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::CheckinResult;
use super::batch::{Attempt, Outcome, clone_error};
use super::codes::{self, OpenCodes};
use super::queries::{self, OpenWindow};
use crate::attendance::records::{self, NewCheckin, TitledRecord};
use crate::auth::revoked::RevokedSessions;
use crate::domain::code::Verdict;
use crate::domain::status::RecordStatus;
use crate::domain::throttle::{CHECKIN, seconds_until};
use crate::error::ApiError;

/// What to do with one attempt, given the student's recent failures and open windows.
enum Decision<'a> {
    Unknown,
    Revoked,
    Throttled { retry_after_secs: u64 },
    Rejected(Verdict),
    Accept { open: &'a OpenWindow, status: RecordStatus, stale: bool },
}

/// `Throttled` if the student's recent failures throttle this attempt.
fn throttle(attempt: &Attempt, failures: &[DateTime<Utc>]) -> Option<Decision<'static>> {
    CHECKIN
        .locked_until(failures, attempt.now)
        .map(|until| Decision::Throttled { retry_after_secs: seconds_until(attempt.now, until) })
}

/// The attempt's code against the student's open windows: `Accept` or `Rejected`.
fn judge<'a>(attempt: &Attempt, windows: &[&'a OpenWindow]) -> Decision<'a> {
    let open: Vec<&&OpenWindow> = windows.iter().filter(|o| o.window.is_open(attempt.now)).collect();
    let verdicts: Vec<Verdict> =
        open.iter().map(|o| o.window.schedule().verify(&attempt.code, attempt.now)).collect();
    // The current code of any window first; else a previous one in its grace period.
    let accepted = verdicts
        .iter()
        .position(|v| *v == Verdict::Accepted)
        .or_else(|| verdicts.iter().position(|v| *v == Verdict::Stale));
    match accepted {
        Some(i) => {
            let window = &open[i].window;
            let status = if window.is_late(attempt.now) { RecordStatus::Late } else { RecordStatus::Present };
            Decision::Accept { open: open[i], status, stale: verdicts[i] == Verdict::Stale }
        }
        None if verdicts.contains(&Verdict::Expired) => Decision::Rejected(Verdict::Expired),
        None => Decision::Rejected(Verdict::Invalid),
    }
}

/// What the database (and the view of revoked sessions) says of an attempt's student and
/// session.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    /// Not a student (any more), or the session is gone or ended.
    Unknown,
    Revoked,
    Live,
}

/// Each student's rejected codes within the throttle's window.
type Failures = HashMap<i64, Vec<DateTime<Utc>>>;

/// Confirms each attempt's student and session (their tokens were only verified). While this
/// instance's view of revoked sessions is complete, it answers for the sessions, and the
/// database is asked only for the students, with their recent failures in the same
/// statement (`Some`); else the failures are left to a statement of their own (`None`).
fn confirm(
    conn: &mut PgConnection,
    attempts: &[&Attempt],
    students: &[i64],
    revoked: &RevokedSessions,
    now: DateTime<Utc>,
) -> QueryResult<(Vec<Confirmed>, Option<Failures>)> {
    let view: Option<Vec<bool>> = attempts.iter().map(|a| revoked.is_revoked(a.session_id)).collect();
    Ok(match view {
        Some(view) => {
            let mut disabled: HashMap<i64, bool> = HashMap::new();
            let mut failures = Failures::new();
            for student in queries::confirm_students(conn, students, CHECKIN.since(now))? {
                disabled.insert(student.id, student.disabled);
                failures.insert(student.id, student.failures);
            }
            let confirmed = attempts
                .iter()
                .zip(view)
                .map(|(a, revoked)| match disabled.get(&a.student_id) {
                    None => Confirmed::Unknown,
                    Some(_) if revoked => Confirmed::Revoked,
                    Some(true) => Confirmed::Unknown,
                    Some(false) => Confirmed::Live,
                })
                .collect();
            (confirmed, Some(failures))
        }
        None => {
            let pairs: Vec<(i64, i64)> = attempts.iter().map(|a| (a.student_id, a.session_id)).collect();
            let found: HashMap<(i64, i64), (bool, bool)> = queries::confirm_sessions(conn, &pairs, now)?
                .into_iter()
                .map(|(student, session, revoked, live)| ((student, session), (revoked, live)))
                .collect();
            let confirmed = pairs
                .iter()
                .map(|pair| match found.get(pair) {
                    Some((_, true)) => Confirmed::Live,
                    Some((true, _)) => Confirmed::Revoked,
                    _ => Confirmed::Unknown,
                })
                .collect();
            (confirmed, None)
        }
    })
}

/// A batch's answers, and how many of its attempts were stored by one statement.
pub(super) struct Settled {
    pub answers: Answers,
    pub direct: usize,
}

/// Settles a batch: first the right codes the code index finds a window for, each stored
/// (or not) by one statement that confirms it ([`settle_direct`]); then everything else the
/// full way ([`settle_read`]). The stored ones come first, as if they had arrived first,
/// which any concurrent requests may have; a repeat of one of them later in the batch
/// finds its record, as a second request would.
///
/// Answers are given once the records they name are committed. If the full way fails after
/// records were stored by themselves, only its attempts are answered with the error.
pub(super) fn settle_batch(
    conn: &mut PgConnection,
    attempts: &[Attempt],
    revoked: &RevokedSessions,
    codes: &OpenCodes,
) -> QueryResult<Settled> {
    let latest = attempts.iter().map(|a| a.now).max().unwrap_or_else(Utc::now);
    // An index that could not be read again is not used: the batch goes the full way, and
    // the next one tries the reload again.
    let indexed = !codes.take_reload(latest)
        || match queries::windows_opening_by(conn, latest, latest + codes::HORIZON) {
            Ok(windows) => {
                codes.reload(windows, latest);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the windows for the code index failed");
                codes.invalidate();
                false
            }
        };
    let mut answers: Vec<Option<Result<Outcome, ApiError>>> = attempts.iter().map(|_| None).collect();
    if indexed {
        settle_direct(conn, attempts, revoked, codes, latest, &mut answers)?;
    }
    let rest: Vec<usize> = (0..attempts.len()).filter(|&i| answers[i].is_none()).collect();
    let direct = attempts.len() - rest.len();
    if !rest.is_empty() {
        let others: Vec<&Attempt> = rest.iter().map(|&i| &attempts[i]).collect();
        match settle_read(conn, &others, revoked) {
            Ok(read) => {
                for (i, answer) in rest.iter().zip(read) {
                    answers[*i] = Some(answer);
                }
            }
            Err(err) if direct == 0 => return Err(err),
            Err(err) => {
                // The direct records are committed: they keep their answers.
                let err = ApiError::from(err);
                for i in &rest {
                    answers[*i] = Some(Err(clone_error(&err)));
                }
            }
        }
    }
    let answers =
        answers.into_iter().map(|answer| answer.expect("unwrap: every attempt was answered")).collect();
    Ok(Settled { answers, direct })
}

/// Stores, by one statement, the attempts of live sessions (in this instance's complete view
/// of revoked sessions) whose code the index accepts for one of its windows, and answers
/// those the statement stored (or that repeat one it stored). The statement confirms
/// everything else the full path would read, and leaves out what fails (and repeats of
/// records stored before): those attempts stay unanswered, for the full way.
///
/// Only students all of whose attempts in the batch the index accepts are settled here. A
/// student with a code it does not accept goes the full way with every attempt, in order:
/// otherwise a burst of guesses in one batch would have each guess tried against the index
/// before any failure counted, and the right one stored whatever the throttle said of the
/// guesses before it. A student with right codes only records no failure in this batch, so
/// the lockout the insert reads is exactly what their attempts, in order, would see.
fn settle_direct(
    conn: &mut PgConnection,
    attempts: &[Attempt],
    revoked: &RevokedSessions,
    codes: &OpenCodes,
    latest: DateTime<Utc>,
    answers: &mut [Option<Result<Outcome, ApiError>>],
) -> QueryResult<()> {
    let candidates: Vec<Vec<Arc<OpenWindow>>> =
        codes.candidates(attempts.iter().map(|a| a.code.as_str()), latest);
    let judged: Vec<Option<(&OpenWindow, RecordStatus, bool)>> = attempts
        .iter()
        .zip(&candidates)
        .map(|(a, found)| {
            if revoked.is_revoked(a.session_id) != Some(false) {
                return None;
            }
            let windows: Vec<&OpenWindow> = found.iter().map(Arc::as_ref).collect();
            match judge(a, &windows) {
                Decision::Accept { open, status, stale } => Some((open, status, stale)),
                _ => None,
            }
        })
        .collect();
    let mixed: HashSet<i64> =
        attempts.iter().zip(&judged).filter(|(_, j)| j.is_none()).map(|(a, _)| a.student_id).collect();
    let mut keys = HashSet::new();
    let mut accepted: Vec<Option<(&OpenWindow, bool)>> = Vec::with_capacity(attempts.len());
    let mut new: Vec<NewCheckin> = Vec::new();
    for (a, judged) in attempts.iter().zip(judged) {
        accepted.push(match judged {
            Some((open, status, stale)) if !mixed.contains(&a.student_id) => {
                let first = keys.insert((open.window.lesson_id, a.student_id));
                if first {
                    new.push(new_checkin(a, open, status, stale));
                }
                Some((open, first))
            }
            _ => None,
        });
    }
    if new.is_empty() {
        return Ok(());
    }
    let stored = by_key(records::insert_confirmed_checkins(conn, &new)?);
    for ((a, accepted), answer) in attempts.iter().zip(accepted).zip(answers) {
        if let Some((open, first)) = accepted
            && let Some(record) = stored.get(&(open.window.lesson_id, a.student_id))
        {
            let result = checkin_result(open, record);
            *answer = Some(Ok(if first { Outcome::Created(result) } else { Outcome::Existing(result) }));
        }
    }
    Ok(())
}

/// Records by their (lesson, student) key.
fn by_key(records: Vec<TitledRecord>) -> HashMap<(i64, i64), TitledRecord> {
    records.into_iter().map(|row| ((row.record.lesson_id, row.record.student_id), row)).collect()
}

/// The record an accepted attempt makes.
fn new_checkin<'a>(a: &'a Attempt, open: &OpenWindow, status: RecordStatus, stale: bool) -> NewCheckin<'a> {
    NewCheckin {
        lesson_id: open.window.lesson_id,
        student_id: a.student_id,
        window_id: open.window.id,
        status,
        at: a.now,
        client_ip: a.client.ip.as_deref(),
        user_agent: a.client.user_agent.as_deref(),
        device_id: a.client.device_id.as_deref(),
        stale_code: stale,
    }
}

/// A check-in's answer: the record stored or found for the window's lesson.
fn checkin_result(open: &OpenWindow, found: &TitledRecord) -> CheckinResult {
    CheckinResult {
        lesson_id: open.window.lesson_id,
        lesson_title: found.lesson_title.clone(),
        course_id: open.course_id,
        course_title: found.course_title.clone(),
        status: found.record.status.into(),
        checked_in_at: found.record.checked_in_at,
    }
}

/// Settles attempts the full way, as if they had come one at a time, in order: a student
/// may have several in one batch (checking in to several lessons at once), and a refused
/// code counts towards the throttle of the student's later attempts in it, as a second
/// request would.
///
/// The reads come first, each a statement of its own. A batch with no refused code then
/// makes one write, the insert that also announces the records, which is atomic by itself:
/// no transaction, so no `BEGIN` and `COMMIT` round trips. A batch with a refused code
/// writes in one transaction, under the throttle locks of the students who sent one.
/// Either way the batch's records are stored whole or not at all (an `Err`), and committed
/// before it returns.
fn settle_read(
    conn: &mut PgConnection,
    attempts: &[&Attempt],
    revoked: &RevokedSessions,
) -> QueryResult<Answers> {
    let mut ids: Vec<i64> = attempts.iter().map(|a| a.student_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let earliest = attempts.iter().map(|a| a.now).min().unwrap_or_else(Utc::now);
    let (confirmed, read_failures) = confirm(conn, attempts, &ids, revoked, earliest)?;
    let latest = attempts.iter().map(|a| a.now).max().unwrap_or_else(Utc::now);
    let open = queries::unfinished_windows_for(conn, &ids, earliest, latest)?;
    let mut windows: HashMap<i64, Vec<&OpenWindow>> = HashMap::new();
    for (student, window) in &open {
        windows.entry(*student).or_default().push(window);
    }
    // Each code is judged once; the throttle is applied after the failures are read.
    let judged: Vec<Decision> = attempts
        .iter()
        .zip(&confirmed)
        .map(|(a, confirmed)| match confirmed {
            Confirmed::Unknown => Decision::Unknown,
            Confirmed::Revoked => Decision::Revoked,
            Confirmed::Live => judge(a, windows.get(&a.student_id).map_or(&[], Vec::as_slice)),
        })
        .collect();
    // The wrong-code throttle is shared by every instance. Only a refused code writes a
    // failure, so the students with one in this batch are locked (in id order) and their
    // failures read again; the read is a new statement, so it sees every failure committed
    // before the lock was granted. A right code takes no lock: at most it reads a count that
    // is a moment old (read with the students), and writes no failure, so a student checking
    // in to 20 lessons at once does not queue behind themself.
    let mut contested: Vec<i64> = attempts
        .iter()
        .zip(&judged)
        .filter(|(_, d)| matches!(d, Decision::Rejected(_)))
        .map(|(a, _)| a.student_id)
        .collect();
    contested.sort_unstable();
    contested.dedup();
    // Failures not read with the students, or read before a lock, are read again.
    let (failures, stale): (Failures, &[i64]) = match read_failures {
        Some(failures) => (failures, &contested),
        None => (Failures::new(), &ids),
    };
    let write = |conn: &mut PgConnection, alone: Alone| {
        let failures = reread_failures(conn, failures, stale, earliest)?;
        decide_and_store(conn, attempts, judged, failures, earliest, alone)
    };
    if contested.is_empty() {
        write(conn, Alone::Yes)
    } else {
        conn.transaction(|conn| {
            queries::lock_throttles(conn, &contested)?;
            write(conn, Alone::No)
        })
    }
}

/// `failures` with those of the `stale` students read again.
fn reread_failures(
    conn: &mut PgConnection,
    mut failures: Failures,
    stale: &[i64],
    earliest: DateTime<Utc>,
) -> QueryResult<Failures> {
    if !stale.is_empty() {
        for id in stale {
            failures.remove(id);
        }
        for (student, at) in queries::failures_since(conn, stale, CHECKIN.since(earliest))? {
            failures.entry(student).or_default().push(at);
        }
    }
    Ok(failures)
}

/// Each attempt's answer. A batch's records, once committed, cannot be taken back, so a step
/// after that commit that fails (reading the stored record a repeat answers with) fails only
/// the attempts it concerns: a committed record is never answered with an error.
pub(super) type Answers = Vec<Result<Outcome, ApiError>>;

/// Whether the insert commits by itself (no transaction around the batch's writes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alone {
    Yes,
    No,
}

/// Applies the throttle to the judged attempts in order, stores the new records (announcing
/// them) and the refused codes, and answers each attempt.
fn decide_and_store(
    conn: &mut PgConnection,
    attempts: &[&Attempt],
    judged: Vec<Decision<'_>>,
    mut failures: Failures,
    earliest: DateTime<Utc>,
    alone: Alone,
) -> QueryResult<Answers> {
    // In order: each refused code is a failure the student's later attempts see.
    // The failure that reaches the limit locks the student out, and so does a throttled
    // attempt (its lockout may predate `checkin_throttled_until`): `lockouts` is until when,
    // for the insert of check-ins settled by one statement to read.
    let mut decisions: Vec<Decision> = Vec::with_capacity(attempts.len());
    let mut lockouts: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for (a, judged) in attempts.iter().zip(judged) {
        let decision = match judged {
            Decision::Unknown | Decision::Revoked => judged,
            _ => throttle(a, failures.get(&a.student_id).map_or(&[], Vec::as_slice)).unwrap_or(judged),
        };
        if matches!(decision, Decision::Rejected(_)) {
            failures.entry(a.student_id).or_default().push(a.now);
        }
        if matches!(decision, Decision::Rejected(_) | Decision::Throttled { .. })
            && let Some(until) =
                CHECKIN.locked_until(failures.get(&a.student_id).map_or(&[], Vec::as_slice), a.now)
        {
            lockouts.insert(a.student_id, until);
        }
        decisions.push(decision);
    }
    // Before the insert: in a batch without a transaction, nothing may fail after it but the
    // repeats' read.
    queries::lock_out(conn, &lockouts.into_iter().collect::<Vec<_>>())?;
    // The first accepted attempt of a (lesson, student) makes the record; a later one in the
    // same batch finds it, as it would one request later.
    let mut keys = HashSet::new();
    let first: Vec<bool> = attempts
        .iter()
        .zip(&decisions)
        .map(|(a, d)| match d {
            Decision::Accept { open, .. } => keys.insert((open.window.lesson_id, a.student_id)),
            _ => false,
        })
        .collect();

    let new: Vec<NewCheckin> = attempts
        .iter()
        .zip(&decisions)
        .zip(&first)
        .filter_map(|((a, d), first)| match d {
            Decision::Accept { open, status, stale } if *first => Some(new_checkin(a, open, *status, *stale)),
            _ => None,
        })
        .collect();
    // Inserted and announced to the dashboards in one statement.
    let inserted = by_key(records::insert_checkins(conn, &new)?);
    let repeats: Vec<(i64, i64)> =
        new.iter().map(|n| (n.lesson_id, n.student_id)).filter(|key| !inserted.contains_key(key)).collect();
    // A new statement, so it sees the records of the batches this insert waited for.
    let existing: Result<HashMap<(i64, i64), TitledRecord>, ApiError> =
        match records::find_many(conn, &repeats) {
            Ok(rows) => Ok(by_key(rows)),
            // The insert has committed: only the repeats fail.
            Err(err) if alone == Alone::Yes => Err(ApiError::from(err)),
            // In a transaction, the whole batch fails and nothing of it is stored.
            Err(err) => return Err(err),
        };

    let rejected: Vec<(i64, DateTime<Utc>)> = attempts
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| matches!(d, Decision::Rejected(_)))
        .map(|(a, _)| (a.student_id, a.now))
        .collect();
    queries::record_failures(conn, &rejected, CHECKIN.since(earliest))?;

    attempts
        .iter()
        .zip(decisions)
        .zip(first)
        .map(|((attempt, decision), first)| {
            Ok(Ok(match decision {
                Decision::Unknown => Outcome::UnknownStudent,
                Decision::Revoked => Outcome::SessionRevoked,
                Decision::Throttled { retry_after_secs } => Outcome::Throttled { retry_after_secs },
                Decision::Rejected(verdict) => Outcome::Rejected(verdict),
                Decision::Accept { open, .. } => {
                    let key = (open.window.lesson_id, attempt.student_id);
                    let result = |found: &TitledRecord| checkin_result(open, found);
                    match (inserted.get(&key), &existing) {
                        (Some(record), _) if first => Outcome::Created(result(record)),
                        (Some(record), _) => Outcome::Existing(result(record)),
                        (None, Ok(existing)) => match existing.get(&key) {
                            Some(record) => Outcome::Existing(result(record)),
                            // The record that made this a repeat is gone again: records go only
                            // with their lesson, course or student, so no open check-in matches.
                            None => Outcome::Rejected(Verdict::Invalid),
                        },
                        (None, Err(err)) => return Ok(Err(clone_error(err))),
                    }
                }
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Throttle first, then the code: what the batch decides for one attempt.
    fn decide<'a>(attempt: &Attempt, failures: &[DateTime<Utc>], windows: &[&'a OpenWindow]) -> Decision<'a> {
        throttle(attempt, failures).unwrap_or_else(|| judge(attempt, windows))
    }
    use crate::client::ClientInfo;
    use crate::domain::window::Window;

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
            course_id: id,
        }
    }

    fn attempt(code: String, now: DateTime<Utc>) -> Attempt {
        Attempt { student_id: 7, session_id: 70, code, client: ClientInfo::default(), now }
    }

    #[test]
    fn the_matching_window_among_several_is_accepted_and_lateness_is_computed() {
        let (first, second) = (open(1, None), open(2, Some(30)));
        let code = second.window.schedule().code(4);
        let windows = [&first, &second];
        match decide(&attempt(code.clone(), at(45)), &[], &windows) {
            Decision::Accept { open, status, stale } => {
                assert_eq!(open.window.id, 2);
                assert_eq!(status, RecordStatus::Late, "45 s after opening, late after 30");
                assert!(!stale, "the current step's code");
            }
            _ => panic!("the code of window 2 was not accepted"),
        }
        assert!(matches!(
            decide(&attempt(code, at(45)), &[], &[&first]),
            Decision::Rejected(Verdict::Invalid)
        ));
    }

    #[test]
    fn the_previous_steps_code_in_its_grace_period_is_accepted_as_stale() {
        let window = open(1, None);
        let previous = window.window.schedule().code(3);
        // Steps of 10 s from 0: 41 s is 1 s into step 4, within the 5 s grace.
        match decide(&attempt(previous, at(41)), &[], &[&window]) {
            Decision::Accept { stale, .. } => assert!(stale),
            _ => panic!("the previous code in its grace period was refused"),
        }
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

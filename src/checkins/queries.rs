//! Queries behind a student's check-in: their open windows, and the wrong-code throttle.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Timestamptz};

use crate::db::Prepared;
use crate::domain::settings::CheckinSettings;
use crate::domain::window::Window;
use crate::schema::{checkin_failures, checkin_windows};

/// An open window of one of the student's courses. (The titles an answer names come with the
/// record the check-in stores or finds: the lookup reads no more tables than it needs.)
pub struct OpenWindow {
    pub window: Window,
    pub course_id: i64,
}

/// The unfinished windows of these students' courses that opened by `until` and close after
/// `from`, each with the student it is for (whether each is open at a given moment is the
/// caller's to decide). The bounds leave out automatic windows planned ahead, and the ones
/// that closed by themselves and were never stamped, which pile up over a term.
///
/// Written out so it always starts from the students' enrolments: `OFFSET 0` keeps the
/// lateral subquery from being merged into one join, which the planner would otherwise
/// drive from all open windows of the institution when its statistics run behind (11 ms
/// per call with 1,000 open lessons, instead of 0.1 ms). Each enrolment then reads only its
/// course's windows opened within the longest a window lasts before `from`, one range of
/// `checkin_windows_course_open_idx`, however many lessons (and windows) the course has.
/// It joins nothing else: with the lessons and courses joined for their titles, planning it
/// took twice as long and check-ins with 20 courses a student were 20% slower
/// (`benches/RESULTS.md`).
pub fn unfinished_windows_for(
    conn: &mut PgConnection,
    students: &[i64],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<Vec<(i64, OpenWindow)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        student_id: i64,
        #[diesel(embed)]
        window: Window,
        #[diesel(sql_type = BigInt)]
        course_id: i64,
    }
    let rows: Vec<Row> = Prepared::new(
        "SELECT e.student_id, e.course_id, o.* \
         FROM enrollments e \
         CROSS JOIN LATERAL ( \
             SELECT w.id, w.lesson_id, w.secret, w.opened_at, w.closes_at, w.closed_at, \
                    w.rotation_seconds, w.code_length, w.late_after_seconds \
             FROM checkin_windows w \
             WHERE w.course_id = e.course_id AND w.closed_at IS NULL \
               AND w.opened_at > {} AND w.opened_at <= {} AND w.closes_at > {} \
             OFFSET 0 \
         ) AS o \
         WHERE e.student_id = ANY({}) AND e.left_at IS NULL \
         ORDER BY o.id",
    )
    .time(from - CheckinSettings::longest())
    .time(until)
    .time(from)
    .ids(students)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let Row { student_id, window, course_id } = row;
            (student_id, OpenWindow { window, course_id })
        })
        .collect())
}

/// Every unfinished window that opened after `from` less the longest a window lasts, opens
/// by `until` and closes after `from`, with its course: the windows of the code index
/// (`checkins::codes`). One range of `checkin_windows_open_idx`.
pub fn windows_opening_by(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<Vec<OpenWindow>> {
    let rows: Vec<(Window, i64)> = checkin_windows::table
        .filter(checkin_windows::closed_at.is_null())
        .filter(checkin_windows::opened_at.gt(from - CheckinSettings::longest()))
        .filter(checkin_windows::opened_at.le(until))
        .filter(checkin_windows::closes_at.gt(from))
        .select((Window::as_select(), checkin_windows::course_id))
        .load(conn)?;
    Ok(rows.into_iter().map(|(window, course_id)| OpenWindow { window, course_id }).collect())
}

/// Rejected codes of these students since `since`.
pub fn failures_since(
    conn: &mut PgConnection,
    students: &[i64],
    since: DateTime<Utc>,
) -> QueryResult<Vec<(i64, DateTime<Utc>)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        student_id: i64,
        #[diesel(sql_type = Timestamptz)]
        failed_at: DateTime<Utc>,
    }
    // Planned for each call (not a cached statement): the table is small between bursts of
    // wrong codes and grows quickly during one, and a plan cached while it was small keeps
    // scanning all of it.
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT student_id, failed_at FROM checkin_failures WHERE student_id = ANY($1) AND failed_at > $2",
    )
    .bind::<Array<BigInt>, _>(students)
    .bind::<Timestamptz, _>(since)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.student_id, r.failed_at)).collect())
}

/// Records rejected codes, forgetting those students' failures older than `forget_before`.
pub fn record_failures(
    conn: &mut PgConnection,
    failures: &[(i64, DateTime<Utc>)],
    forget_before: DateTime<Utc>,
) -> QueryResult<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let students: Vec<i64> = failures.iter().map(|(student, _)| *student).collect();
    // Planned for each call, like `failures_since`.
    diesel::sql_query("DELETE FROM checkin_failures WHERE student_id = ANY($1) AND failed_at <= $2")
        .bind::<Array<BigInt>, _>(&students)
        .bind::<Timestamptz, _>(forget_before)
        .execute(conn)?;
    let rows: Vec<_> = failures
        .iter()
        .map(|(student, at)| (checkin_failures::student_id.eq(*student), checkin_failures::failed_at.eq(*at)))
        .collect();
    diesel::insert_into(checkin_failures::table).values(rows).execute(conn).map(drop)
}

/// Locks these students out of check-in until the given times, never shortening a lockout
/// (written by the batch whose failure reached the throttle's limit, under their throttle
/// locks, or that found them throttled; a row already locked out until then is not
/// written again).
pub fn lock_out(conn: &mut PgConnection, until: &[(i64, DateTime<Utc>)]) -> QueryResult<()> {
    if until.is_empty() {
        return Ok(());
    }
    let (students, times): (Vec<i64>, Vec<DateTime<Utc>>) = until.iter().copied().unzip();
    diesel::sql_query(
        "UPDATE users u SET checkin_throttled_until = t.until \
         FROM unnest($1::int8[], $2::timestamptz[]) AS t (id, until) \
         WHERE u.id = t.id AND (u.checkin_throttled_until IS NULL OR u.checkin_throttled_until < t.until)",
    )
    .bind::<Array<BigInt>, _>(&students)
    .bind::<Array<Timestamptz>, _>(&times)
    .execute(conn)
    .map(drop)
}

/// Locks these students' wrong-code throttles for the transaction, in id order so
/// concurrent batches cannot deadlock: while held, no other batch on any instance can count
/// or record a failure of theirs.
pub fn lock_throttles(conn: &mut PgConnection, students: &[i64]) -> QueryResult<()> {
    Prepared::new(
        "SELECT pg_advisory_xact_lock(hashtextextended('checkin:' || id, 0)) \
         FROM (SELECT DISTINCT id FROM unnest({}::int8[]) AS id ORDER BY id) AS s",
    )
    .ids(students)
    .execute(conn)
    .map(drop)
}

/// A student of a batch, with their rejected codes since the throttle window began.
#[derive(QueryableByName)]
pub struct StudentRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Bool)]
    pub disabled: bool,
    #[diesel(sql_type = Array<Timestamptz>)]
    pub failures: Vec<DateTime<Utc>>,
}

/// Confirms which of these ids are students, with their failures since `since` read in the
/// same statement.
pub fn confirm_students(
    conn: &mut PgConnection,
    students: &[i64],
    since: DateTime<Utc>,
) -> QueryResult<Vec<StudentRow>> {
    diesel::sql_query(
        "SELECT id, disabled, ARRAY(SELECT f.failed_at FROM checkin_failures f \
                                    WHERE f.student_id = u.id AND f.failed_at > $2) AS failures \
         FROM users u WHERE id = ANY($1) AND role = 'student'",
    )
    .bind::<Array<BigInt>, _>(students)
    .bind::<Timestamptz, _>(since)
    .load(conn)
}

/// Like [`confirm_students`], for (student, session) pairs, reading each session:
/// (student, session, revoked, live) — live means neither revoked, nor ended by `now`, nor
/// a disabled account. A pair whose student is not a student, or whose session is not
/// theirs, is left out.
pub fn confirm_sessions(
    conn: &mut PgConnection,
    pairs: &[(i64, i64)],
    now: DateTime<Utc>,
) -> QueryResult<Vec<(i64, i64, bool, bool)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        student_id: i64,
        #[diesel(sql_type = BigInt)]
        session_id: i64,
        #[diesel(sql_type = Bool)]
        revoked: bool,
        #[diesel(sql_type = Bool)]
        live: bool,
    }
    let (students, sessions): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
    let rows: Vec<Row> = Prepared::new(
        "SELECT p.student_id, p.session_id, x.revoked_at IS NOT NULL AS revoked, \
                x.revoked_at IS NULL AND x.expires_at > {} AND NOT u.disabled AS live \
         FROM (SELECT DISTINCT * FROM unnest({}::int8[], {}::int8[]) AS p(student_id, session_id)) AS p \
         JOIN users u ON u.id = p.student_id AND u.role = 'student' \
         JOIN sessions x ON x.id = p.session_id AND x.user_id = p.student_id",
    )
    .time(now)
    .ids(&students)
    .ids(&sessions)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.student_id, r.session_id, r.revoked, r.live)).collect())
}

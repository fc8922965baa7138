//! Attendance records as stored, and the queries that read and write them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::courses::queries as courses;
use crate::db::Prepared;
use crate::domain::enrolment::Enrolment;
use crate::domain::status::{Method, RecordStatus, Status};
use crate::domain::user::UserRef;
use crate::schema::{attendance, attendance_audit, courses as courses_table, lessons, users};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = attendance, check_for_backend(diesel::pg::Pg))]
pub struct RecordRow {
    pub lesson_id: i64,
    pub student_id: i64,
    pub status: RecordStatus,
    pub method: Method,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub device_id: Option<String>,
    /// Made with the previous step's code in its grace period.
    pub stale_code: bool,
}

impl RecordRow {
    /// Its proxy-attendance flags (`shared_device`, `stale_code`), given the devices of its
    /// lesson that checked in more than one student.
    pub fn flags(&self, shared: Option<&HashSet<String>>) -> Vec<String> {
        let mut flags = Vec::new();
        if self.device_id.as_ref().is_some_and(|device| shared.is_some_and(|shared| shared.contains(device)))
        {
            flags.push(super::SHARED_DEVICE.to_owned());
        }
        if self.stale_code {
            flags.push(super::STALE_CODE.to_owned());
        }
        flags
    }
}

pub struct NewCheckin<'a> {
    pub lesson_id: i64,
    pub student_id: i64,
    pub window_id: i64,
    pub status: RecordStatus,
    pub at: DateTime<Utc>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// The code was the previous step's, accepted in its grace period.
    pub stale_code: bool,
}

/// A record with the titles of its lesson and course, as a check-in's answer names them.
#[derive(Debug, Clone, QueryableByName)]
pub struct TitledRecord {
    #[diesel(embed)]
    pub record: RecordRow,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub lesson_title: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub course_title: String,
}

/// The statement of [`insert_checkins`] and [`insert_confirmed_checkins`]: `$1` is the
/// method, `$2`–`$10` the arrays of the new records, `$11` the events channel; `filter`
/// is what the inserted rows are selected from.
macro_rules! insert_checkins_sql {
    ($filter:literal) => {
        concat!(
            "WITH new AS ( \
                 INSERT INTO attendance (lesson_id, student_id, status, method, checked_in_at, window_id, \
                                         client_ip, user_agent, device_id, stale_code, updated_at) \
                 SELECT n.lesson_id, n.student_id, n.status, {}, n.at, n.window_id, n.client_ip, \
                        n.user_agent, n.device_id, n.stale_code, n.at \
                 FROM unnest({}::int8[], {}::int8[], {}::text[], {}::timestamptz[], {}::int8[], {}::text[], \
                             {}::text[], {}::text[], {}::bool[]) \
                      AS n (lesson_id, student_id, status, at, window_id, client_ip, user_agent, device_id, \
                            stale_code) ",
            $filter,
            " ORDER BY n.lesson_id, n.student_id \
                 ON CONFLICT DO NOTHING \
                 RETURNING lesson_id, student_id, status, method, checked_in_at, note, device_id, stale_code) \
             SELECT new.*, l.title AS lesson_title, c.title AS course_title, \
                    pg_notify({}, 'record:' || new.lesson_id || ':' || new.student_id) AS announced \
             FROM new JOIN lessons l ON l.id = new.lesson_id JOIN courses c ON c.id = l.course_id"
        )
    };
}

/// Records code check-ins, skipping any student who already has a record for that lesson,
/// and announces each new record to the dashboards of every instance (`Event::Record` on
/// `events::CHANNEL`); returns the records that were new, with their titles. The caller has
/// confirmed each one (the student, their window, the throttle) in the same batch.
///
/// This is one statement of fixed text: one round trip, prepared once per connection
/// whatever the batch size, and atomic on its own, so a batch without a refused code needs
/// no transaction around it (`checkins::settle`). The rows are inserted in key order, so two
/// batches racing for the same keys wait for each other instead of deadlocking.
pub fn insert_checkins(conn: &mut PgConnection, new: &[NewCheckin<'_>]) -> QueryResult<Vec<TitledRecord>> {
    insert(conn, new, insert_checkins_sql!(""))
}

/// Like [`insert_checkins`], for check-ins nothing was read for (the window was found by
/// its code, `checkins::codes`): a record is stored only if, when the statement runs, its
/// window is open at its time and is that lesson's, the student is enrolled in the window's
/// course (a running enrolment period), and the student's account is a student's, not
/// disabled, and not locked out by the wrong-code throttle at that time. The rest are left
/// out, like repeats, for the caller to settle the full way.
pub fn insert_confirmed_checkins(
    conn: &mut PgConnection,
    new: &[NewCheckin<'_>],
) -> QueryResult<Vec<TitledRecord>> {
    insert(
        conn,
        new,
        insert_checkins_sql!(
            "JOIN checkin_windows w ON w.id = n.window_id AND w.lesson_id = n.lesson_id \
                  AND w.closed_at IS NULL AND w.opened_at <= n.at AND w.closes_at > n.at \
             JOIN enrollments e ON e.course_id = w.course_id AND e.student_id = n.student_id \
                  AND e.left_at IS NULL \
             JOIN users u ON u.id = n.student_id AND u.role = 'student' AND NOT u.disabled \
                  AND (u.checkin_throttled_until IS NULL OR u.checkin_throttled_until <= n.at)"
        ),
    )
}

fn insert(
    conn: &mut PgConnection,
    new: &[NewCheckin<'_>],
    sql: &'static str,
) -> QueryResult<Vec<TitledRecord>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let lessons: Vec<i64> = new.iter().map(|n| n.lesson_id).collect();
    let students: Vec<i64> = new.iter().map(|n| n.student_id).collect();
    let statuses: Vec<&str> = new.iter().map(|n| n.status.as_str()).collect();
    let times: Vec<DateTime<Utc>> = new.iter().map(|n| n.at).collect();
    let windows: Vec<i64> = new.iter().map(|n| n.window_id).collect();
    let ips: Vec<Option<&str>> = new.iter().map(|n| n.client_ip).collect();
    let agents: Vec<Option<&str>> = new.iter().map(|n| n.user_agent).collect();
    let devices: Vec<Option<&str>> = new.iter().map(|n| n.device_id).collect();
    let stale: Vec<bool> = new.iter().map(|n| n.stale_code).collect();
    // The notification's payload is `Event::Record`'s encoding, `record:<lesson>:<student>`.
    Prepared::new(sql)
        .text(Method::Code.as_str())
        .ids(&lessons)
        .ids(&students)
        .strs(&statuses)
        .times(&times)
        .ids(&windows)
        .optional_strs(&ips)
        .optional_strs(&agents)
        .optional_strs(&devices)
        .bools(&stale)
        .text(crate::events::CHANNEL)
        .load(conn)
}

/// The records for these (lesson, student) pairs that exist, with their titles.
pub fn find_many(conn: &mut PgConnection, keys: &[(i64, i64)]) -> QueryResult<Vec<TitledRecord>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let lessons: Vec<i64> = keys.iter().map(|(lesson, _)| *lesson).collect();
    let students: Vec<i64> = keys.iter().map(|(_, student)| *student).collect();
    let rows: Vec<(RecordRow, String, String)> = attendance::table
        .inner_join(lessons::table.inner_join(courses_table::table))
        .filter(attendance::lesson_id.eq_any(lessons))
        .filter(attendance::student_id.eq_any(students))
        .select((RecordRow::as_select(), lessons::title, courses_table::title))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(row, ..)| keys.contains(&(row.lesson_id, row.student_id)))
        .map(|(record, lesson_title, course_title)| TitledRecord { record, lesson_title, course_title })
        .collect())
}

pub fn find(conn: &mut PgConnection, lesson_id: i64, student_id: i64) -> QueryResult<Option<RecordRow>> {
    attendance::table.find((lesson_id, student_id)).select(RecordRow::as_select()).first(conn).optional()
}

/// The record, locked for this transaction (so the status an audit row says it came from is
/// the one it had).
pub fn find_for_update(
    conn: &mut PgConnection,
    lesson_id: i64,
    student_id: i64,
) -> QueryResult<Option<RecordRow>> {
    attendance::table
        .find((lesson_id, student_id))
        .select(RecordRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Every student the lesson's results list: those for whom it counts (see
/// `domain::enrolment`) plus anyone with a record for it, each with whether they are
/// enrolled now and their record (if any), ordered by student number then username.
///
/// The ids come first, from the two indexed tables, so the cost follows the class size
/// and not the number of users in the system (filtering `users` by "enrolled or has a
/// record" scanned every user: 0.4 s per dashboard with 20,000 students).
pub fn roster_with_records(
    conn: &mut PgConnection,
    course_id: i64,
    lesson_id: i64,
    first_opened_at: Option<DateTime<Utc>>,
) -> QueryResult<Vec<(UserRef, bool, Option<RecordRow>)>> {
    let enrolments = courses::enrolments_in(conn, course_id)?;
    let recorded: Vec<i64> = attendance::table
        .filter(attendance::lesson_id.eq(lesson_id))
        .select(attendance::student_id)
        .load(conn)?;
    let ids: Vec<i64> = enrolments
        .iter()
        .filter(|(_, enrolment)| enrolment.counts(first_opened_at, false))
        .map(|(id, _)| *id)
        .chain(recorded)
        .collect();
    let rows: Vec<(UserRef, Option<RecordRow>)> = users::table
        .left_join(
            attendance::table
                .on(attendance::student_id.eq(users::id).and(attendance::lesson_id.eq(lesson_id))),
        )
        .filter(users::id.eq_any(ids))
        .select((UserRef::as_select(), Option::<RecordRow>::as_select()))
        .order((users::student_number.asc().nulls_last(), users::username.asc()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(student, record)| {
            let enrolled = enrolments.get(&student.id).is_some_and(Enrolment::is_current);
            (student, enrolled, record)
        })
        .collect())
}

/// Device ids that checked in more than one student for the lesson.
pub fn shared_devices(conn: &mut PgConnection, lesson_id: i64) -> QueryResult<HashSet<String>> {
    Ok(shared_devices_of(conn, &[lesson_id])?.remove(&lesson_id).unwrap_or_default())
}

/// For each of these lessons, the device ids that checked in more than one student.
pub fn shared_devices_of(
    conn: &mut PgConnection,
    lesson_ids: &[i64],
) -> QueryResult<HashMap<i64, HashSet<String>>> {
    let devices: Vec<(i64, Option<String>)> = attendance::table
        .filter(attendance::lesson_id.eq_any(lesson_ids))
        .filter(attendance::device_id.is_not_null())
        .group_by((attendance::lesson_id, attendance::device_id))
        .having(diesel::dsl::count_star().gt(1))
        .select((attendance::lesson_id, attendance::device_id))
        .load(conn)?;
    let mut shared: HashMap<i64, HashSet<String>> = HashMap::new();
    for (lesson, device) in devices {
        shared.entry(lesson).or_default().extend(device);
    }
    Ok(shared)
}

pub struct Change<'a> {
    pub lesson_id: i64,
    pub student_id: i64,
    pub status: RecordStatus,
    pub note: Option<&'a str>,
    pub by: i64,
    pub at: DateTime<Utc>,
    /// The effective status before the change, for the audit trail.
    pub old_status: Status,
}

/// A teacher's change: upserts the record (keeping how and when the student checked in,
/// if they did) and appends to the audit trail.
pub fn apply_change(conn: &mut PgConnection, change: &Change<'_>) -> QueryResult<RecordRow> {
    let row = diesel::insert_into(attendance::table)
        .values(new_mark(change))
        .on_conflict((attendance::lesson_id, attendance::student_id))
        .do_update()
        .set((
            attendance::status.eq(change.status),
            attendance::method.eq(Method::Manual),
            attendance::note.eq(change.note),
            attendance::updated_at.eq(change.at),
        ))
        .returning(RecordRow::as_returning())
        .get_result(conn)?;
    audit(conn, change)?;
    Ok(row)
}

/// A teacher's mark for a student who has no record: `None`, and nothing written, if they
/// have one by now (a check-in that committed meanwhile is never overwritten).
pub fn add_mark(conn: &mut PgConnection, change: &Change<'_>) -> QueryResult<Option<RecordRow>> {
    let row = diesel::insert_into(attendance::table)
        .values(new_mark(change))
        .on_conflict_do_nothing()
        .returning(RecordRow::as_returning())
        .get_result(conn)
        .optional()?;
    if row.is_some() {
        audit(conn, change)?;
    }
    Ok(row)
}

#[allow(clippy::type_complexity)]
fn new_mark<'a>(
    change: &'a Change<'a>,
) -> (
    diesel::dsl::Eq<attendance::lesson_id, i64>,
    diesel::dsl::Eq<attendance::student_id, i64>,
    diesel::dsl::Eq<attendance::status, RecordStatus>,
    diesel::dsl::Eq<attendance::method, Method>,
    diesel::dsl::Eq<attendance::note, Option<&'a str>>,
    diesel::dsl::Eq<attendance::updated_at, DateTime<Utc>>,
) {
    (
        attendance::lesson_id.eq(change.lesson_id),
        attendance::student_id.eq(change.student_id),
        attendance::status.eq(change.status),
        attendance::method.eq(Method::Manual),
        attendance::note.eq(change.note),
        attendance::updated_at.eq(change.at),
    )
}

fn audit(conn: &mut PgConnection, change: &Change<'_>) -> QueryResult<()> {
    diesel::insert_into(attendance_audit::table)
        .values((
            attendance_audit::lesson_id.eq(change.lesson_id),
            attendance_audit::student_id.eq(change.student_id),
            attendance_audit::changed_by.eq(change.by),
            attendance_audit::changed_at.eq(change.at),
            attendance_audit::old_status.eq(change.old_status.as_str()),
            attendance_audit::new_status.eq(change.status),
            attendance_audit::note.eq(change.note),
        ))
        .execute(conn)
        .map(drop)
}

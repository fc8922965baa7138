//! Queries behind a student's check-in: their open windows, and the wrong-code throttle.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::lessons::window::Window;
use crate::schema::{checkin_failures, checkin_windows, courses, enrollments, lessons};

/// An open window of one of the student's courses, with what the answer names.
pub struct OpenWindow {
    pub window: Window,
    pub lesson_title: String,
    pub course_id: i64,
    pub course_title: String,
}

pub fn open_windows_for(
    conn: &mut PgConnection,
    student_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<OpenWindow>> {
    let rows: Vec<(Window, String, i64, String)> = checkin_windows::table
        .inner_join(lessons::table.inner_join(courses::table.inner_join(enrollments::table)))
        .filter(enrollments::student_id.eq(student_id))
        .filter(checkin_windows::closed_at.is_null())
        .filter(checkin_windows::opened_at.le(now))
        .filter(checkin_windows::closes_at.gt(now))
        .select((Window::as_select(), lessons::title, courses::id, courses::title))
        .order(checkin_windows::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(window, lesson_title, course_id, course_title)| OpenWindow {
            window,
            lesson_title,
            course_id,
            course_title,
        })
        .collect())
}

/// Serialises one student's check-ins, so the throttle and idempotency are exact even for
/// concurrent requests (possibly on different server instances).
pub fn lock_student(conn: &mut PgConnection, student_id: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('checkin:' || $1, 0))")
        .bind::<diesel::sql_types::BigInt, _>(student_id)
        .execute(conn)
        .map(drop)
}

/// Rejected codes since `since`, and the oldest of them.
pub fn recent_failures(
    conn: &mut PgConnection,
    student_id: i64,
    since: DateTime<Utc>,
) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    checkin_failures::table
        .filter(checkin_failures::student_id.eq(student_id))
        .filter(checkin_failures::failed_at.gt(since))
        .select((diesel::dsl::count_star(), diesel::dsl::min(checkin_failures::failed_at)))
        .first(conn)
}

/// Records a rejected code, forgetting the student's failures older than `forget_before`.
pub fn record_failure(
    conn: &mut PgConnection,
    student_id: i64,
    now: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(
        checkin_failures::table
            .filter(checkin_failures::student_id.eq(student_id))
            .filter(checkin_failures::failed_at.le(forget_before)),
    )
    .execute(conn)?;
    diesel::insert_into(checkin_failures::table)
        .values((checkin_failures::student_id.eq(student_id), checkin_failures::failed_at.eq(now)))
        .execute(conn)
        .map(drop)
}

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

/// The unfinished windows of these students' courses that opened by `until`, each with the
/// student it is for (whether each is open at a given moment is the caller's to decide).
pub fn unfinished_windows_for(
    conn: &mut PgConnection,
    students: &[i64],
    until: DateTime<Utc>,
) -> QueryResult<Vec<(i64, OpenWindow)>> {
    let rows: Vec<(i64, Window, String, i64, String)> = checkin_windows::table
        .inner_join(lessons::table.inner_join(courses::table.inner_join(enrollments::table)))
        .filter(enrollments::student_id.eq_any(students))
        .filter(checkin_windows::closed_at.is_null())
        .filter(checkin_windows::opened_at.le(until))
        .select((enrollments::student_id, Window::as_select(), lessons::title, courses::id, courses::title))
        .order(checkin_windows::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(student, window, lesson_title, course_id, course_title)| {
            (student, OpenWindow { window, lesson_title, course_id, course_title })
        })
        .collect())
}

/// Rejected codes of these students since `since`.
pub fn failures_since(
    conn: &mut PgConnection,
    students: &[i64],
    since: DateTime<Utc>,
) -> QueryResult<Vec<(i64, DateTime<Utc>)>> {
    checkin_failures::table
        .filter(checkin_failures::student_id.eq_any(students))
        .filter(checkin_failures::failed_at.gt(since))
        .select((checkin_failures::student_id, checkin_failures::failed_at))
        .load(conn)
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
    diesel::delete(
        checkin_failures::table
            .filter(checkin_failures::student_id.eq_any(students))
            .filter(checkin_failures::failed_at.le(forget_before)),
    )
    .execute(conn)?;
    let rows: Vec<_> = failures
        .iter()
        .map(|(student, at)| (checkin_failures::student_id.eq(*student), checkin_failures::failed_at.eq(*at)))
        .collect();
    diesel::insert_into(checkin_failures::table).values(rows).execute(conn).map(drop)
}

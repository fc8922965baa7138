//! Lesson and check-in window queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use crate::domain::status::RecordStatus;
use crate::domain::window::Window;
use crate::schema::{attendance, checkin_windows, lessons};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = lessons, check_for_backend(diesel::pg::Pg))]
pub struct LessonRow {
    pub id: i64,
    pub course_id: i64,
    pub title: String,
    pub starts_at: Option<DateTime<Utc>>,
    /// When check-in was first opened: who the lesson counts for is decided at this instant.
    pub first_opened_at: Option<DateTime<Utc>>,
}

pub fn insert(
    conn: &mut PgConnection,
    course_id: i64,
    title: &str,
    starts_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> QueryResult<LessonRow> {
    diesel::insert_into(lessons::table)
        .values((
            lessons::course_id.eq(course_id),
            lessons::title.eq(title),
            lessons::starts_at.eq(starts_at),
            lessons::created_at.eq(now),
        ))
        .returning(LessonRow::as_returning())
        .get_result(conn)
}

pub fn get(conn: &mut PgConnection, id: i64) -> QueryResult<LessonRow> {
    lessons::table.find(id).select(LessonRow::as_select()).first(conn)
}

/// A course's lessons, by start time (unscheduled last), then id.
pub fn for_course(conn: &mut PgConnection, course_id: i64) -> QueryResult<Vec<LessonRow>> {
    lessons::table
        .filter(lessons::course_id.eq(course_id))
        .select(LessonRow::as_select())
        .order((lessons::starts_at.asc().nulls_last(), lessons::id.asc()))
        .load(conn)
}

/// The most recently opened window of each lesson that has one.
pub fn latest_windows(conn: &mut PgConnection, lesson_ids: &[i64]) -> QueryResult<HashMap<i64, Window>> {
    let windows: Vec<Window> = checkin_windows::table
        .filter(checkin_windows::lesson_id.eq_any(lesson_ids))
        .distinct_on(checkin_windows::lesson_id)
        .order((checkin_windows::lesson_id, checkin_windows::opened_at.desc(), checkin_windows::id.desc()))
        .select(Window::as_select())
        .load(conn)?;
    Ok(windows.into_iter().map(|w| (w.lesson_id, w)).collect())
}

pub fn latest_window(conn: &mut PgConnection, lesson_id: i64) -> QueryResult<Option<Window>> {
    Ok(latest_windows(conn, &[lesson_id])?.remove(&lesson_id))
}

/// A student's record status for each of the lessons that has one.
pub fn record_statuses(
    conn: &mut PgConnection,
    student_id: i64,
    lesson_ids: &[i64],
) -> QueryResult<HashMap<i64, RecordStatus>> {
    let rows: Vec<(i64, RecordStatus)> = attendance::table
        .filter(attendance::student_id.eq(student_id))
        .filter(attendance::lesson_id.eq_any(lesson_ids))
        .select((attendance::lesson_id, attendance::status))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// The lesson's window that has not been finalised, locked for this transaction.
pub fn unfinalised_window_for_update(conn: &mut PgConnection, lesson_id: i64) -> QueryResult<Option<Window>> {
    checkin_windows::table
        .filter(checkin_windows::lesson_id.eq(lesson_id))
        .filter(checkin_windows::closed_at.is_null())
        .select(Window::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Records the lesson's first opening (later openings leave it as it is).
pub fn mark_opened(conn: &mut PgConnection, lesson_id: i64, at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(lessons::table.find(lesson_id).filter(lessons::first_opened_at.is_null()))
        .set(lessons::first_opened_at.eq(at))
        .execute(conn)
        .map(drop)
}

/// Stamps a window's close time.
pub fn set_closed_at(conn: &mut PgConnection, window_id: i64, at: DateTime<Utc>) -> QueryResult<Window> {
    diesel::update(checkin_windows::table.find(window_id))
        .set(checkin_windows::closed_at.eq(at))
        .returning(Window::as_returning())
        .get_result(conn)
}

pub struct NewWindow<'a> {
    pub lesson_id: i64,
    pub secret: &'a [u8],
    pub opened_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub rotation_seconds: i32,
    pub code_length: i32,
    pub late_after_seconds: Option<i32>,
    pub opened_by: i64,
}

/// Inserts a window; `None` if the lesson already has an unfinalised one (a concurrent
/// open won the race).
pub fn insert_window(conn: &mut PgConnection, new: &NewWindow<'_>) -> QueryResult<Option<Window>> {
    let inserted = diesel::insert_into(checkin_windows::table)
        .values((
            checkin_windows::lesson_id.eq(new.lesson_id),
            checkin_windows::secret.eq(new.secret),
            checkin_windows::opened_at.eq(new.opened_at),
            checkin_windows::closes_at.eq(new.closes_at),
            checkin_windows::rotation_seconds.eq(new.rotation_seconds),
            checkin_windows::code_length.eq(new.code_length),
            checkin_windows::late_after_seconds.eq(new.late_after_seconds),
            checkin_windows::opened_by.eq(new.opened_by),
        ))
        .returning(Window::as_returning())
        .get_result(conn);
    match inserted {
        Ok(window) => Ok(Some(window)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(other) => Err(other),
    }
}

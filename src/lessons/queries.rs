//! Lesson and check-in window queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use crate::domain::lesson::LessonFields;
use crate::domain::settings::{AutoCheckin, CheckinSettings};
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
    /// When check-in was (or, for an automatic window ahead, will be) first opened: who the
    /// lesson counts for is decided at this instant.
    pub first_opened_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub cancelled: bool,
    #[diesel(embed)]
    pub auto: AutoColumns,
}

/// The automatic check-in settings as stored, all set or all `NULL`.
#[derive(Debug, Clone, Copy, Default, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = lessons, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct AutoColumns {
    pub auto_open_offset_minutes: Option<i32>,
    pub auto_rotation_seconds: Option<i32>,
    pub auto_code_length: Option<i32>,
    pub auto_duration_seconds: Option<i32>,
    pub auto_late_after_seconds: Option<i32>,
}

impl AutoColumns {
    pub fn get(&self) -> Option<AutoCheckin> {
        Some(AutoCheckin {
            open_offset_minutes: self.auto_open_offset_minutes?,
            settings: CheckinSettings {
                rotation_seconds: self.auto_rotation_seconds?,
                code_length: self.auto_code_length?,
                duration_seconds: self.auto_duration_seconds?,
                late_after_seconds: self.auto_late_after_seconds,
            },
        })
    }
}

impl From<Option<AutoCheckin>> for AutoColumns {
    fn from(auto: Option<AutoCheckin>) -> Self {
        let Some(auto) = auto else { return Self::default() };
        Self {
            auto_open_offset_minutes: Some(auto.open_offset_minutes),
            auto_rotation_seconds: Some(auto.settings.rotation_seconds),
            auto_code_length: Some(auto.settings.code_length),
            auto_duration_seconds: Some(auto.settings.duration_seconds),
            auto_late_after_seconds: auto.settings.late_after_seconds,
        }
    }
}

impl LessonRow {
    pub fn fields(&self) -> LessonFields {
        LessonFields {
            title: self.title.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            cancelled: self.cancelled,
            auto: self.auto.get(),
        }
    }
}

/// Inserts lessons; returns them in the same order.
pub fn insert_many(
    conn: &mut PgConnection,
    course_id: i64,
    lessons: &[LessonFields],
    now: DateTime<Utc>,
) -> QueryResult<Vec<LessonRow>> {
    let rows: Vec<_> = lessons
        .iter()
        .map(|lesson| {
            (
                lessons::course_id.eq(course_id),
                lessons::title.eq(&lesson.title),
                lessons::starts_at.eq(lesson.starts_at),
                lessons::ends_at.eq(lesson.ends_at),
                lessons::cancelled.eq(lesson.cancelled),
                AutoColumns::from(lesson.auto),
                lessons::created_at.eq(now),
            )
        })
        .collect();
    let mut inserted: Vec<LessonRow> = diesel::insert_into(lessons::table)
        .values(rows)
        .returning(LessonRow::as_returning())
        .get_results(conn)?;
    // Identity values follow the VALUES order.
    inserted.sort_by_key(|l| l.id);
    Ok(inserted)
}

/// Writes the teacher's fields of a lesson.
pub fn update(conn: &mut PgConnection, id: i64, fields: &LessonFields) -> QueryResult<LessonRow> {
    diesel::update(lessons::table.find(id))
        .set((
            lessons::title.eq(&fields.title),
            lessons::starts_at.eq(fields.starts_at),
            lessons::ends_at.eq(fields.ends_at),
            lessons::cancelled.eq(fields.cancelled),
            AutoColumns::from(fields.auto),
        ))
        .returning(LessonRow::as_returning())
        .get_result(conn)
}

pub fn get(conn: &mut PgConnection, id: i64) -> QueryResult<LessonRow> {
    lessons::table.find(id).select(LessonRow::as_select()).first(conn)
}

/// These lessons, by start time then id.
pub fn get_many(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<LessonRow>> {
    lessons::table
        .filter(lessons::id.eq_any(ids))
        .select(LessonRow::as_select())
        .order((lessons::starts_at.asc().nulls_last(), lessons::id.asc()))
        .load(conn)
}

/// The lesson, locked for this transaction (edits, openings and closings of one lesson
/// take turns).
pub fn get_for_update(conn: &mut PgConnection, id: i64) -> QueryResult<LessonRow> {
    lessons::table.find(id).select(LessonRow::as_select()).for_update().first(conn)
}

pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(lessons::table.find(id)).execute(conn).map(drop)
}

/// Whether check-in for the lesson has opened by `now` (an automatic window still ahead
/// does not count).
pub fn has_opened(conn: &mut PgConnection, lesson_id: i64, now: DateTime<Utc>) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        checkin_windows::table
            .filter(checkin_windows::lesson_id.eq(lesson_id))
            .filter(checkin_windows::opened_at.le(now)),
    ))
    .get_result(conn)
}

/// Whether anyone has a record for the lesson.
pub fn has_records(conn: &mut PgConnection, lesson_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(attendance::table.filter(attendance::lesson_id.eq(lesson_id))))
        .get_result(conn)
}

/// Drops the lesson's automatic window that has not opened yet, if any, and the first
/// opening it promised.
pub fn unschedule(conn: &mut PgConnection, lesson_id: i64, now: DateTime<Utc>) -> QueryResult<bool> {
    let dropped = diesel::delete(
        checkin_windows::table
            .filter(checkin_windows::lesson_id.eq(lesson_id))
            .filter(checkin_windows::opened_at.gt(now)),
    )
    .execute(conn)?;
    diesel::update(lessons::table.find(lesson_id).filter(lessons::first_opened_at.gt(now)))
        .set(lessons::first_opened_at.eq(None::<DateTime<Utc>>))
        .execute(conn)?;
    Ok(dropped > 0)
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

/// Records the lesson's first opening (later openings leave it as it is). Call it only
/// once any automatic window still ahead is gone (`unschedule`).
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
    /// The lesson's course (the database checks that it is).
    pub course_id: i64,
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
            checkin_windows::course_id.eq(new.course_id),
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

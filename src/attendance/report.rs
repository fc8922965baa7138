//! `GET /courses/{id}/attendance`: each enrolled student's totals over the course's
//! lessons whose check-in has opened at least once.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::export::{FormatQuery, csv_response, text_cell, to_csv, wants_csv};
use super::rfc3339;
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::status::{RecordStatus, Status, status};
use crate::domain::user::UserRef;
use crate::error::{ApiError, problems};
use crate::lessons::queries as lessons;
use crate::schema::{attendance, lessons as lessons_table};

/// One enrolled student's totals over the course's lessons whose check-in has been opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseAttendanceRow {
    pub student: UserRef,
    /// Lessons where the student is `present`.
    pub present: i64,
    /// Lessons where the student is `late`.
    pub late: i64,
    /// Lessons where the student is `excused`.
    pub excused: i64,
    /// Lessons where the student is `absent` (check-in closed without a record, or marked
    /// absent).
    pub absent: i64,
    /// (present + late) / lessons counted, in 0..=1 (0 when no lesson counts yet).
    #[schema(example = 0.75)]
    pub attendance_rate: f64,
    /// When the student last checked in (or, for a teacher's `present`/`late` without a
    /// check-in, when that lesson's check-in opened).
    pub last_attended_at: Option<DateTime<Utc>>,
}

problems!(GetCourseAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Unknown `format`",
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such course",
});

/// A course's attendance report (the course's teacher, admin).
///
/// One row per enrolled student, over the course's lessons whose check-in has been opened at
/// least once. A lesson still open counts, and its `pending` students are in no column until
/// it closes. CSV with `Accept: text/csv` or `?format=csv` (columns student_number, username,
/// real_name, present, late, excused, absent, attendance_rate, last_attended_at).
#[utoipa::path(
    tag = "attendance",
    params(("course_id" = i64, Path, description = "Course id"), FormatQuery),
    responses(
        (status = 200, description = "The report", content(
            (Vec<CourseAttendanceRow> = "application/json"),
            (String = "text/csv"),
        )),
        GetCourseAttendanceProblems,
    )
)]
#[get("/courses/{course_id}/attendance")]
pub async fn get_course_attendance(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    req: HttpRequest,
    caller: Authenticated,
    path: web::Path<i64>,
    format: web::Query<FormatQuery>,
) -> Result<HttpResponse, ApiError> {
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let report = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::STAFF)?;
        Ok(course_report(conn, course_id, now)?)
    })
    .await?;
    if !wants_csv(&req, &format) {
        return Ok(HttpResponse::Ok().json(report));
    }
    let rows = report.into_iter().map(|r| {
        vec![
            text_cell(r.student.student_number.as_deref().unwrap_or_default()),
            r.student.username,
            text_cell(&r.student.real_name),
            r.present.to_string(),
            r.late.to_string(),
            r.excused.to_string(),
            r.absent.to_string(),
            format!("{:.4}", r.attendance_rate),
            r.last_attended_at.map(rfc3339).unwrap_or_default(),
        ]
    });
    let header = [
        "student_number",
        "username",
        "real_name",
        "present",
        "late",
        "excused",
        "absent",
        "attendance_rate",
        "last_attended_at",
    ];
    Ok(csv_response(&format!("course-{course_id}-attendance.csv"), to_csv(&header, rows)?))
}

/// A record's status and check-in time, keyed by (student, lesson).
type StoredRecord = (RecordStatus, Option<DateTime<Utc>>);

/// Four queries, however many students and lessons.
pub fn course_report(
    conn: &mut PgConnection,
    course_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<CourseAttendanceRow>> {
    let roster = courses::roster(conn, course_id)?;
    let lesson_ids: Vec<i64> = lessons_table::table
        .filter(lessons_table::course_id.eq(course_id))
        .select(lessons_table::id)
        .load(conn)?;
    let windows = lessons::latest_windows(conn, &lesson_ids)?;
    let records: HashMap<(i64, i64), StoredRecord> = attendance::table
        .filter(attendance::lesson_id.eq_any(windows.keys().copied().collect::<Vec<_>>()))
        .select((
            attendance::student_id,
            attendance::lesson_id,
            attendance::status,
            attendance::checked_in_at,
        ))
        .load::<(i64, i64, RecordStatus, Option<DateTime<Utc>>)>(conn)?
        .into_iter()
        .map(|(student, lesson, status, at)| ((student, lesson), (status, at)))
        .collect();
    let counted = windows.len() as f64;
    Ok(roster
        .into_iter()
        .map(|student| {
            let student_id = student.id;
            let mut row = CourseAttendanceRow {
                student: UserRef::from(student),
                present: 0,
                late: 0,
                excused: 0,
                absent: 0,
                attendance_rate: 0.0,
                last_attended_at: None,
            };
            for (lesson_id, window) in &windows {
                let record = records.get(&(student_id, *lesson_id));
                match status(record.map(|(s, _)| *s), Some(window), now) {
                    Status::Present => row.present += 1,
                    Status::Late => row.late += 1,
                    Status::Excused => row.excused += 1,
                    Status::Absent => row.absent += 1,
                    Status::Pending | Status::NotStarted => continue,
                }
                if let Some((RecordStatus::Present | RecordStatus::Late, at)) = record {
                    let attended = at.unwrap_or(window.opened_at);
                    row.last_attended_at = row.last_attended_at.max(Some(attended));
                }
            }
            if counted > 0.0 {
                row.attendance_rate = (row.present + row.late) as f64 / counted;
            }
            row
        })
        .collect())
}

//! `GET /courses/{id}/attendance`: each student's totals over the course's lessons whose
//! check-in has opened at least once and that count for them.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::export::{FormatQuery, csv_response, text_cell, to_csv, wants_csv};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::enrolment;
use crate::domain::status::{RecordStatus, Status, status};
use crate::domain::user::UserRef;
use crate::error::{ApiError, problems};
use crate::lessons::queries as lessons;
use crate::schema::{attendance, lessons as lessons_table, users};

/// One student's totals over the lessons that count for them: those whose check-in has been
/// opened, first while the student was enrolled, or for which they have a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseAttendanceRow {
    pub student: UserRef,
    /// How many of the course's opened lessons count for the student (a lesson still open
    /// counts, while its `pending` students are in no column until it closes).
    pub lessons_counted: i64,
    /// When the student left the course; `null` while they are enrolled.
    #[schema(required = true)]
    pub left_at: Option<DateTime<Utc>>,
    /// Lessons where the student is `present`.
    pub present: i64,
    /// Lessons where the student is `late`.
    pub late: i64,
    /// Lessons where the student is `excused`.
    pub excused: i64,
    /// Lessons where the student is `absent` (check-in closed without a record, or marked
    /// absent).
    pub absent: i64,
    /// (present + late) / `lessons_counted`, in 0..=1; `null` when no lesson counts yet.
    #[schema(example = 0.75, required = true)]
    pub attendance_rate: Option<f64>,
    /// When the student last checked in (or, for a teacher's `present`/`late` without a
    /// check-in, when that lesson's check-in opened).
    #[schema(required = true)]
    pub last_attended_at: Option<DateTime<Utc>>,
}

problems!(GetCourseAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Unknown `format`",
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such course",
});

/// A course's attendance report (the course's teacher, admin).
///
/// One row per student who is or was enrolled, over the course's lessons whose check-in has
/// been opened at least once and that count for them: first opened while they were enrolled,
/// or with a record of theirs. A student who joined in week 5 is not absent for weeks 1–4; a
/// student who left keeps the weeks they were there and carries `left_at`. A lesson still
/// open counts, and its `pending` students are in no column until it closes. CSV with
/// `Accept: text/csv` or `?format=csv` (columns student_number, username, real_name,
/// present, late, excused, absent, attendance_rate, last_attended_at, lessons_counted,
/// left_at; an empty rate when no lesson counts; times on the course's local clock with
/// their offset, `Z` for a UTC course).
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
    let (report, zone) = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::STAFF)?;
        Ok((course_report(conn, course_id, now)?, courses::time_zone(conn, course_id)?))
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
            r.attendance_rate.map(|rate| format!("{rate:.4}")).unwrap_or_default(),
            r.last_attended_at.map(|at| zone.format(at)).unwrap_or_default(),
            r.lessons_counted.to_string(),
            r.left_at.map(|at| zone.format(at)).unwrap_or_default(),
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
        "lessons_counted",
        "left_at",
    ];
    Ok(csv_response(&format!("course-{course_id}-attendance.csv"), to_csv(&header, rows)?))
}

/// A record's status and check-in time, keyed by (student, lesson).
type StoredRecord = (RecordStatus, Option<DateTime<Utc>>);

/// Five queries, however many students and lessons.
pub fn course_report(
    conn: &mut PgConnection,
    course_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<CourseAttendanceRow>> {
    let enrolments = courses::enrolments_in(conn, course_id)?;
    let opened: Vec<(i64, Option<DateTime<Utc>>)> = lessons_table::table
        .filter(lessons_table::course_id.eq(course_id))
        .filter(lessons_table::first_opened_at.le(now))
        .filter(lessons_table::cancelled.eq(false))
        .select((lessons_table::id, lessons_table::first_opened_at))
        .load(conn)?;
    let lesson_ids: Vec<i64> = opened.iter().map(|(id, _)| *id).collect();
    let windows = lessons::latest_windows(conn, &lesson_ids)?;
    let records: HashMap<(i64, i64), StoredRecord> = attendance::table
        .filter(attendance::lesson_id.eq_any(&lesson_ids))
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
    // Everyone with a period, and (should one ever lack it) anyone with a record.
    let student_ids: HashSet<i64> =
        enrolments.keys().copied().chain(records.keys().map(|(s, _)| *s)).collect();
    let students: Vec<UserRef> = users::table
        .filter(users::id.eq_any(student_ids))
        .select(UserRef::as_select())
        .order((users::student_number.asc().nulls_last(), users::username.asc()))
        .load(conn)?;
    Ok(students
        .into_iter()
        .map(|student| {
            let enrolment = enrolments.get(&student.id).unwrap_or(&enrolment::NEVER);
            let mut row = CourseAttendanceRow {
                lessons_counted: 0,
                left_at: enrolment.left_at(),
                present: 0,
                late: 0,
                excused: 0,
                absent: 0,
                attendance_rate: None,
                last_attended_at: None,
                student,
            };
            for (lesson_id, first_opened_at) in &opened {
                let Some(window) = windows.get(lesson_id) else { continue };
                let record = records.get(&(row.student.id, *lesson_id));
                if !enrolment.counts(*first_opened_at, record.is_some()) {
                    continue;
                }
                row.lessons_counted += 1;
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
            if row.lessons_counted > 0 {
                row.attendance_rate = Some((row.present + row.late) as f64 / row.lessons_counted as f64);
            }
            row
        })
        .collect())
}

//! `GET /courses/{id}/attendance`: the course report as JSON, or exported in the summary
//! or long layout as CSV or an Excel workbook.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::export::{Cell, Format, Table, negotiate};
use super::records::{self, RecordRow};
use super::report::{CourseAttendanceRow, Held};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::status::Status;
use crate::error::{ApiError, problems};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One row per student (v1's columns first, then lessons_counted, left_at, below_threshold).
    #[default]
    Summary,
    /// One row per student per counted lesson.
    Long,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `csv` or `xlsx` for a download (or ask with `Accept`); default JSON.
    #[param(inline)]
    pub format: Option<Format>,
    /// The export's layout: `summary` (default) or `long`. JSON is always the summary.
    #[param(inline)]
    pub layout: Option<Layout>,
    /// Only the students whose `below_threshold` is this.
    pub below_threshold: Option<bool>,
}

const SUMMARY: [&str; 12] = [
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
    "below_threshold",
];

const LONG: [&str; 11] = [
    "lesson_id",
    "lesson_title",
    "starts_at",
    "student_number",
    "username",
    "real_name",
    "status",
    "checked_in_at",
    "method",
    "note",
    "flags",
];

problems!(GetCourseAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Unknown `format` or `layout`",
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such course",
    ApiError::NotAcceptable => "The `Accept` header names nothing this route produces",
});

/// A course's attendance report (the course's teacher, admin).
///
/// One row per student who is or was enrolled, over the course's lessons whose check-in has
/// been opened and that count for them: first opened while they were enrolled, or with a
/// record of theirs (cancelled lessons count nowhere). A student who joined in week 5 is not
/// absent for weeks 1–4; one who left keeps the weeks they were there and carries `left_at`.
/// A lesson still open counts, and its `pending` students are in no column until it closes.
/// Rates follow the course's `policy`; `?below_threshold=true` keeps the flagged students
/// only (exports too).
///
/// Exports, with `?format=csv|xlsx` or `Accept: text/csv` /
/// `application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`:
/// `?layout=summary` (default; columns student_number, username, real_name, present, late,
/// excused, absent, attendance_rate, last_attended_at — v1's, unchanged — then
/// lessons_counted, left_at, below_threshold) or `?layout=long` (one row per student per
/// counted lesson: lesson_id, lesson_title, starts_at, student_number, username, real_name,
/// status, checked_in_at, method, note, flags joined by `;`). Times are on the course's local
/// clock with their offset (`Z` for a UTC course); in the workbook they are date-time cells,
/// counts and rates numbers, and the header row is frozen. An empty cell is `null`.
#[utoipa::path(
    tag = "attendance",
    params(("course_id" = i64, Path, description = "Course id"), ReportQuery),
    responses(
        (status = 200, description = "The report", content(
            (Vec<CourseAttendanceRow> = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
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
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = negotiate(&req, query.format)?;
    let (layout, only) = (query.layout.unwrap_or_default(), query.below_threshold);
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let answer = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::STAFF)?;
        let held = Held::load(conn, course_id, now)?;
        let rows: Vec<CourseAttendanceRow> = held
            .students(conn)?
            .into_iter()
            .map(|student| held.row(student, now))
            .filter(|row| only.is_none_or(|wanted| row.below_threshold == wanted))
            .collect();
        let table = match (format, layout) {
            (Format::Json, _) => return Ok(Err(rows)),
            (_, Layout::Summary) => summary(&rows),
            (_, Layout::Long) => long(conn, &held, &rows, now)?,
        };
        Ok(Ok((table, courses::time_zone(conn, course_id)?)))
    })
    .await?;
    match answer {
        Err(rows) => Ok(HttpResponse::Ok().json(rows)),
        Ok((table, zone)) => table.download(format, zone, &format!("course-{course_id}-attendance")),
    }
}

fn summary(rows: &[CourseAttendanceRow]) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.student.student_number.as_deref()),
                Cell::Plain(r.student.username.clone()),
                Cell::Text(r.student.real_name.clone()),
                Cell::Int(r.present),
                Cell::Int(r.late),
                Cell::Int(r.excused),
                Cell::Int(r.absent),
                Cell::rate(r.attendance_rate),
                Cell::time(r.last_attended_at),
                Cell::Int(r.lessons_counted),
                Cell::time(r.left_at),
                Cell::Plain(r.below_threshold.to_string()),
            ]
        })
        .collect();
    Table { header: SUMMARY.to_vec(), rows }
}

/// One row per student (of `rows`) per lesson that counts for them, lesson by lesson.
fn long(
    conn: &mut PgConnection,
    held: &Held,
    rows: &[CourseAttendanceRow],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Table> {
    let lesson_ids: Vec<i64> = held.lessons.iter().map(|l| l.id).collect();
    let shared = records::shared_devices_of(conn, &lesson_ids)?;
    // Each student's counted lessons, once: (student, lesson) → status.
    let statuses: std::collections::HashMap<(i64, i64), Status> = rows
        .iter()
        .flat_map(|row| {
            held.counted(row.student.id, now)
                .map(move |(lesson, _, status)| ((row.student.id, lesson.id), status))
        })
        .collect();
    let mut out = Vec::new();
    for lesson in &held.lessons {
        for row in rows {
            let student = &row.student;
            let Some(status) = statuses.get(&(student.id, lesson.id)) else { continue };
            let record: Option<&RecordRow> = held.records.get(&(student.id, lesson.id));
            let flags = record.map(|r| r.flags(shared.get(&lesson.id))).unwrap_or_default();
            out.push(vec![
                Cell::Int(lesson.id),
                Cell::Text(lesson.title.clone()),
                Cell::time(lesson.starts_at),
                Cell::text(student.student_number.as_deref()),
                Cell::Plain(student.username.clone()),
                Cell::Text(student.real_name.clone()),
                Cell::Plain(status.to_string()),
                Cell::time(record.and_then(|r| r.checked_in_at)),
                record.map_or(Cell::Empty, |r| Cell::Plain(r.method.to_string())),
                Cell::text(record.and_then(|r| r.note.as_deref())),
                if flags.is_empty() { Cell::Empty } else { Cell::Plain(flags.join(";")) },
            ]);
        }
    }
    Ok(Table { header: LONG.to_vec(), rows: out })
}

//! A lesson's results for its teacher (JSON or CSV), teacher changes with an audit trail,
//! the per-course report, and a student's own history (`/me/attendance`).

mod bulk;
mod course;
pub mod export;
mod history;
mod mine;
mod my_courses;
pub mod records;
pub mod report;

pub use bulk::mark_many;
pub use course::get_course_attendance;
pub use history::get_record_history;
pub use mine::list_my_attendance;
pub use my_courses::list_my_courses_attendance;

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as course_queries};
use crate::db::{self, DbPool};
use crate::domain::status::{self, Method, RecordStatus, Status};
use crate::domain::text::{Note, check, parse_field};
use crate::domain::user::UserRef;
use crate::domain::window::Window;
use crate::error::{ApiError, problems};
use crate::events::{self, Event};
use crate::lessons::{Lesson, queries as lesson_queries};
use crate::rejections::JsonObject;
use export::{Cell, Format, FormatQuery, Table, negotiate};
use records::{Change, RecordRow};

/// The proxy-attendance flag for a device that checked in more than one student.
pub const SHARED_DEVICE: &str = "shared_device";
/// The flag of a check-in made with the previous step's code in its grace period.
pub const STALE_CODE: &str = "stale_code";

/// One student's attendance for a lesson.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceRecord {
    pub student: UserRef,
    pub status: Status,
    /// When the student checked in with a code (kept if the teacher later changes the status).
    pub checked_in_at: Option<DateTime<Utc>>,
    /// How the current status was set: `code` (the student checked in) or `manual` (the
    /// teacher); `null` without a record.
    // Inline, so that this description sits on the property itself and not only inside
    // the `oneOf` next to `null`.
    #[schema(inline)]
    pub method: Option<Method>,
    /// The teacher's note.
    pub note: Option<String>,
    /// Proxy-attendance signals for the teacher to look into, never a verdict.
    /// `shared_device`: the device this student checked in from (the SPA's `X-Device-Id`)
    /// also checked in at least one other student for this lesson. `stale_code`: the
    /// check-in used the previous step's code in its grace period (a hint that the code was
    /// relayed).
    #[schema(example = json!(["shared_device"]))]
    pub flags: Vec<String>,
}

/// Counts over the students the results list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// How many of the listed students are enrolled in the course now. Before check-in is
    /// first opened they are all `not_started`, which has no count of its own.
    pub enrolled: i64,
    /// Students whose status is `present`.
    pub present: i64,
    /// Students whose status is `late`.
    pub late: i64,
    /// Students whose status is `excused`.
    pub excused: i64,
    /// Students whose status is `absent`: check-in closed without a record, or marked
    /// absent by the teacher.
    pub absent: i64,
    /// Check-in is open and they have not checked in yet.
    pub pending: i64,
}

impl Summary {
    fn count(&mut self, status: Status, enrolled: bool) {
        self.enrolled += i64::from(enrolled);
        match status {
            Status::Present => self.present += 1,
            Status::Late => self.late += 1,
            Status::Excused => self.excused += 1,
            Status::Absent => self.absent += 1,
            Status::Pending => self.pending += 1,
            Status::NotStarted => {}
        }
    }
}

/// A lesson's results for its teacher: the lesson, counts by status, and one record per
/// student.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LessonAttendance {
    pub lesson: Lesson,
    pub summary: Summary,
    /// One per student for whom the lesson counts (enrolled when its check-in was first
    /// opened, or enrolled now if it never was), plus anyone with a record; ordered by
    /// student number, then username.
    pub records: Vec<AttendanceRecord>,
}

fn record(
    student: UserRef,
    row: Option<RecordRow>,
    latest: Option<&Window>,
    shared: &HashSet<String>,
    now: DateTime<Utc>,
) -> AttendanceRecord {
    let flags = row.as_ref().map(|r| r.flags(Some(shared))).unwrap_or_default();
    AttendanceRecord {
        student,
        status: status::status(row.as_ref().map(|r| r.status), latest, now),
        checked_in_at: row.as_ref().and_then(|r| r.checked_in_at),
        method: row.as_ref().map(|r| r.method),
        note: row.and_then(|r| r.note),
        flags,
    }
}

/// The lesson's results in a fixed number of queries, however many students.
pub fn lesson_attendance(
    conn: &mut PgConnection,
    course_id: i64,
    lesson_id: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<(LessonAttendance, Option<Window>)> {
    let row = lesson_queries::get(conn, lesson_id)?;
    let first_opened_at = row.first_opened_at;
    let latest = lesson_queries::latest_window(conn, lesson_id)?;
    let lesson = Lesson::new(row, latest.as_ref(), None, now);
    let shared = records::shared_devices(conn, lesson_id)?;
    let mut summary = Summary::default();
    let records = records::roster_with_records(conn, course_id, lesson_id, first_opened_at)?
        .into_iter()
        .map(|(student, enrolled, row)| {
            let record = record(student, row, latest.as_ref(), &shared, now);
            summary.count(record.status, enrolled);
            record
        })
        .collect();
    Ok((LessonAttendance { lesson, summary, records }, latest))
}

problems!(GetLessonAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Unknown `format`",
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such lesson",
    ApiError::NotAcceptable => "The `Accept` header names nothing this route produces",
});

const LESSON_COLUMNS: [&str; 6] =
    ["student_number", "username", "real_name", "status", "checked_in_at", "method"];

/// A lesson's results (the course's teacher, admin).
///
/// One record per student the lesson counts for — those enrolled when its check-in was
/// first opened (or enrolled now, if it never was) — plus anyone with a record, and a
/// summary over them; the summary's `enrolled` is how many of them are enrolled now. `flags`
/// carries proxy-attendance signals (`shared_device`, `stale_code`) — worth a look, not
/// proof. With `Accept: text/csv` or `?format=csv` the answer is a CSV file (UTF-8, header
/// row, one row per student: student_number, username, real_name, status, checked_in_at,
/// method; times on the course's local clock with their offset, `Z` for a UTC course; text
/// that a spreadsheet would run as a formula is prefixed with `'`); with `?format=xlsx` or
/// `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`, an Excel
/// workbook with the same columns (times as date-time cells, header row frozen). An
/// `Accept` naming none of these is 406.
#[utoipa::path(
    tag = "attendance",
    params(("lesson_id" = i64, Path, description = "Lesson id"), FormatQuery),
    responses(
        (status = 200, description = "The results", content(
            (LessonAttendance = "application/json"),
            (String = "text/csv", example = "student_number,username,real_name,status,checked_in_at,method\nD0001,demo.student01,Ada Lovelace,present,2026-11-25T08:01:12Z,code\n"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        GetLessonAttendanceProblems,
    )
)]
#[get("/lessons/{lesson_id}/attendance")]
pub async fn get_lesson_attendance(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    req: HttpRequest,
    caller: Authenticated,
    path: web::Path<i64>,
    format: web::Query<FormatQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = negotiate(&req, format.format)?;
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let (results, zone) = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let (course_id, _) = access::check_lesson(conn, lesson_id, &user, access::STAFF)?;
        let zone = course_queries::time_zone(conn, course_id)?;
        Ok((lesson_attendance(conn, course_id, lesson_id, now)?.0, zone))
    })
    .await?;
    if format == Format::Json {
        return Ok(HttpResponse::Ok().json(results));
    }
    let rows = results
        .records
        .into_iter()
        .map(|r| {
            vec![
                Cell::text(r.student.student_number.as_deref()),
                Cell::Plain(r.student.username),
                Cell::Text(r.student.real_name),
                Cell::Plain(r.status.to_string()),
                Cell::time(r.checked_in_at),
                r.method.map_or(Cell::Empty, |m| Cell::Plain(m.to_string())),
            ]
        })
        .collect();
    let table = Table { header: LESSON_COLUMNS.to_vec(), rows };
    table.download(format, zone, &format!("lesson-{lesson_id}-attendance"))
}

/// A teacher's change to one student's status for a lesson.
#[derive(Deserialize, ToSchema)]
pub struct SetAttendance {
    pub status: RecordStatus,
    /// Why (at most 1000 characters); shown to the teacher and kept in the audit trail.
    #[schema(example = "doctor's note")]
    pub note: Option<String>,
}

problems!(SetAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Malformed body or unknown status",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such lesson, or the student is neither enrolled nor has a record for it",
    ApiError::Validation(Vec::new()) => "Note too long",
});

/// Set a student's status (the course's teacher).
///
/// Overrides whatever the student's status was (a check-in's time is kept) and records
/// who changed it, when, from what and why. For students enrolled in the course now, and
/// for a former student's existing record. A mark always counts: it makes the lesson count
/// for a student who joined after it was held.
#[utoipa::path(
    tag = "attendance",
    params(("lesson_id" = i64, Path, description = "Lesson id"), ("student_id" = i64, Path, description = "The student's user id")),
    request_body(content = SetAttendance, example = json!({"status": "excused", "note": "doctor's note"})),
    responses(
        (status = 200, description = "The updated record", body = AttendanceRecord),
        SetAttendanceProblems,
    )
)]
#[put("/lessons/{lesson_id}/attendance/{student_id}")]
pub async fn set_attendance(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<(i64, i64)>,
    body: JsonObject<SetAttendance>,
) -> Result<web::Json<AttendanceRecord>, ApiError> {
    let SetAttendance { status, note } = body.into_inner();
    let mut errors = Vec::new();
    let note = parse_field(&mut errors, "note", note.as_deref(), Note::parse).flatten().map(Note::into_inner);
    check(errors)?;
    let ((lesson_id, student_id), user, now) = (path.into_inner(), caller.user, clock.now());
    let updated = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let (course_id, _) = access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| {
            // For students enrolled now, and for a former student's existing record.
            let before = records::find_for_update(conn, lesson_id, student_id)?;
            if before.is_none() && !course_queries::is_enrolled(conn, course_id, student_id)? {
                return Err(ApiError::NotFound("this student is not enrolled in the lesson's course"));
            }
            let latest = lesson_queries::latest_window(conn, lesson_id)?;
            let change = Change {
                lesson_id,
                student_id,
                status,
                note: note.as_deref(),
                by: user.id,
                at: now,
                old_status: status::status(before.map(|r| r.status), latest.as_ref(), now),
            };
            let row = records::apply_change(conn, &change)?;
            events::publish(conn, Event::Record { lesson_id, student_id })?;
            let shared = records::shared_devices(conn, lesson_id)?;
            let student = crate::auth::queries::find_user(conn, student_id)?
                .ok_or(ApiError::NotFound("no such student"))?;
            let student = UserRef::from(student);
            Ok(record(student, Some(row), latest.as_ref(), &shared, now))
        })
    })
    .await?;
    Ok(web::Json(updated))
}

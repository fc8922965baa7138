//! Lessons of a course, each with its check-in state (and, for a student, their status).

pub mod checkin_control;
mod edit;
pub mod queries;
pub mod schedule;
mod series;

pub use edit::{delete_lesson, update_lesson};
pub use series::create_series;

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::access::{self, Relation};
use crate::courses::queries as course_queries;
use crate::db::{self, DbPool};
use crate::domain::enrolment;
use crate::domain::lesson::{Cleared, LessonFields};
use crate::domain::settings::{AutoCheckin, RawSettings};
use crate::domain::status::{self, Status};
use crate::domain::text::{Invalid, Title, check, parse_field};
use crate::domain::window::{CheckinState, Window};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use queries::LessonRow;

/// A lesson and where its check-in stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lesson {
    /// The lesson's id.
    #[schema(example = 12)]
    pub id: i64,
    /// The id of the course it belongs to.
    #[schema(example = 3)]
    pub course_id: i64,
    /// The lesson's title.
    #[schema(example = "Week 1: Welcome")]
    pub title: String,
    /// When the lesson starts (RFC 3339, UTC); `null` for a lesson without a start time.
    pub starts_at: Option<DateTime<Utc>>,
    /// When the lesson ends (RFC 3339, UTC); `null` when not set.
    #[schema(required = true)]
    pub ends_at: Option<DateTime<Utc>>,
    /// A cancelled lesson stays in lists but cannot be opened and counts nowhere.
    pub cancelled: bool,
    /// Automatic check-in: opens at `starts_at + open_offset_minutes` with these settings,
    /// as if the teacher had opened it then; `null` when off.
    #[schema(required = true, inline)]
    pub auto_checkin: Option<AutoCheckinSettings>,
    pub checkin: CheckinState,
    /// Only for students: their own status for this lesson, or `null` when the lesson does
    /// not count for them (its check-in was first opened while they were not enrolled, and
    /// they have no record) or is cancelled. Left out for teachers and admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Status>, inline)]
    pub my_status: Option<Option<Status>>,
}

/// Builds `Lesson`s for rows, with their latest windows and (for a student) their status,
/// in three queries however many lessons there are.
pub fn assemble(
    conn: &mut PgConnection,
    rows: Vec<LessonRow>,
    student_id: Option<i64>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<Lesson>> {
    let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
    let windows = queries::latest_windows(conn, &ids)?;
    let (records, enrolments) = match student_id {
        Some(student) => {
            let mut courses: Vec<i64> = rows.iter().map(|l| l.course_id).collect();
            courses.sort_unstable();
            courses.dedup();
            (
                queries::record_statuses(conn, student, &ids)?,
                course_queries::enrolments_of(conn, student, &courses)?,
            )
        }
        None => Default::default(),
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let latest = windows.get(&row.id);
            let my_status = student_id.map(|_| {
                let record = records.get(&row.id).copied();
                let enrolment = enrolments.get(&row.course_id).unwrap_or(&enrolment::NEVER);
                (!row.cancelled && enrolment.counts(row.first_opened_at, record.is_some()))
                    .then(|| status::status(record, latest, now))
            });
            Lesson::new(row, latest, my_status, now)
        })
        .collect())
}

impl Lesson {
    /// A lesson from its row and latest window (for callers that already hold the window).
    pub fn new(
        row: LessonRow,
        latest: Option<&Window>,
        my_status: Option<Option<Status>>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: row.id,
            course_id: row.course_id,
            auto_checkin: row.auto.get().map(AutoCheckinSettings::from),
            title: row.title,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            cancelled: row.cancelled,
            checkin: CheckinState::of(latest, now),
            my_status,
        }
    }
}

fn student_view(relation: Relation, user_id: i64) -> Option<i64> {
    (relation == Relation::Student).then_some(user_id)
}

/// Automatic check-in as stored and answered: every setting has its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct AutoCheckinSettings {
    /// Minutes from `starts_at` to the opening (negative: before the start).
    #[schema(example = -5)]
    pub open_offset_minutes: i32,
    /// Seconds each code is shown.
    #[schema(example = 10)]
    pub rotation_seconds: i32,
    /// Digits per code.
    #[schema(example = 6)]
    pub code_length: i32,
    /// Seconds until the window closes by itself.
    #[schema(example = 600)]
    pub duration_seconds: i32,
    /// Check-ins more than this many seconds after opening count as `late`; `null`: nobody.
    #[schema(required = true)]
    pub late_after_seconds: Option<i32>,
}

impl From<AutoCheckin> for AutoCheckinSettings {
    fn from(auto: AutoCheckin) -> Self {
        Self {
            open_offset_minutes: auto.open_offset_minutes,
            rotation_seconds: auto.settings.rotation_seconds,
            code_length: auto.settings.code_length,
            duration_seconds: auto.settings.duration_seconds,
            late_after_seconds: auto.settings.late_after_seconds,
        }
    }
}

/// Automatic check-in as sent; a setting left out takes `checkin/open`'s default. A setting
/// out of range is a 422 whose `field` is prefixed with `auto_checkin.` (e.g.
/// `auto_checkin.code_length`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoCheckinRequest {
    /// Minutes from `starts_at` to the opening, -60..=60 (default 0).
    #[schema(example = -5)]
    pub open_offset_minutes: Option<i64>,
    /// Seconds each code is shown (5..=300, default 10).
    pub rotation_seconds: Option<i64>,
    /// Digits per code (4..=10, default 6).
    pub code_length: Option<i64>,
    /// Seconds until the window closes by itself (30..=14400, default 600).
    pub duration_seconds: Option<i64>,
    /// Check-ins more than this many seconds after opening count as `late`
    /// (0..=duration_seconds; default: nobody is late).
    pub late_after_seconds: Option<i64>,
}

impl AutoCheckinRequest {
    pub fn parse(&self) -> Result<AutoCheckin, Invalid> {
        let raw = RawSettings {
            rotation_seconds: self.rotation_seconds,
            code_length: self.code_length,
            duration_seconds: self.duration_seconds,
            late_after_seconds: self.late_after_seconds,
        };
        AutoCheckin::parse("auto_checkin", self.open_offset_minutes, raw)
    }
}

/// A new lesson of the course.
#[derive(Deserialize, ToSchema)]
pub struct CreateLesson {
    /// 1–200 characters.
    #[schema(example = "Week 1: Welcome")]
    pub title: String,
    /// When the lesson starts (RFC 3339). Leave it out for a lesson without a start time.
    #[serde(default, deserialize_with = "some_datetime")]
    #[schema(value_type = String, format = DateTime, example = "2026-09-07T09:00:00Z")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When the lesson ends (RFC 3339); needs `starts_at` and must be later. `null` is the
    /// same as leaving it out.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-09-07T10:30:00Z")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Open check-in automatically (needs `starts_at`).
    #[schema(inline)]
    pub auto_checkin: Option<AutoCheckinRequest>,
}

/// Reads a present timestamp; `null` is refused like any other non-timestamp, since the
/// document offers leaving the field out, not `null`.
fn some_datetime<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    DateTime::<Utc>::deserialize(input).map(Some)
}

problems!(CreateLessonProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, e.g. a bad timestamp",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "Invalid field: title, an end not after the start, automatic check-in without a start or out of range",
});

/// Create a lesson (the course's teacher).
///
/// Only the course's teacher may add lessons (admins get 403). Leave `starts_at` out for a
/// lesson without a start time; `null` is refused. Answers the new lesson, whose check-in is
/// `not_started` until the teacher opens it — or, with `auto_checkin`, until
/// `starts_at + open_offset_minutes`, when it opens by itself for every reader (a lesson
/// entered after that time was held: its window is already closed).
#[utoipa::path(
    tag = "lessons",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = CreateLesson, example = json!({"title": "Week 1: Welcome", "starts_at": "2026-09-07T09:00:00Z", "ends_at": "2026-09-07T10:30:00Z", "auto_checkin": {"open_offset_minutes": -5, "late_after_seconds": 300}})),
    responses(
        (status = 201, description = "Created", body = Lesson),
        CreateLessonProblems,
    )
)]
#[post("/courses/{course_id}/lessons")]
pub async fn create_lesson(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<CreateLesson>,
) -> Result<HttpResponse, ApiError> {
    let CreateLesson { title, starts_at, ends_at, auto_checkin } = body.into_inner();
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", Some(&title), Title::parse);
    let auto = auto_checkin.map(|auto| auto.parse()).transpose().map_err(|Invalid(more)| errors.extend(more));
    check(errors)?;
    let fields = LessonFields {
        title: title.map(Title::into_inner).unwrap_or_default(),
        starts_at,
        ends_at,
        cancelled: false,
        auto: auto.unwrap_or_default(),
    };
    fields.check(Cleared::Nothing)?;
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let lesson = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        let row = conn.transaction(|conn| -> Result<_, ApiError> {
            let row = queries::insert_many(conn, course_id, std::slice::from_ref(&fields), now)?.remove(0);
            // A new lesson has no dashboard to tell.
            schedule::plan(conn, &row, user.id, now, schedule::Past::Held)?;
            Ok(queries::get(conn, row.id)?)
        })?;
        Ok(assemble(conn, vec![row], None, now)?.remove(0))
    })
    .await?;
    Ok(HttpResponse::Created().json(lesson))
}

problems!(ListLessonsProblems {
    ApiError::Forbidden("") => "Not your course",
    ApiError::NotFound("") => "No such course",
});

/// List a course's lessons.
///
/// Ordered by `starts_at` (lessons without one last), then id. For a student each lesson
/// carries `my_status`.
#[utoipa::path(
    tag = "lessons",
    params(("course_id" = i64, Path, description = "Course id")),
    responses(
        (status = 200, description = "The lessons", body = Vec<Lesson>),
        ListLessonsProblems,
    )
)]
#[get("/courses/{course_id}/lessons")]
pub async fn list_lessons(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<Vec<Lesson>>, ApiError> {
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let lessons = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let relation = access::check_course(conn, course_id, &user, access::MEMBERS)?;
        let rows = queries::for_course(conn, course_id)?;
        Ok(assemble(conn, rows, student_view(relation, user.id), now)?)
    })
    .await?;
    Ok(web::Json(lessons))
}

problems!(GetLessonProblems {
    ApiError::Forbidden("") => "Not your course",
    ApiError::NotFound("") => "No such lesson",
});

/// Get a lesson.
///
/// For the course's teacher, its enrolled students (with `my_status`) and admins.
#[utoipa::path(
    tag = "lessons",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The lesson", body = Lesson),
        GetLessonProblems,
    )
)]
#[get("/lessons/{lesson_id}")]
pub async fn get_lesson(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<Lesson>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let lesson = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let (_, relation) = access::check_lesson(conn, lesson_id, &user, access::MEMBERS)?;
        let row = queries::get(conn, lesson_id)?;
        Ok(assemble(conn, vec![row], student_view(relation, user.id), now)?.remove(0))
    })
    .await?;
    Ok(web::Json(lesson))
}

//! Lessons of a course, each with its check-in state (and, for a student, their status).

pub mod checkin_control;
pub mod queries;

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::access::{self, Relation};
use crate::courses::queries as course_queries;
use crate::db::{self, DbPool};
use crate::domain::enrolment;
use crate::domain::status::{self, Status};
use crate::domain::text::{Title, check, parse_field};
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
    pub checkin: CheckinState,
    /// Only for students: their own status for this lesson, or `null` when the lesson does
    /// not count for them (its check-in was first opened while they were not enrolled, and
    /// they have no record). Left out for teachers and admins.
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
                enrolment
                    .counts(row.first_opened_at, record.is_some())
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
            title: row.title,
            starts_at: row.starts_at,
            checkin: CheckinState::of(latest, now),
            my_status,
        }
    }
}

fn student_view(relation: Relation, user_id: i64) -> Option<i64> {
    (relation == Relation::Student).then_some(user_id)
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
}

/// Reads a present `starts_at`; `null` is refused like any other non-timestamp, since the
/// document offers leaving the field out, not `null`.
fn some_datetime<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    DateTime::<Utc>::deserialize(input).map(Some)
}

problems!(CreateLessonProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, e.g. a bad timestamp",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "Invalid field",
});

/// Create a lesson (the course's teacher).
///
/// Only the course's teacher may add lessons (admins get 403). Leave `starts_at` out for a
/// lesson without a start time; `null` is refused. Answers the new lesson, whose check-in is
/// `not_started` until the teacher opens it.
#[utoipa::path(
    tag = "lessons",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = CreateLesson, example = json!({"title": "Week 1: Welcome", "starts_at": "2026-09-07T09:00:00Z"})),
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
    let CreateLesson { title, starts_at } = body.into_inner();
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", Some(&title), Title::parse);
    check(errors)?;
    let title = title.map(Title::into_inner).unwrap_or_default();
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let lesson = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        let row = queries::insert(conn, course_id, &title, starts_at, now)?;
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

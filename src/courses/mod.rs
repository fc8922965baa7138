//! Courses and their rosters. Teachers create and own courses; students are enrolled in
//! them; admins read everything.

pub mod access;
pub mod queries;
mod roster;

pub use roster::{enroll_students, list_students, unenroll_student};

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::{Authenticated, TeacherOnly};
use crate::db;
use crate::error::{ApiError, Problem, check, parse_field};
use crate::rejections::JsonObject;
use crate::state::AppState;
use crate::users::model::{UserRef, bounded_text};

/// A course, taught by one teacher.
#[derive(Debug, Serialize, ToSchema)]
pub struct Course {
    /// The course's id.
    #[schema(example = 3)]
    pub id: i64,
    /// The course's title.
    #[schema(example = "Introduction to Computing")]
    pub title: String,
    /// An optional short code, e.g. from the timetable.
    #[schema(example = "CS101")]
    pub code: Option<String>,
    pub teacher: UserRef,
    /// How many students are enrolled.
    #[schema(example = 30)]
    pub student_count: i64,
    /// When the course was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

/// A new course; the caller becomes its teacher.
#[derive(Deserialize, ToSchema)]
pub struct CreateCourse {
    /// 1–200 characters.
    #[schema(
        example = "Introduction to Computing",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub title: String,
    /// 1–32 characters.
    #[schema(
        example = "CS101",
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub code: Option<String>,
}

/// Create a course (teacher).
///
/// The caller becomes its teacher.
#[utoipa::path(
    tag = "courses",
    request_body(content = CreateCourse, example = json!({"title": "Introduction to Computing", "code": "CS101"})),
    responses(
        (status = 201, description = "Created", body = Course),
        (status = 400, description = "Malformed body (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller is not a teacher (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/courses")]
pub async fn create_course(
    state: web::Data<AppState>,
    teacher: Authenticated<TeacherOnly>,
    body: JsonObject<CreateCourse>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", Some(body.title.trim()), |t| {
        bounded_text(t, 1, 200).map(str::to_owned)
    });
    let code = parse_field(&mut errors, "code", body.code.as_deref().map(str::trim), |c| {
        bounded_text(c, 1, 32).map(str::to_owned)
    });
    check(errors)?;
    let title = title.unwrap_or_default();
    let (teacher_id, now) = (teacher.id, state.clock.now());
    let course = db::run(&state.pool, move |conn| {
        Ok(queries::insert(conn, &title, code.as_deref(), teacher_id, now)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(course))
}

/// List my courses.
///
/// Teachers get the courses they teach, students the courses they are enrolled in, admins
/// every course.
#[utoipa::path(
    tag = "courses",
    responses(
        (status = 200, description = "Courses ordered by id", body = Vec<Course>),
    )
)]
#[get("/courses")]
pub async fn list_courses(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<web::Json<Vec<Course>>, ApiError> {
    let user = caller.user;
    Ok(web::Json(db::run(&state.pool, move |conn| Ok(queries::list_for(conn, &user)?)).await?))
}

/// Get a course.
///
/// For its teacher, its enrolled students and admins.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    responses(
        (status = 200, description = "The course", body = Course),
        (status = 403, description = "Not your course (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such course (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/courses/{course_id}")]
pub async fn get_course(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<Course>, ApiError> {
    let (course_id, user) = (path.into_inner(), caller.user);
    let course = db::run(&state.pool, move |conn| {
        access::check_course(conn, course_id, &user, access::MEMBERS)?;
        Ok(queries::get(conn, course_id)?)
    })
    .await?;
    Ok(web::Json(course))
}

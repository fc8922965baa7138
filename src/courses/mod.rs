//! Courses and their rosters. Teachers create and own courses; students are enrolled in
//! them; admins read everything.

pub mod access;
mod edit;
pub mod queries;
mod roster;

pub use edit::update_course;
pub use roster::{enroll_students, list_students, unenroll_student};

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::{Authenticated, TeacherOnly};
use crate::clock::Clock;
use crate::db::{self, DbPool};
use crate::domain::policy::Policy;
use crate::domain::text::{CourseCode, Title, check, parse_field};
use crate::domain::user::UserRef;
use crate::domain::zone::Zone;
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

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
    /// The course's IANA time zone: series are planned in it and exports written in it
    /// (JSON instants stay UTC).
    #[schema(value_type = String, example = "Europe/Vienna")]
    pub time_zone: Zone,
    /// How its attendance rate is computed, and who is flagged.
    pub policy: Policy,
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
    #[schema(example = "Introduction to Computing")]
    pub title: String,
    /// 1–32 characters.
    #[schema(example = "CS101")]
    pub code: Option<String>,
    /// An IANA time zone name (default: the server's `ROLLCALL_DEFAULT_TIME_ZONE`).
    #[schema(example = "Europe/Vienna")]
    pub time_zone: Option<String>,
}

/// The time zone of a course created without one (`ROLLCALL_DEFAULT_TIME_ZONE`).
#[derive(Debug, Clone, Copy)]
pub struct DefaultTimeZone(pub Zone);

problems!(CreateCourseProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "Caller is not a teacher",
    ApiError::Validation(Vec::new()) => "Invalid field",
});

/// Create a course (teacher).
///
/// The caller becomes its teacher.
#[utoipa::path(
    tag = "courses",
    request_body(content = CreateCourse, example = json!({"title": "Introduction to Computing", "code": "CS101", "time_zone": "Europe/Vienna"})),
    responses(
        (status = 201, description = "Created", body = Course),
        CreateCourseProblems,
    )
)]
#[post("/courses")]
pub async fn create_course(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    default_zone: web::Data<DefaultTimeZone>,
    teacher: Authenticated<TeacherOnly>,
    body: JsonObject<CreateCourse>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", Some(&body.title), Title::parse);
    let code = parse_field(&mut errors, "code", body.code.as_deref(), CourseCode::parse);
    let zone = parse_field(&mut errors, "time_zone", body.time_zone.as_deref(), Zone::parse);
    check(errors)?;
    let title = title.map(Title::into_inner).unwrap_or_default();
    let code = code.map(CourseCode::into_inner);
    let zone = zone.unwrap_or(default_zone.0);
    let (teacher_id, now) = (teacher.id, clock.now());
    let course = db::run(&pool, move |conn| -> Result<_, ApiError> {
        Ok::<_, ApiError>(queries::insert(conn, &title, code.as_deref(), zone, teacher_id, now)?)
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
    pool: web::Data<DbPool>,
    caller: Authenticated,
) -> Result<web::Json<Vec<Course>>, ApiError> {
    let user = caller.user;
    Ok(web::Json(db::run(&pool, move |conn| Ok::<_, ApiError>(queries::list_for(conn, &user)?)).await?))
}

problems!(GetCourseProblems {
    ApiError::Forbidden("") => "Not your course",
    ApiError::NotFound("") => "No such course",
});

/// Get a course.
///
/// For its teacher, its enrolled students and admins.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    responses(
        (status = 200, description = "The course", body = Course),
        GetCourseProblems,
    )
)]
#[get("/courses/{course_id}")]
pub async fn get_course(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<Course>, ApiError> {
    let (course_id, user) = (path.into_inner(), caller.user);
    let course = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::MEMBERS)?;
        Ok(queries::get(conn, course_id)?)
    })
    .await?;
    Ok(web::Json(course))
}

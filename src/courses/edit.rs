//! `PATCH /courses/{id}`: its teacher renames it or moves it to another time zone.

use actix_web::{patch, web};
use diesel::Connection;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Course, access, queries};
use crate::auth::extract::Authenticated;
use crate::db::{self, DbPool};
use crate::domain::text::{CourseCode, Title, check, parse_field};
use crate::domain::zone::Zone;
use crate::error::{ApiError, problems};
use crate::rejections::{JsonObject, present};

/// Changes to a course; a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
pub struct UpdateCourse {
    /// 1–200 characters.
    #[schema(example = "Introduction to Computing")]
    pub title: Option<String>,
    /// 1–32 characters, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "CS101")]
    pub code: Option<Option<String>>,
    /// An IANA time zone name. Existing lessons keep their instants.
    #[schema(example = "Europe/Vienna")]
    pub time_zone: Option<String>,
}

problems!(UpdateCourseProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "Invalid field, e.g. an unknown time zone",
});

/// Edit a course (its teacher).
///
/// Fields left out stay as they are. Changing the time zone keeps every existing lesson's
/// instant; it changes how new series are laid out and how exports write times.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = UpdateCourse, example = json!({"time_zone": "Europe/Vienna"})),
    responses(
        (status = 200, description = "The course as it is now", body = Course),
        UpdateCourseProblems,
    )
)]
#[patch("/courses/{course_id}")]
pub async fn update_course(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<UpdateCourse>,
) -> Result<web::Json<Course>, ApiError> {
    let UpdateCourse { title, code, time_zone } = body.into_inner();
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", title.as_deref(), Title::parse);
    let code = code.map(|code| parse_field(&mut errors, "code", code.as_deref(), CourseCode::parse));
    let zone = parse_field(&mut errors, "time_zone", time_zone.as_deref(), Zone::parse);
    check(errors)?;
    let (course_id, user) = (path.into_inner(), caller.user);
    let course = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        conn.transaction(|conn| {
            let before = queries::get_for_update(conn, course_id)?;
            let title = title.map_or(before.title, Title::into_inner);
            let code = code.map_or(before.code, |code| code.map(CourseCode::into_inner));
            Ok(queries::update(conn, course_id, &title, code.as_deref(), zone.unwrap_or(before.time_zone))?)
        })
    })
    .await?;
    Ok(web::Json(course))
}

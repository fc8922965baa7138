//! `PATCH /courses/{id}`: its teacher renames it or moves it to another time zone.

use actix_web::{patch, web};
use diesel::Connection;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Course, access, queries};
use crate::auth::extract::Authenticated;
use crate::db::{self, DbPool};
use crate::domain::policy::{ExcusedMode, Policy, PolicyChange};
use crate::domain::text::{CourseCode, Invalid, Title, check, parse_field};
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
    /// Changes to the attendance policy: only the fields named change.
    #[schema(inline)]
    pub policy: Option<PolicyRequest>,
}

/// A change to a course's attendance policy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// What a `late` counts for, 0..=1.
    #[schema(example = 0.5)]
    pub late_weight: Option<f64>,
    /// `absent`, `exclude` or `present`.
    #[schema(inline)]
    pub excused: Option<ExcusedMode>,
    /// Flag students whose rate is below this (0..=1); `null` turns the flag off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 0.8)]
    pub warn_below: Option<Option<f64>>,
}

problems!(UpdateCourseProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, or an unknown `excused` mode",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "Invalid field, e.g. an unknown time zone or a policy value out of range",
});

/// Edit a course (its teacher).
///
/// Fields left out stay as they are. Changing the time zone keeps every existing lesson's
/// instant; it changes how new series are laid out and how exports write times. `policy`
/// changes only the fields it names: `attendance_rate = (present + late_weight × late +
/// [excused if "present"]) / (lessons_counted − [excused if "exclude"])`, and a rate below
/// `warn_below` sets `below_threshold`.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = UpdateCourse, example = json!({"time_zone": "Europe/Vienna", "policy": {"late_weight": 0.5, "excused": "exclude", "warn_below": 0.8}})),
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
    let UpdateCourse { title, code, time_zone, policy } = body.into_inner();
    let mut errors = Vec::new();
    let title = parse_field(&mut errors, "title", title.as_deref(), Title::parse);
    let code = code.map(|code| parse_field(&mut errors, "code", code.as_deref(), CourseCode::parse));
    let zone = parse_field(&mut errors, "time_zone", time_zone.as_deref(), Zone::parse);
    let change = policy.map_or_else(PolicyChange::default, |p| PolicyChange {
        late_weight: p.late_weight,
        excused: p.excused,
        warn_below: p.warn_below,
    });
    // Checked against the defaults here for the field errors; applied to the stored policy below.
    if let Err(Invalid(more)) = Policy::default().apply(change) {
        errors.extend(more);
    }
    check(errors)?;
    let (course_id, user) = (path.into_inner(), caller.user);
    let course = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        conn.transaction(|conn| {
            let before = queries::get_for_update(conn, course_id)?;
            let title = title.map_or(before.title, Title::into_inner);
            let code = code.map_or(before.code, |code| code.map(CourseCode::into_inner));
            let policy = before.policy.apply(change)?;
            let zone = zone.unwrap_or(before.time_zone);
            Ok(queries::update(conn, course_id, &title, code.as_deref(), zone, policy)?)
        })
    })
    .await?;
    Ok(web::Json(course))
}

//! A course's roster: who is enrolled, enrolling by username or student number, removal.

use std::collections::HashSet;

use actix_web::{HttpResponse, delete, get, post, web};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{access, queries};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::db::{self, DbPool};
use crate::domain::text::{FieldError, check};
use crate::domain::user::{Role, User};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// Most names accepted in one enrolment request, per list.
const MAX_NAMES: usize = 1000;

problems!(ListStudentsProblems {
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such course",
});

/// List a course's students (its teacher, admin).
///
/// Ordered by student number, then username.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    responses(
        (status = 200, description = "The roster", body = Vec<User>),
        ListStudentsProblems,
    )
)]
#[get("/courses/{course_id}/students")]
pub async fn list_students(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<Vec<User>>, ApiError> {
    let (course_id, user) = (path.into_inner(), caller.user);
    let roster = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::STAFF)?;
        Ok(queries::roster(conn, course_id)?)
    })
    .await?;
    Ok(web::Json(roster))
}

/// Students to enrol, by username, by student number, or both; at least one name in all.
#[derive(Deserialize, ToSchema)]
pub struct EnrollStudents {
    /// Usernames to enrol (case-insensitive), at most 1000.
    #[schema(example = json!(["ada.l", "alan.t"]))]
    pub usernames: Option<Vec<String>>,
    /// Student numbers to enrol, at most 1000.
    #[schema(example = json!(["s1001"]))]
    pub student_numbers: Option<Vec<String>>,
}

/// What an enrolment request did with each name.
#[derive(Serialize, ToSchema)]
pub struct EnrollResult {
    /// Students enrolled by this request.
    pub enrolled: Vec<User>,
    /// Students who were enrolled already.
    pub already_enrolled: Vec<User>,
    /// Names that match no student (including users who are not students), as sent.
    pub not_found: Vec<String>,
}

problems!(EnrollStudentsProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "No names, or too many",
});

/// Enrol students (the course's teacher).
///
/// Names that match nobody, or someone who is not a student, are reported in `not_found`
/// without failing the rest.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = EnrollStudents, example = json!({"usernames": ["ada.l", "alan.t"], "student_numbers": ["s1001"]})),
    responses(
        (status = 200, description = "What happened to each name", body = EnrollResult),
        EnrollStudentsProblems,
    )
)]
#[post("/courses/{course_id}/students")]
pub async fn enroll_students(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<EnrollStudents>,
) -> Result<web::Json<EnrollResult>, ApiError> {
    let EnrollStudents { usernames, student_numbers } = body.into_inner();
    let (usernames, numbers) = (usernames.unwrap_or_default(), student_numbers.unwrap_or_default());
    let mut errors = Vec::new();
    for (field, list) in [("usernames", &usernames), ("student_numbers", &numbers)] {
        if list.len() > MAX_NAMES {
            errors.push(FieldError::new(field, format!("at most {MAX_NAMES} names per request")));
        }
    }
    if usernames.is_empty() && numbers.is_empty() {
        errors.push(FieldError::new("usernames", "give at least one username or student number"));
    }
    check(errors)?;
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let result = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        Ok(conn.transaction(|conn| enroll(conn, course_id, &usernames, &numbers, now))?)
    })
    .await?;
    Ok(web::Json(result))
}

fn enroll(
    conn: &mut diesel::PgConnection,
    course_id: i64,
    usernames: &[String],
    numbers: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> diesel::QueryResult<EnrollResult> {
    // A name with control characters matches nobody (and PostgreSQL text cannot hold NUL).
    let plausible = |names: &[String]| -> Vec<String> {
        names.iter().filter(|n| !n.chars().any(char::is_control)).cloned().collect()
    };
    let found: Vec<User> = queries::find_by_names(conn, &plausible(usernames), &plausible(numbers))?
        .into_iter()
        .filter(|u| u.role == Role::Student)
        .collect();
    let not_found = usernames
        .iter()
        .filter(|name| !found.iter().any(|u| u.username.eq_ignore_ascii_case(name)))
        .chain(
            numbers.iter().filter(|number| !found.iter().any(|u| u.student_number.as_ref() == Some(*number))),
        )
        .cloned()
        .collect();
    let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
    let added: HashSet<i64> = queries::enroll(conn, course_id, &ids, now)?.into_iter().collect();
    let (enrolled, already_enrolled) = found.into_iter().partition(|u| added.contains(&u.id));
    Ok(EnrollResult { enrolled, already_enrolled, not_found })
}

problems!(UnenrollStudentProblems {
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course, or the user is not enrolled",
});

/// Remove a student from a course (the course's teacher).
///
/// Their attendance records stay.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id"), ("user_id" = i64, Path, description = "Student's user id")),
    responses(
        (status = 204, description = "Removed"),
        UnenrollStudentProblems,
    )
)]
#[delete("/courses/{course_id}/students/{user_id}")]
pub async fn unenroll_student(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let ((course_id, student_id), user) = (path.into_inner(), caller.user);
    db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        if queries::unenroll(conn, course_id, student_id)? {
            Ok(())
        } else {
            Err(ApiError::NotFound("this user is not enrolled in the course"))
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

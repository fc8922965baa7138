//! A course's roster: who is enrolled, enrolling by username or student number, removal.

use std::collections::HashSet;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, web};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{access, queries};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::db::{self, DbPool};
use crate::domain::text::{FieldError, Invalid, check};
use crate::domain::user::{Role, User};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use crate::users::import::parse::{self, Unreadable};

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
    /// Students enrolled by this request (a former student starts a new enrolment period).
    pub enrolled: Vec<User>,
    /// Students who were enrolled already.
    pub already_enrolled: Vec<User>,
    /// Names that match no student (including users who are not students), as sent.
    pub not_found: Vec<String>,
}

/// The names to enrol, as JSON ([`EnrollStudents`]) or as a CSV class list.
pub enum EnrollBody {
    Json(EnrollStudents),
    /// A CSV export with a `username` or `student_number` column (or both).
    Csv(web::Bytes),
}

impl FromRequest for EnrollBody {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if content_type.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/csv")) {
            let bytes = web::Bytes::from_request(req, payload);
            return Box::pin(async move {
                let bytes =
                    bytes.await.map_err(|err| match err.as_response_error().status_code().as_u16() {
                        413 => ApiError::PayloadTooLarge { limit: CSV_LIMIT },
                        _ => ApiError::BadRequest("could not read the request body".into()),
                    })?;
                Ok(EnrollBody::Csv(bytes))
            });
        }
        // Anything else is read exactly as every JSON body is (415 for other types).
        let json = JsonObject::<EnrollStudents>::from_request(req, payload);
        Box::pin(async move { Ok(EnrollBody::Json(json.await?.into_inner())) })
    }
}

/// Largest CSV class list (actix's default payload limit).
const CSV_LIMIT: usize = 256 * 1024;

/// The usernames and student numbers of a CSV class list.
fn class_list(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let table = parse::table(bytes, 1).map_err(|unreadable| match unreadable {
        Unreadable::Malformed(message) => ApiError::BadRequest(message),
        Unreadable::TooManyRows => ApiError::TooManyRows { limit: crate::users::import::MAX_ROWS },
        Unreadable::MissingColumns(missing) => ApiError::Validation(missing),
    })?;
    let (username, number) = (table.column("username"), table.column("student_number"));
    if username.is_none() && number.is_none() {
        return Err(Invalid::field(
            "usernames",
            "the file has neither a `username` nor a `student_number` column",
        )
        .into());
    }
    let values = |column: Option<usize>| -> Vec<String> {
        let Some(column) = column else { return Vec::new() };
        table
            .rows
            .iter()
            .filter_map(|r| r.get(column))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok((values(username), values(number)))
}

problems!(EnrollStudentsProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, or a CSV file that is not UTF-8 or not CSV",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "No names, too many, or a CSV file without a `username` or `student_number` column",
});

/// Enrol students (the course's teacher).
///
/// Names that match nobody, or someone who is not a student, are reported in `not_found`
/// without failing the rest. The names can also come as a CSV class list
/// (`Content-Type: text/csv`, as a spreadsheet exports it): a header row with a `username` or
/// a `student_number` column, or both; other columns are ignored. A student who left the
/// course starts a new enrolment period: lessons held while they were away do not count
/// for them.
#[utoipa::path(
    tag = "courses",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(
        description = "The students to enrol",
        content(
            (EnrollStudents = "application/json", example = json!({"usernames": ["ada.l", "alan.t"], "student_numbers": ["s1001"]})),
            (String = "text/csv", example = "student_number;name\ns1001;Ada Lovelace\ns1002;Alan Turing\n"),
        )
    ),
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
    body: EnrollBody,
) -> Result<web::Json<EnrollResult>, ApiError> {
    let (usernames, numbers) = match body {
        EnrollBody::Json(EnrollStudents { usernames, student_numbers }) => {
            (usernames.unwrap_or_default(), student_numbers.unwrap_or_default())
        }
        EnrollBody::Csv(bytes) => class_list(&bytes)?,
    };
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
    ApiError::NotFound("") => "No such course, or the user is not enrolled now",
});

/// Remove a student from a course (the course's teacher).
///
/// Ends their enrolment period (`left_at`); enrolling them again starts a new one. Their
/// attendance records stay, and lessons first opened while they were enrolled still count
/// for them: the course report lists them with their `left_at`.
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
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let ((course_id, student_id), user, now) = (path.into_inner(), caller.user, clock.now());
    db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        if queries::unenroll(conn, course_id, student_id, now)? {
            Ok(())
        } else {
            Err(ApiError::NotFound("this user is not enrolled in the course"))
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

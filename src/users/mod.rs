//! Users: the caller's own profile (`/me`) and account management by administrators.

mod admin;
mod create;
pub mod import;
pub mod queries;

pub use admin::{create_activation, get_user, update_user};
pub use create::{CreateUser, CreateUserError, create, create_user};

use actix_web::{get, patch, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::{AdminOnly, Authenticated};
use crate::db::{self, DbPool};
use crate::domain::page::Page;
use crate::domain::text::{RealName, StudentNumber, check, parse_field};
use crate::domain::user::{Role, User};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use queries::Taken;

impl From<Taken> for ApiError {
    fn from(taken: Taken) -> Self {
        ApiError::Conflict(taken.message())
    }
}

/// Who am I.
///
/// Any logged-in user. Answers the caller's account as stored now, so a changed name or
/// student number shows without logging in again.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, description = "The caller", body = User),
    )
)]
#[get("/me")]
pub async fn get_me(caller: Authenticated) -> web::Json<User> {
    web::Json(caller.user)
}

/// Changes to the caller's own profile; omitted or `null` fields stay as they are.
#[derive(Deserialize, ToSchema)]
pub struct UpdateMe {
    /// New display name (1–200 characters).
    pub real_name: Option<String>,
    /// New student number (students only; unique; 1–32 characters, no spaces).
    pub student_number: Option<String>,
}

problems!(UpdateMeProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "A non-student sent `student_number`",
    ApiError::Conflict("") => "The student number belongs to someone else",
    ApiError::Validation(Vec::new()) => "Invalid field",
});

/// Update my profile.
///
/// Omitted (or `null`) fields stay as they are. Only students have a student number:
/// anyone else sending one gets 403.
#[utoipa::path(
    tag = "users",
    request_body(content = UpdateMe, example = json!({"real_name": "Ada Lovelace"})),
    responses(
        (status = 200, description = "The updated caller", body = User),
        UpdateMeProblems,
    )
)]
#[patch("/me")]
pub async fn update_me(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    body: JsonObject<UpdateMe>,
) -> Result<web::Json<User>, ApiError> {
    let UpdateMe { real_name, student_number } = body.into_inner();
    if student_number.is_some() && caller.role != Role::Student {
        return Err(ApiError::Forbidden("only students have a student number"));
    }
    let mut errors = Vec::new();
    let real_name = parse_field(&mut errors, "real_name", real_name.as_deref(), RealName::parse);
    let student_number =
        parse_field(&mut errors, "student_number", student_number.as_deref(), StudentNumber::parse);
    check(errors)?;
    if real_name.is_none() && student_number.is_none() {
        return Ok(web::Json(caller.user));
    }
    let id = caller.id;
    let updated = db::run(&pool, move |conn| -> Result<_, ApiError> {
        Ok(queries::update_profile(
            conn,
            id,
            real_name.map(RealName::into_inner).as_deref(),
            student_number.map(StudentNumber::into_inner).as_deref(),
        )?)
    })
    .await?;
    Ok(web::Json(updated?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only users with this role.
    pub role: Option<Role>,
}

problems!(ListUsersProblems {
    ApiError::BadRequest(String::new()) => "Malformed query",
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::Validation(Vec::new()) => "`limit` or `offset` out of range",
});

/// List users (admin).
///
/// Every account, ordered by id, optionally only those with one `role`. Paged with `limit`
/// (default 100, at most 1000) and `offset`; a page shorter than `limit` is the last.
#[utoipa::path(
    tag = "users",
    params(UserFilter, Page),
    responses(
        (status = 200, description = "Users ordered by id", body = Vec<User>),
        ListUsersProblems,
    )
)]
#[get("/users")]
pub async fn list_users(
    pool: web::Data<DbPool>,
    _admin: Authenticated<AdminOnly>,
    filter: web::Query<UserFilter>,
    page: web::Query<Page>,
) -> Result<web::Json<Vec<User>>, ApiError> {
    let (limit, offset) = page.into_inner().parse()?;
    let role = filter.role;
    let users =
        db::run(&pool, move |conn| Ok::<_, ApiError>(queries::list(conn, role, limit, offset)?)).await?;
    Ok(web::Json(users))
}

//! Users: the caller's own profile (`/me`) and account management by administrators.

pub mod model;
pub mod queries;

use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::{AdminOnly, Authenticated};
use crate::auth::password;
use crate::db::{self, Page};
use crate::error::{ApiError, FieldError, Problem, check, parse_field};
use crate::rejections::JsonObject;
use crate::state::AppState;
use model::{Password, RealName, Role, StudentNumber, User, Username};
use queries::{NewUser, Taken};

impl Taken {
    fn into_error(self) -> ApiError {
        match self {
            Taken::Username => ApiError::conflict("conflict", "this username is already taken"),
            Taken::StudentNumber => ApiError::conflict("conflict", "this student number is already in use"),
        }
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
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub real_name: Option<String>,
    /// New student number (students only; unique; 1–32 characters, no spaces).
    #[schema(min_length = 1, max_length = 32, pattern = r"^[^\s\u0000-\u001f\u007f-\u009f]+$")]
    pub student_number: Option<String>,
}

/// Update my profile.
///
/// Omitted (or `null`) fields stay as they are. Only students have a student number:
/// anyone else sending one gets 403.
#[utoipa::path(
    tag = "users",
    request_body(content = UpdateMe, example = json!({"real_name": "Ada Lovelace"})),
    responses(
        (status = 200, description = "The updated caller", body = User),
        (status = 400, description = "Malformed body (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A non-student sent `student_number` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The student number belongs to someone else (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/me")]
pub async fn update_me(
    state: web::Data<AppState>,
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
    let updated = db::run(&state.pool, move |conn| {
        Ok(queries::update_profile(
            conn,
            id,
            real_name.map(RealName::into_inner).as_deref(),
            student_number.map(StudentNumber::into_inner).as_deref(),
        )?)
    })
    .await?;
    Ok(web::Json(updated.map_err(Taken::into_error)?))
}

/// A new account, created by an admin.
#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3–64 characters of `[A-Za-z0-9_.-]`; unique regardless of case.
    #[schema(example = "ada.l", min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9_.-]{3,64}$")]
    pub username: String,
    /// 8–256 characters. Stored only as an Argon2id hash.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 256)]
    pub password: String,
    pub role: Role,
    /// 1–200 characters.
    #[schema(
        example = "Ada Lovelace",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub real_name: String,
    /// Students only; unique; 1–32 characters, no spaces.
    #[schema(
        example = "s1001",
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub student_number: Option<String>,
}

/// Create a user (admin).
///
/// Creates an account with the given role and password, and answers it (never the
/// password). Usernames are unique regardless of case and student numbers are unique: a
/// taken one is 409 `conflict`. Only students may have a student number; one sent for
/// another role is 422 `validation_failed`.
#[utoipa::path(
    tag = "users",
    request_body(content = CreateUser, example = json!({
        "username": "ada.l",
        "password": "correct horse battery",
        "role": "student",
        "real_name": "Ada Lovelace",
        "student_number": "s1001"
    })),
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Malformed body or unknown role (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller is not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username or student number taken (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    _admin: Authenticated<AdminOnly>,
    body: JsonObject<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let user = create(&state.pool, input, state.clock.now()).await?;
    Ok(HttpResponse::Created().json(user))
}

/// Validates and stores a new user; shared by `POST /users` and the CLI.
pub async fn create(
    pool: &db::DbPool,
    input: CreateUser,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<User, ApiError> {
    let mut errors = Vec::new();
    let username = parse_field(&mut errors, "username", Some(&input.username), Username::parse);
    let password = parse_field(&mut errors, "password", Some(&input.password), Password::parse);
    let real_name = parse_field(&mut errors, "real_name", Some(&input.real_name), RealName::parse);
    let student_number =
        parse_field(&mut errors, "student_number", input.student_number.as_deref(), StudentNumber::parse);
    if student_number.is_some() && input.role != Role::Student {
        errors.push(FieldError::new("student_number", "only students have a student number"));
    }
    check(errors)?;
    let (Some(username), Some(password), Some(real_name)) = (username, password, real_name) else {
        unreachable!("check() returned early for missing values")
    };
    let hash = web::block(move || password::hash(password.expose()))
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))??;
    let role = input.role;
    let created = db::run(pool, move |conn| {
        let student_number = student_number.map(StudentNumber::into_inner);
        let real_name = real_name.into_inner();
        Ok(queries::insert(
            conn,
            &NewUser {
                username: username.as_str(),
                password_hash: &hash,
                role,
                real_name: &real_name,
                student_number: student_number.as_deref(),
            },
            now,
        )?)
    })
    .await?;
    created.map_err(Taken::into_error)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only users with this role.
    pub role: Option<Role>,
}

/// List users (admin).
///
/// Every account, ordered by id, optionally only those with one `role`. Paged with `limit`
/// (default 100, at most 1000) and `offset`; a page shorter than `limit` is the last.
#[utoipa::path(
    tag = "users",
    params(UserFilter, Page),
    responses(
        (status = 200, description = "Users ordered by id", body = Vec<User>),
        (status = 400, description = "Malformed query (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller is not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` or `offset` out of range (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Authenticated<AdminOnly>,
    filter: web::Query<UserFilter>,
    page: web::Query<Page>,
) -> Result<web::Json<Vec<User>>, ApiError> {
    let (limit, offset) = page.into_inner().parse()?;
    let role = filter.role;
    let users = db::run(&state.pool, move |conn| Ok(queries::list(conn, role, limit, offset)?)).await?;
    Ok(web::Json(users))
}

//! `POST /users` and `rollcall user add`: validating and storing a new account.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::queries::{self, NewUser, Taken};
use crate::auth::extract::{AdminOnly, Authenticated};
use crate::auth::password::{HashError, Hasher};
use crate::clock::Clock;
use crate::db::{self, DbError, DbPool};
use crate::domain::text::{
    FieldError, Invalid, Password, RealName, StudentNumber, Username, check, parse_field,
};
use crate::domain::user::{Role, User};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// A new account, created by an admin.
#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3–64 characters of `[A-Za-z0-9_.-]`; unique regardless of case.
    #[schema(example = "ada.l")]
    pub username: String,
    /// 8–256 characters. Stored only as an Argon2id hash.
    #[schema(example = "correct horse battery")]
    pub password: String,
    pub role: Role,
    /// 1–200 characters.
    #[schema(example = "Ada Lovelace")]
    pub real_name: String,
    /// Students only; unique; 1–32 characters, no spaces.
    #[schema(example = "s1001")]
    pub student_number: Option<String>,
}

problems!(CreateUserProblems {
    ApiError::BadRequest(String::new()) => "Malformed body or unknown role",
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::Conflict("") => "Username or student number taken",
    ApiError::Validation(Vec::new()) => "Invalid field",
    ApiError::ServerBusy("") => "Too many passwords are being hashed at once",
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

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
        CreateUserProblems,
    )
)]
#[post("/users")]
pub async fn create_user(
    pool: web::Data<DbPool>,
    hasher: web::Data<Hasher>,
    clock: web::Data<dyn Clock>,
    _admin: Authenticated<AdminOnly>,
    body: JsonObject<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let user = create(&pool, &hasher, body.into_inner(), clock.now()).await?;
    Ok(HttpResponse::Created().json(user))
}

/// Why a new user was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("{}", .0.message())]
    Taken(Taken),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl From<CreateUserError> for ApiError {
    fn from(error: CreateUserError) -> Self {
        match error {
            CreateUserError::Invalid(errors) => Invalid(errors).into(),
            CreateUserError::Taken(taken) => taken.into(),
            CreateUserError::Database(error) => error.into(),
            CreateUserError::Query(error) => error.into(),
            CreateUserError::Hash(error) => error.into(),
        }
    }
}

/// Validates and stores a new user; shared by `POST /users` and the CLI.
pub async fn create(
    pool: &DbPool,
    hasher: &Hasher,
    input: CreateUser,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<User, CreateUserError> {
    let mut errors = Vec::new();
    let username = parse_field(&mut errors, "username", Some(&input.username), Username::parse);
    let password = parse_field(&mut errors, "password", Some(&input.password), Password::parse);
    let real_name = parse_field(&mut errors, "real_name", Some(&input.real_name), RealName::parse);
    let student_number =
        parse_field(&mut errors, "student_number", input.student_number.as_deref(), StudentNumber::parse);
    if student_number.is_some() && input.role != Role::Student {
        errors.push(FieldError::new("student_number", "only students have a student number"));
    }
    check(errors).map_err(|Invalid(errors)| CreateUserError::Invalid(errors))?;
    let (Some(username), Some(password), Some(real_name)) = (username, password, real_name) else {
        unreachable!("check() returned early for missing values")
    };
    let hash = hasher.hash(password.expose().to_owned()).await?;
    let role = input.role;
    let created = db::run(pool, move |conn| -> Result<_, CreateUserError> {
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
    created.map_err(CreateUserError::Taken)
}

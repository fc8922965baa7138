//! Account management by administrators: read and change one user, disable them, and reset
//! their password by issuing an activation code.

use actix_web::{HttpResponse, get, patch, post, web};
use diesel::Connection;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::queries;
use crate::auth::activation::{self, Activation};
use crate::auth::extract::{AdminOnly, Authenticated};
use crate::auth::{Authenticator, queries as auth_queries, sessions};
use crate::db;
use crate::domain::text::{FieldError, RealName, StudentNumber, check, parse_field};
use crate::domain::user::{Role, User};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

problems!(GetUserProblems {
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::NotFound("") => "No such user",
});

/// Get a user (admin).
///
/// Any account by id, with `disabled` and `activation_pending`.
#[utoipa::path(
    tag = "users",
    params(("user_id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user", body = User), GetUserProblems)
)]
#[get("/users/{user_id}")]
pub async fn get_user(
    auth: web::Data<Authenticator>,
    _admin: Authenticated<AdminOnly>,
    path: web::Path<i64>,
) -> Result<web::Json<User>, ApiError> {
    let user_id = path.into_inner();
    let user =
        db::run(&auth.pool, move |conn| Ok::<_, ApiError>(auth_queries::find_user(conn, user_id)?)).await?;
    Ok(web::Json(user.ok_or(ApiError::NotFound("no such user"))?))
}

/// An administrator's change to a user; omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
pub struct UpdateUser {
    /// New display name (1–200 characters).
    #[schema(example = "Ada King")]
    pub real_name: Option<String>,
    /// New student number (students only; unique); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "s1002")]
    pub student_number: Option<Option<String>>,
    /// `true` locks the account and revokes all its sessions; `false` unlocks it.
    pub disabled: Option<bool>,
    /// Never accepted: a role does not change after creation (422).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub role: Option<Option<serde_json::Value>>,
}

/// `Some(value)` for a field that is present, even as `null`; `None` when it is left out.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(input: D) -> Result<Option<T>, D::Error> {
    T::deserialize(input).map(Some)
}

problems!(UpdateUserProblems {
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::NotFound("") => "No such user",
    ApiError::Conflict("") => "The student number belongs to someone else, or an admin tried to disable themself",
    ApiError::Validation(Vec::new()) => "Invalid field, a student number for a non-student, or a `role`",
});

/// Change a user (admin).
///
/// `real_name`, `student_number` (students only; `null` clears it) and `disabled`. Disabling
/// revokes every session of the user on every instance; an admin cannot disable themself
/// (409). Roles never change: a `role` field is 422.
#[utoipa::path(
    tag = "users",
    params(("user_id" = i64, Path, description = "User id")),
    request_body(content = UpdateUser, example = json!({"real_name": "Ada King", "disabled": true})),
    responses((status = 200, description = "The updated user", body = User), UpdateUserProblems)
)]
#[patch("/users/{user_id}")]
pub async fn update_user(
    auth: web::Data<Authenticator>,
    admin: Authenticated<AdminOnly>,
    path: web::Path<i64>,
    body: JsonObject<UpdateUser>,
) -> Result<web::Json<User>, ApiError> {
    let UpdateUser { real_name, student_number, disabled, role } = body.into_inner();
    let user_id = path.into_inner();
    let mut errors = Vec::new();
    if role.is_some() {
        errors.push(FieldError::new("role", "a user's role never changes"));
    }
    let real_name = parse_field(&mut errors, "real_name", real_name.as_deref(), RealName::parse);
    let number = match &student_number {
        Some(Some(number)) => parse_field(&mut errors, "student_number", Some(number), StudentNumber::parse)
            .map(|n| Some(n.into_inner())),
        Some(None) => Some(None),
        None => None,
    };
    check(errors)?;
    if disabled == Some(true) && user_id == admin.user.id {
        return Err(ApiError::Conflict("you cannot disable your own account"));
    }
    let now = auth.clock.now();
    let updated = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            let user = auth_queries::find_user(conn, user_id)?.ok_or(ApiError::NotFound("no such user"))?;
            if number.is_some() && user.role != Role::Student {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "student_number",
                    "only students have a student number",
                )]));
            }
            let change = queries::AccountChange {
                real_name: real_name.map(RealName::into_inner),
                student_number: number,
                disabled,
            };
            let user = queries::update_account(conn, user_id, &change)??;
            if disabled == Some(true) {
                sessions::revoke_all_of(conn, user_id, None, now)?;
            }
            Ok(user)
        })
    })
    .await?;
    Ok(web::Json(updated))
}

problems!(CreateActivationProblems {
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::NotFound("") => "No such user",
});

/// Reset a user's password (admin).
///
/// Issues an activation code for `POST /auth/activate`, shown only in this answer. The
/// user's sessions, any earlier code and their current password stop working at once.
#[utoipa::path(
    tag = "users",
    params(("user_id" = i64, Path, description = "User id")),
    responses((status = 201, description = "A new activation code", body = Activation), CreateActivationProblems)
)]
#[post("/users/{user_id}/activation")]
pub async fn create_activation(
    auth: web::Data<Authenticator>,
    _admin: Authenticated<AdminOnly>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, now, ttl) = (path.into_inner(), auth.clock.now(), auth.activation_ttl);
    let activation = db::run(&auth.pool, move |conn| -> Result<_, ApiError> {
        conn.transaction(|conn| {
            auth_queries::find_user(conn, user_id)?.ok_or(ApiError::NotFound("no such user"))?;
            Ok(activation::issue(conn, user_id, now, ttl)?)
        })
    })
    .await?;
    tracing::info!(user_id, "activation code issued");
    Ok(HttpResponse::Created().json(activation))
}

//! Users as the API shows them, and their one role.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::text_enum;
use crate::schema::users;

text_enum! {
    /// A user's one role.
    pub enum Role {
        Admin = "admin",
        Teacher = "teacher",
        Student = "student",
    }
}

/// A user account. Passwords are never returned.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// The user's id.
    #[schema(example = 7)]
    pub id: i64,
    /// The login name, unique regardless of case.
    #[schema(example = "ada.l")]
    pub username: String,
    pub role: Role,
    /// The person's name as shown to teachers.
    #[schema(example = "Ada Lovelace")]
    pub real_name: String,
    /// Only students have one.
    #[schema(example = "s1001")]
    pub student_number: Option<String>,
    /// When the account was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// A disabled account cannot log in, and all its sessions were revoked.
    pub disabled: bool,
    /// No password is set: the user must use an activation code (after an import without
    /// a password, or an admin's reset) before logging in. `false` for an account made by
    /// single sign-on, which signs in at its provider and needs no password.
    #[diesel(select_expression = users::password_hash.is_null().and(users::sso_only.eq(false)))]
    #[diesel(select_expression_type = diesel::dsl::And<
        diesel::dsl::IsNull<users::password_hash>,
        diesel::dsl::Eq<users::sso_only, bool>,
    >)]
    pub activation_pending: bool,
}

/// A short reference to a user, embedded in other resources.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRef {
    /// The user's id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The person's name as shown to teachers.
    pub real_name: String,
    /// Only students have one.
    pub student_number: Option<String>,
}

impl From<User> for UserRef {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            real_name: user.real_name,
            student_number: user.student_number,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str(), "JSON and database names agree");
        }
        assert!("root".parse::<Role>().is_err());
    }
}

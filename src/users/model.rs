//! Users as the API shows them, their roles, and the validated input types.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::text_enum;
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

/// 3–64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(3..=64).contains(&len) {
            return Err("must be 3 to 64 characters long".into());
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err("may contain only letters, digits, `_`, `.` and `-`".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–256 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.chars().count() {
            0..8 => Err("must be at least 8 characters long".into()),
            8..=256 => Ok(Self(raw.to_owned())),
            _ => Err("must be at most 256 characters long".into()),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A person's name as shown to teachers: 1–200 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealName(String);

impl RealName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        Ok(Self(bounded_text(trimmed, 1, 200)?.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A student number: 1–32 characters, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentNumber(String);

impl StudentNumber {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(char::is_whitespace) {
            return Err("must not contain spaces".into());
        }
        Ok(Self(bounded_text(raw, 1, 32)?.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Checks a free-text value's length (in characters) and rejects control characters.
pub fn bounded_text(value: &str, min: usize, max: usize) -> Result<&str, String> {
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters long")
        });
    }
    if len > max {
        return Err(format!("must be at most {max} characters long"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        for ok in ["abc", "ada.l", "A_b-9", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"x".repeat(65), "has space", "é-accent", "semi;colon", "quote'"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(257)).is_err());
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(RealName::parse("  Zoë O'Brien, Jr. ").unwrap().into_inner(), "Zoë O'Brien, Jr.");
        assert!(RealName::parse("   ").is_err());
        assert!(RealName::parse("bell\u{7}").is_err());
        assert!(RealName::parse(&"n".repeat(201)).is_err());
    }

    #[test]
    fn student_numbers_have_no_spaces() {
        assert!(StudentNumber::parse("s-1001").is_ok());
        assert!(StudentNumber::parse("s 1001").is_err());
        assert!(StudentNumber::parse("").is_err());
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str(), "JSON and database names agree");
        }
        assert!("root".parse::<Role>().is_err());
    }
}

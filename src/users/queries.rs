//! User queries. Each takes the connection first and knows nothing of HTTP.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use crate::domain::user::{Role, User};
use crate::schema::users;

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub real_name: &'a str,
    pub student_number: Option<&'a str>,
}

/// Why an insert or update was refused by a uniqueness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    StudentNumber,
}

impl Taken {
    pub fn message(self) -> &'static str {
        match self {
            Taken::Username => "this username is already taken",
            Taken::StudentNumber => "this student number is already in use",
        }
    }
}

pub fn insert(
    conn: &mut PgConnection,
    new: &NewUser<'_>,
    now: DateTime<Utc>,
) -> QueryResult<Result<User, Taken>> {
    let result = diesel::insert_into(users::table)
        .values((
            users::username.eq(new.username),
            users::password_hash.eq(new.password_hash),
            users::role.eq(new.role),
            users::real_name.eq(new.real_name),
            users::student_number.eq(new.student_number),
            users::created_at.eq(now),
        ))
        .returning(User::as_returning())
        .get_result(conn);
    unique_violation(result)
}

pub fn update_profile(
    conn: &mut PgConnection,
    id: i64,
    real_name: Option<&str>,
    student_number: Option<&str>,
) -> QueryResult<Result<User, Taken>> {
    let result = diesel::update(users::table.find(id))
        .set((
            real_name.map(|name| users::real_name.eq(name)),
            student_number.map(|number| users::student_number.eq(number)),
        ))
        .returning(User::as_returning())
        .get_result(conn);
    unique_violation(result)
}

pub fn list(conn: &mut PgConnection, role: Option<Role>, limit: i64, offset: i64) -> QueryResult<Vec<User>> {
    let mut query =
        users::table.select(User::as_select()).order(users::id).limit(limit).offset(offset).into_boxed();
    if let Some(role) = role {
        query = query.filter(users::role.eq(role));
    }
    query.load(conn)
}

/// Which uniqueness rule refused a write, if one did; other errors pass through.
fn unique_violation<T>(result: QueryResult<T>) -> QueryResult<Result<T, Taken>> {
    match result {
        Ok(user) => Ok(Ok(user)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            Ok(Err(if info.constraint_name() == Some("users_student_number_key") {
                Taken::StudentNumber
            } else {
                Taken::Username
            }))
        }
        Err(other) => Err(other),
    }
}

/// An administrator's change to an account; `None` leaves a column as it is.
pub struct AccountChange {
    pub real_name: Option<String>,
    /// `Some(None)` clears the student number.
    pub student_number: Option<Option<String>>,
    pub disabled: Option<bool>,
}

pub fn update_account(
    conn: &mut PgConnection,
    id: i64,
    change: &AccountChange,
) -> QueryResult<Result<User, Taken>> {
    let result = diesel::update(users::table.find(id))
        .set((
            change.real_name.as_deref().map(|name| users::real_name.eq(name)),
            change.student_number.as_ref().map(|number| users::student_number.eq(number.as_deref())),
            change.disabled.map(|disabled| users::disabled.eq(disabled)),
        ))
        .returning(User::as_returning())
        .get_result(conn);
    unique_violation(result)
}

/// One of many users inserted together (an import).
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    pub username: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: Role,
    pub real_name: &'a str,
    pub student_number: Option<&'a str>,
    pub created_at: DateTime<Utc>,
}

/// Inserts many users in one statement; (id, username) of each, or which uniqueness rule
/// refused them (a concurrent change since they were checked).
pub fn insert_many(
    conn: &mut PgConnection,
    rows: &[NewUserRow<'_>],
) -> QueryResult<Result<Vec<(i64, String)>, Taken>> {
    if rows.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    unique_violation(
        diesel::insert_into(users::table)
            .values(rows)
            .returning((users::id, users::username))
            .get_results(conn),
    )
}

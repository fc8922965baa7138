//! User queries. Each takes the connection first and knows nothing of HTTP.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::model::{Role, User};
use crate::schema::{login_failures, users};

diesel::define_sql_function!(
    /// SQL `lower()`, for case-insensitive usernames.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub real_name: &'a str,
    pub student_number: Option<&'a str>,
}

/// Why an insert or update was refused by a uniqueness rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Username,
    StudentNumber,
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).optional()
}

/// The user and password hash for a login name (case-insensitive).
pub fn find_credentials(conn: &mut PgConnection, username: &str) -> QueryResult<Option<(User, String)>> {
    users::table
        .filter(lower(users::username).eq(username.to_lowercase()))
        .select((User::as_select(), users::password_hash))
        .first(conn)
        .optional()
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

fn unique_violation(result: QueryResult<User>) -> QueryResult<Result<User, Taken>> {
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

/// Failed logins for `username` since `since`, and the oldest of them.
pub fn recent_login_failures(
    conn: &mut PgConnection,
    username: &str,
    since: DateTime<Utc>,
) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    login_failures::table
        .filter(login_failures::username.eq(username.to_lowercase()))
        .filter(login_failures::failed_at.gt(since))
        .select((diesel::dsl::count_star(), diesel::dsl::min(login_failures::failed_at)))
        .first(conn)
}

pub fn record_login_failure(conn: &mut PgConnection, username: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::insert_into(login_failures::table)
        .values((login_failures::username.eq(username.to_lowercase()), login_failures::failed_at.eq(now)))
        .execute(conn)
        .map(drop)
}

/// Forgets a username's failures (after a successful login) and anything expired.
pub fn clear_login_failures(
    conn: &mut PgConnection,
    username: &str,
    expired_before: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(
        login_failures::username.eq(username.to_lowercase()).or(login_failures::failed_at.le(expired_before)),
    ))
    .execute(conn)
    .map(drop)
}

/// Serialises login attempts for one username, so the throttle counts exactly.
pub fn lock_username(conn: &mut PgConnection, username: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('login:' || $1, 0))")
        .bind::<diesel::sql_types::Text, _>(username.to_lowercase())
        .execute(conn)
        .map(drop)
}

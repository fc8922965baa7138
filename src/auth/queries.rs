//! The queries behind authentication: a user by id or login name, and the login throttle's
//! failures. Each takes the connection first and knows nothing of HTTP.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::lower;
use crate::domain::user::User;
use crate::schema::{login_failures, users};

pub fn find_user(conn: &mut PgConnection, id: i64) -> QueryResult<Option<User>> {
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

/// Records a failed (or not yet checked) login; returns its id.
pub fn record_login_failure(conn: &mut PgConnection, username: &str, now: DateTime<Utc>) -> QueryResult<i64> {
    diesel::insert_into(login_failures::table)
        .values((login_failures::username.eq(username.to_lowercase()), login_failures::failed_at.eq(now)))
        .returning(login_failures::id)
        .get_result(conn)
}

/// Takes back one recorded failure (a login that was never checked).
pub fn forget_login_failure(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(login_failures::table.find(id)).execute(conn).map(drop)
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

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
pub fn find_credentials(
    conn: &mut PgConnection,
    username: &str,
) -> QueryResult<Option<(User, Option<String>)>> {
    users::table
        .filter(lower(users::username).eq(username.to_lowercase()))
        .select((User::as_select(), users::password_hash))
        .first(conn)
        .optional()
}

/// A username's recent attempts: failures (and the oldest of them), and attempts still
/// being checked.
#[derive(Debug, QueryableByName)]
pub struct RecentAttempts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub failures: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub oldest_failure: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pending: i64,
}

pub fn recent_attempts(
    conn: &mut PgConnection,
    username: &str,
    since: DateTime<Utc>,
) -> QueryResult<RecentAttempts> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE NOT pending) AS failures, \
                min(failed_at) FILTER (WHERE NOT pending) AS oldest_failure, \
                count(*) FILTER (WHERE pending) AS pending \
         FROM login_failures WHERE username = $1 AND failed_at > $2",
    )
    .bind::<diesel::sql_types::Text, _>(username.to_lowercase())
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .get_result(conn)
}

/// Records an attempt whose secret is about to be checked; returns its id.
pub fn record_pending_attempt(
    conn: &mut PgConnection,
    username: &str,
    now: DateTime<Utc>,
) -> QueryResult<i64> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::username.eq(username.to_lowercase()),
            login_failures::failed_at.eq(now),
            login_failures::pending.eq(true),
        ))
        .returning(login_failures::id)
        .get_result(conn)
}

/// The attempt's secret was wrong: it counts as a failure from now on.
pub fn mark_failed(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(login_failures::table.find(id))
        .set(login_failures::pending.eq(false))
        .execute(conn)
        .map(drop)
}

/// Takes back one recorded attempt (one that was never checked).
pub fn forget_attempt(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(login_failures::table.find(id)).execute(conn).map(drop)
}

/// After a right secret: forgets the username's failures and the attempt `own` (others
/// still pending stay counted until they are settled), and anyone's expired rows.
pub fn clear_login_failures(
    conn: &mut PgConnection,
    username: &str,
    own: i64,
    expired_before: DateTime<Utc>,
) -> QueryResult<()> {
    let this_username = login_failures::username.eq(username.to_lowercase());
    let settled_or_own = login_failures::pending.eq(false).or(login_failures::id.eq(own));
    diesel::delete(
        login_failures::table
            .filter(this_username.and(settled_or_own).or(login_failures::failed_at.le(expired_before))),
    )
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

/// A user's stored password hash (`None`: no password is set).
pub fn password_hash(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<String>> {
    users::table.find(user_id).select(users::password_hash).first(conn)
}

pub fn set_password_hash(conn: &mut PgConnection, user_id: i64, hash: Option<&str>) -> QueryResult<()> {
    diesel::update(users::table.find(user_id)).set(users::password_hash.eq(hash)).execute(conn).map(drop)
}

/// A user's password hash and `disabled` flag, the row locked for the transaction: what a
/// login, password change or activation re-reads before it commits, so a reset or disable
/// that committed meanwhile wins.
pub fn lock_account(conn: &mut PgConnection, user_id: i64) -> QueryResult<(Option<String>, bool)> {
    users::table.find(user_id).select((users::password_hash, users::disabled)).for_update().first(conn)
}

//! Sessions: every login, refresh and activation belongs to one. A session ends at its
//! `expires_at` however it is used, or when revoked (logout, a password change or reset,
//! disabling the account, or reuse of a refresh token). Refresh tokens rotate: each is
//! stored as a SHA-256, used once, and a used one presented again revokes its session.
//! Revocations are announced as events, so every instance closes the session's dashboards.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::client::ClientInfo;
use crate::domain::user::User;
use crate::events::{self, Event};
use crate::schema::{refresh_tokens, sessions, users};

/// A session as its owner sees it in `GET /me/sessions`.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    /// The session's id (the access token's `sid`).
    pub id: i64,
    /// When it was started by a login or an activation.
    pub created_at: DateTime<Utc>,
    /// When one of its tokens was last used (to within a minute).
    pub last_used_at: DateTime<Utc>,
    /// When it ends, however it is used.
    pub expires_at: DateTime<Utc>,
    /// The browser or app that started it.
    pub user_agent: Option<String>,
    /// The address it was started from.
    pub ip: Option<String>,
    /// Whether this is the session of the token making the request.
    #[diesel(select_expression = diesel::dsl::sql::<diesel::sql_types::Bool>("false"))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<diesel::sql_types::Bool>)]
    pub current: bool,
}

/// A new session and the first refresh token for it.
pub struct Started {
    pub session_id: i64,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

/// Starts a session for `user_id`, lasting `ttl` from `now`.
pub fn start(
    conn: &mut PgConnection,
    user_id: i64,
    now: DateTime<Utc>,
    ttl: Duration,
    client: &ClientInfo,
) -> QueryResult<Started> {
    let expires_at = now + ttl;
    let session_id = diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(now),
            sessions::last_used_at.eq(now),
            sessions::expires_at.eq(expires_at),
            sessions::user_agent.eq(client.user_agent.as_deref()),
            sessions::ip.eq(client.ip.as_deref()),
        ))
        .returning(sessions::id)
        .get_result(conn)?;
    let refresh_token = new_refresh_token(conn, session_id, now)?;
    Ok(Started { session_id, expires_at, refresh_token })
}

/// 256 random bits, of which only the SHA-256 is kept.
fn new_refresh_token(conn: &mut PgConnection, session_id: i64, now: DateTime<Utc>) -> QueryResult<String> {
    let token = random_secret::<32>();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(digest(&token)),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::issued_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// `N` bytes from the OS, hex-encoded.
pub fn random_secret<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    // unwrap: without OS randomness no secret can be made, and the process cannot go on.
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}

/// The SHA-256 a secret token is stored as.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// What a refresh token turned out to be.
pub enum Refreshed {
    /// Rotated: the session goes on with this new refresh token.
    Rotated { user: User, session_id: i64, expires_at: DateTime<Utc>, refresh_token: String },
    /// Its session is revoked (now, if the token had been used before).
    Revoked,
    /// Unknown, or its session has ended.
    Invalid,
}

/// Uses a refresh token once. Exactly one of two concurrent uses gets the row; the other
/// finds it used and revokes the session, as any reuse does.
pub fn refresh(conn: &mut PgConnection, token: &str, now: DateTime<Utc>) -> QueryResult<Refreshed> {
    let hash = digest(token);
    let used: Option<i64> = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .returning(refresh_tokens::session_id)
    .get_result(conn)
    .optional()?;
    let Some(session_id) = used else {
        let reused: Option<i64> =
            refresh_tokens::table.find(&hash).select(refresh_tokens::session_id).first(conn).optional()?;
        return Ok(match reused {
            // A used token of an ended session is just unknown now; of a live one, stolen.
            Some(session_id) => match load(conn, session_id)?.map(|(_, state)| state.check(now)) {
                Some(SessionCheck::Expired) | None => Refreshed::Invalid,
                Some(_) => {
                    revoke(conn, &[session_id], now)?;
                    Refreshed::Revoked
                }
            },
            None => Refreshed::Invalid,
        });
    };
    let (user, state) = match load(conn, session_id)? {
        Some(found) => found,
        None => return Ok(Refreshed::Invalid),
    };
    match state.check(now) {
        SessionCheck::Live => {}
        SessionCheck::Revoked => return Ok(Refreshed::Revoked),
        SessionCheck::Expired => return Ok(Refreshed::Invalid),
    }
    if user.disabled {
        revoke(conn, &[session_id], now)?;
        return Ok(Refreshed::Revoked);
    }
    diesel::update(sessions::table.find(session_id)).set(sessions::last_used_at.eq(now)).execute(conn)?;
    let refresh_token = new_refresh_token(conn, session_id, now)?;
    Ok(Refreshed::Rotated { user, session_id, expires_at: state.expires_at, refresh_token })
}

/// A session's lifecycle columns.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct SessionState {
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    Live,
    Revoked,
    Expired,
}

impl SessionState {
    pub fn check(&self, now: DateTime<Utc>) -> SessionCheck {
        match (self.revoked_at, self.expires_at <= now) {
            (Some(_), _) => SessionCheck::Revoked,
            (None, true) => SessionCheck::Expired,
            (None, false) => SessionCheck::Live,
        }
    }
}

/// A session's user and state.
pub fn load(conn: &mut PgConnection, session_id: i64) -> QueryResult<Option<(User, SessionState)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(session_id))
        .select((User::as_select(), (sessions::revoked_at, sessions::expires_at, sessions::last_used_at)))
        .first(conn)
        .optional()
}

/// Notes that a session's token was used, at most once a minute per session.
pub fn touch(
    conn: &mut PgConnection,
    session_id: i64,
    state: &SessionState,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if now - state.last_used_at < Duration::minutes(1) {
        return Ok(());
    }
    diesel::update(sessions::table.find(session_id))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// Revokes these sessions (those still live) and announces it to every instance.
pub fn revoke(conn: &mut PgConnection, session_ids: &[i64], now: DateTime<Utc>) -> QueryResult<Vec<i64>> {
    let revoked: Vec<i64> = diesel::update(
        sessions::table.filter(sessions::id.eq_any(session_ids)).filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .returning(sessions::id)
    .get_results(conn)?;
    announce(conn, &revoked)?;
    Ok(revoked)
}

/// Revokes every live session of a user, but `keep` if given.
pub fn revoke_all_of(
    conn: &mut PgConnection,
    user_id: i64,
    keep: Option<i64>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    let revoked: Vec<i64> = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep.unwrap_or(0))),
    )
    .set(sessions::revoked_at.eq(now))
    .returning(sessions::id)
    .get_results(conn)?;
    announce(conn, &revoked)?;
    Ok(revoked)
}

fn announce(conn: &mut PgConnection, session_ids: &[i64]) -> QueryResult<()> {
    let events: Vec<Event> =
        session_ids.iter().map(|&session_id| Event::SessionRevoked { session_id }).collect();
    events::publish_all(conn, &events)
}

/// A user's live sessions, newest first.
pub fn live_of(conn: &mut PgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(Session::as_select())
        .load(conn)
}

/// Whether `session_id` is a session of `user_id` (live or not).
pub fn belongs_to(conn: &mut PgConnection, session_id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sessions::table.filter(sessions::id.eq(session_id)).filter(sessions::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_session_is_live_until_it_expires_or_is_revoked() {
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        let state = SessionState { revoked_at: None, expires_at: at(100), last_used_at: at(0) };
        assert_eq!(state.check(at(99)), SessionCheck::Live);
        assert_eq!(state.check(at(100)), SessionCheck::Expired);
        let revoked = SessionState { revoked_at: Some(at(50)), ..state };
        assert_eq!(revoked.check(at(60)), SessionCheck::Revoked);
        assert_eq!(revoked.check(at(200)), SessionCheck::Revoked, "revoked wins over expired");
    }

    #[test]
    fn secrets_are_long_random_hex_and_stored_as_sha256() {
        let (a, b) = (random_secret::<32>(), random_secret::<32>());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(digest(&a).len(), 32);
        assert_ne!(digest(&a), a.as_bytes());
    }
}

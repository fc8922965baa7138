//! Logging in starts a session; refresh rotates its tokens; logout and ending a session
//! revoke it.

use reqwest::Method;
use rollcall::domain::user::Role;
use serde_json::json;

use super::{access, login, refresh, refresh_token};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_login_answers_a_long_refresh_token_and_when_the_session_ends() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let answer = login(&app, "teach").await;
    let token = refresh_token(&answer);
    assert!(token.len() >= 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "256 bits: {token}");
    assert_eq!(answer["refresh_expires_in"], 14 * 24 * 3600);
    assert_eq!(answer["expires_in"], 3600);
    // A v1 client that ignores the refresh token just uses the access token.
    app.get("/api/v1/me", access(&answer)).await.ok(200);
}

#[tokio::test]
async fn a_refresh_rotates_both_tokens_and_the_old_refresh_token_stops_working() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let first = login(&app, "teach").await;
    let second = refresh(&app, refresh_token(&first)).await.ok(200).clone();
    assert_ne!(refresh_token(&first), refresh_token(&second));
    assert_eq!(second["user"]["username"], "teach");
    app.get("/api/v1/me", access(&second)).await.ok(200);
    let third = refresh(&app, refresh_token(&second)).await.ok(200).clone();
    app.get("/api/v1/me", access(&third)).await.ok(200);
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let first = login(&app, "teach").await;
    let second = refresh(&app, refresh_token(&first)).await.ok(200).clone();
    // The first token again: only a stolen copy would be used twice.
    refresh(&app, refresh_token(&first)).await.problem(401, "session_revoked");
    app.get("/api/v1/me", access(&second)).await.problem(401, "session_revoked");
    refresh(&app, refresh_token(&second)).await.problem(401, "session_revoked");
    // Another session of the same user is untouched.
    let other = login(&app, "teach").await;
    app.get("/api/v1/me", access(&other)).await.ok(200);
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_let_exactly_one_win_and_revoke_the_session() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let first = login(&app, "teach").await;
    let token = refresh_token(&first).to_owned();
    let (a, b) = tokio::join!(refresh(&app, &token), refresh(&app, &token));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
    let loser = if a.status == 401 { &a } else { &b };
    loser.problem(401, "session_revoked");
    let winner = if a.status == 200 { &a } else { &b };
    app.get("/api/v1/me", access(&winner.body)).await.problem(401, "session_revoked");
}

#[tokio::test]
async fn an_unknown_refresh_token_or_an_ended_session_is_plain_unauthorized() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    refresh(&app, &"ab".repeat(32)).await.problem(401, "unauthorized");
    refresh(&app, "").await.problem(401, "unauthorized");
    let answer = login(&app, "teach").await;
    let renewed = refresh(&app, refresh_token(&answer)).await.ok(200).clone();
    app.advance(14 * 24 * 3600);
    refresh(&app, refresh_token(&renewed)).await.problem(401, "unauthorized");
    // A used token of an ended session is unknown too, not a theft to revoke.
    refresh(&app, refresh_token(&answer)).await.problem(401, "unauthorized");
    app.get("/api/v1/me", access(&renewed)).await.problem(401, "unauthorized");
}

#[tokio::test]
async fn an_access_token_never_outlives_its_session() {
    let mut settings = crate::helpers::settings();
    settings.session_ttl = std::time::Duration::from_secs(600);
    let app = crate::helpers::spawn_app_with(settings).await;
    app.create_user_directly("teach", Role::Teacher).await;
    let answer = login(&app, "teach").await;
    assert_eq!(
        (answer["expires_in"].as_i64(), answer["refresh_expires_in"].as_i64()),
        (Some(600), Some(600))
    );
}

#[tokio::test]
async fn logout_revokes_the_session_and_its_refresh_token() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let answer = login(&app, "teach").await;
    app.send(Method::POST, "/api/v1/auth/logout", Some(access(&answer)), None).await.ok(204);
    app.get("/api/v1/me", access(&answer)).await.problem(401, "session_revoked");
    refresh(&app, refresh_token(&answer)).await.problem(401, "session_revoked");
    app.send(Method::POST, "/api/v1/auth/logout", None, None).await.problem(401, "unauthorized");
}

#[tokio::test]
async fn my_sessions_are_listed_newest_first_and_can_be_ended_one_by_one() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let (_, stranger) = app.create_user_directly("stud", Role::Student).await;
    app.advance(60);
    let older = login(&app, "teach").await;
    app.advance(60);
    let newer = login(&app, "teach").await;
    let listed = app.get("/api/v1/me/sessions", access(&newer)).await.ok(200).clone();
    let listed = listed.as_array().unwrap();
    // The fixture's own session of this user comes last (oldest).
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["current"], false);
    assert!(listed[0]["created_at"].as_str() > listed[1]["created_at"].as_str());
    for field in ["id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"] {
        assert!(listed[0].get(field).is_some(), "Session has `{field}`");
    }
    let older_id = listed[1]["id"].as_i64().unwrap();
    // Someone else's session is not there to end.
    let path = format!("/api/v1/me/sessions/{older_id}");
    app.send(Method::DELETE, &path, Some(&stranger), None).await.problem(404, "not_found");
    app.get("/api/v1/me", access(&older)).await.ok(200);
    // Ending it revokes it; the list no longer shows it.
    app.send(Method::DELETE, &path, Some(access(&newer)), None).await.ok(204);
    app.get("/api/v1/me", access(&older)).await.problem(401, "session_revoked");
    let after = app.get("/api/v1/me/sessions", access(&newer)).await.ok(200).clone();
    assert!(after.as_array().unwrap().iter().all(|s| s["id"] != older_id));
    // Ending the current one is a logout.
    let current = format!("/api/v1/me/sessions/{}", listed[0]["id"]);
    app.send(Method::DELETE, &current, Some(access(&newer)), None).await.ok(204);
    app.get("/api/v1/me", access(&newer)).await.problem(401, "session_revoked");
}

/// A student enrolled in the class, logged in, and the lesson's check-in open.
async fn logged_in_student(
    app: &crate::helpers::TestApp,
    class: &crate::helpers::fixtures::Class,
) -> (i64, serde_json::Value) {
    let (id, _) = app.create_user_directly("pupil", Role::Student).await;
    let enrol = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&enrol, &class.teacher, json!({"usernames": ["pupil"]})).await.ok(200);
    app.open_checkin(class, json!({})).await;
    (id, login(app, "pupil").await)
}

async fn status_of(
    app: &crate::helpers::TestApp,
    class: &crate::helpers::fixtures::Class,
    id: i64,
) -> serde_json::Value {
    let stored = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let records = stored.ok(200)["records"].as_array().unwrap().clone();
    records.into_iter().find(|r| r["student"]["id"] == id).unwrap()["status"].clone()
}

#[tokio::test]
async fn a_check_in_with_a_revoked_session_is_refused_within_a_second() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let (id, answer) = logged_in_student(&app, &class).await;
    app.send(Method::POST, "/api/v1/auth/logout", Some(access(&answer)), None).await.ok(204);
    // The instance learns of the revocation from its event feed: a wrong code shows when.
    let started = std::time::Instant::now();
    loop {
        let attempt = app.post("/api/v1/checkins", access(&answer), json!({"code": "000000"})).await;
        if attempt.status == 401 {
            attempt.problem(401, "session_revoked");
            break;
        }
        attempt.problem(422, "invalid_code");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "still accepted after a second");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let code = app.current_code(&class).await;
    app.post("/api/v1/checkins", access(&answer), json!({"code": code}))
        .await
        .problem(401, "session_revoked");
    assert_eq!(status_of(&app, &class, id).await, "pending", "nothing was stored");
}

#[tokio::test]
async fn without_its_event_feed_an_instance_asks_the_database_about_sessions() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let (id, answer) = logged_in_student(&app, &class).await;
    // As when the listener's connection drops: events may be missed from now on.
    app.hub.set_listener_up(false);
    let replica = app.replica().await;
    replica.send(Method::POST, "/api/v1/auth/logout", Some(access(&answer)), None).await.ok(204);
    let code = app.current_code(&class).await;
    app.post("/api/v1/checkins", access(&answer), json!({"code": code}))
        .await
        .problem(401, "session_revoked");
    assert_eq!(status_of(&app, &class, id).await, "pending", "nothing was stored");
}

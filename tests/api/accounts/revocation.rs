//! A revoked session stops working on every instance at once, open dashboards included.

use std::time::{Duration, Instant};

use reqwest::Method;
use rollcall::domain::user::Role;

use super::{access, login};
use crate::helpers::spawn_app;
use crate::helpers::websocket::{close_code, next_message};

#[tokio::test]
async fn a_logout_on_one_instance_is_refused_on_another_at_once() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let answer = login(&app, "teach").await;
    replica.get("/api/v1/me", access(&answer)).await.ok(200);
    app.send(Method::POST, "/api/v1/auth/logout", Some(access(&answer)), None).await.ok(204);
    replica.get("/api/v1/me", access(&answer)).await.problem(401, "session_revoked");
}

#[tokio::test]
async fn a_revoked_session_closes_its_dashboards_on_every_instance_within_a_second() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let class = app.class("c", 0).await;
    let answer = login(&app, "c.teacher").await;
    let other = login(&app, "c.teacher").await;
    let mut here = app.watch(class.lesson_id, access(&answer)).await;
    let mut there = replica.watch(class.lesson_id, access(&answer)).await;
    let mut unrelated = replica.watch(class.lesson_id, access(&other)).await;
    for socket in [&mut here, &mut there, &mut unrelated] {
        assert_eq!(next_message(socket).await["type"], "snapshot");
    }
    let revoked_at = Instant::now();
    app.send(Method::POST, "/api/v1/auth/logout", Some(access(&answer)), None).await.ok(204);
    assert_eq!(close_code(&mut here).await, Some(1008));
    assert_eq!(close_code(&mut there).await, Some(1008));
    assert!(revoked_at.elapsed() < Duration::from_secs(1), "closed after {:?}", revoked_at.elapsed());
    // Another session's dashboard stays open.
    app.open_checkin(&class, serde_json::json!({})).await;
    assert_eq!(next_message(&mut unrelated).await["type"], "state");
}

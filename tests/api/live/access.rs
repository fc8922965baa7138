//! Who may open the live stream: single-use tickets bound to a lesson, bearer tokens of
//! the lesson's teacher or an admin, and allowed origins only.

use reqwest::Method;
use serde_json::json;

use crate::helpers::websocket::next_message;
use crate::helpers::{TestApp, settings, spawn_app, spawn_app_with};

async fn ticket(app: &TestApp, token: &str, lesson_id: i64) -> String {
    let response = app.post("/api/v1/ws-tickets", token, json!({"lesson_id": lesson_id})).await;
    let body = response.ok(201);
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_ticket_opens_the_stream_once() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let ticket = ticket(&app, &class.teacher, class.lesson_id).await;
    let mut socket =
        app.connect_live(class.lesson_id, &format!("?ticket={ticket}"), &[]).await.expect("the ticket works");
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["lesson"]["id"], class.lesson_id);
    assert_eq!(snapshot["summary"]["enrolled"], 2);
    assert_eq!(snapshot["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.live_refusal(class.lesson_id, &format!("?ticket={ticket}"), &[]).await,
        401,
        "a ticket works once"
    );
}

#[tokio::test]
async fn tickets_are_bound_to_their_lesson_and_expire_after_30_seconds() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let other_lesson = app
        .post(
            &format!("/api/v1/courses/{}/lessons", class.course_id),
            &class.teacher,
            json!({"title": "Other"}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    let for_other = ticket(&app, &class.teacher, other_lesson).await;
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={for_other}"), &[]).await, 401);
    let stale = ticket(&app, &class.teacher, class.lesson_id).await;
    app.advance(30);
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={stale}"), &[]).await, 401);
    let fresh = ticket(&app, &class.teacher, class.lesson_id).await;
    app.advance(29);
    app.connect_live(class.lesson_id, &format!("?ticket={fresh}"), &[]).await.expect("29 s is fine");
}

#[tokio::test]
async fn tickets_and_access_tokens_are_not_interchangeable() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={}", class.teacher), &[]).await, 401);
    let ticket = ticket(&app, &class.teacher, class.lesson_id).await;
    let as_bearer = format!("Bearer {ticket}");
    assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", &as_bearer)]).await, 401);
    app.get("/api/v1/me", &ticket).await.problem(401, "unauthorized");
    // A ticket presented together with someone else's token is refused.
    let other = app.class("o", 0).await;
    let other_bearer = format!("Bearer {}", other.teacher);
    assert_eq!(
        app.live_refusal(class.lesson_id, &format!("?ticket={ticket}"), &[("authorization", &other_bearer)])
            .await,
        401
    );
}

#[tokio::test]
async fn the_stream_is_for_the_lessons_teacher_and_admins_only() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    assert_eq!(app.live_refusal(class.lesson_id, "", &[]).await, 401);
    assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", "Bearer nonsense")]).await, 401);
    for token in [&other.teacher, &class.students[0].token] {
        let bearer = format!("Bearer {token}");
        assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", &bearer)]).await, 403);
        app.post("/api/v1/ws-tickets", token, json!({"lesson_id": class.lesson_id}))
            .await
            .problem(403, "forbidden");
    }
    let teacher = format!("Bearer {}", class.teacher);
    assert_eq!(app.live_refusal(424242, "", &[("authorization", &teacher)]).await, 404);
    app.post("/api/v1/ws-tickets", &class.teacher, json!({"lesson_id": 424242}))
        .await
        .problem(404, "not_found");
    let admin_ticket = ticket(&app, &app.admin_token, class.lesson_id).await;
    app.connect_live(class.lesson_id, &format!("?ticket={admin_ticket}"), &[])
        .await
        .expect("admins may watch");
}

#[tokio::test]
async fn only_allowed_origins_may_open_the_stream() {
    let mut with_origins = settings();
    with_origins.cors_origins = vec!["https://dash.example.edu".into()];
    let app = spawn_app_with(with_origins).await;
    let class = app.class("c", 0).await;
    let bearer = format!("Bearer {}", class.teacher);
    let evil = [("authorization", bearer.as_str()), ("origin", "https://evil.example")];
    assert_eq!(app.live_refusal(class.lesson_id, "", &evil).await, 403);
    let good = [("authorization", bearer.as_str()), ("origin", "https://dash.example.edu")];
    app.connect_live(class.lesson_id, "", &good).await.expect("an allowed origin connects");
}

#[tokio::test]
async fn a_plain_request_is_authenticated_then_checked_then_told_to_upgrade() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let live = format!("/api/v1/lessons/{}/checkin/live", class.lesson_id);
    // No credentials: 401 before anything else is looked at, even for a missing lesson.
    app.send(Method::GET, &live, None, None).await.problem(401, "unauthorized");
    app.send(Method::GET, "/api/v1/lessons/424242/checkin/live", None, None)
        .await
        .problem(401, "unauthorized");
    // Credentials, but not this lesson's staff, or no such lesson: 403 and 404.
    app.get(&live, &class.students[0].token).await.problem(403, "forbidden");
    app.get("/api/v1/lessons/424242/checkin/live", &class.teacher).await.problem(404, "not_found");
    // The lesson's teacher without an upgrade: 426, saying which protocol to upgrade to.
    let plain = app.get(&live, &class.teacher).await;
    plain.problem(426, "upgrade_required");
    assert_eq!(plain.headers.get("upgrade").and_then(|v| v.to_str().ok()), Some("websocket"));
}

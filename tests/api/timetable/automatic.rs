//! Automatic check-in: derived from the clock, seen open by every reader on every instance
//! from `starts_at + open_offset_minutes`, with no job having run.

use reqwest::Method;
use serde_json::{Value, json};

use super::lesson;
use crate::helpers::TestApp;
use crate::helpers::fixtures::Class;
use crate::helpers::spawn_app;
use crate::helpers::websocket::next_message;

/// A lesson starting at 08:10 (the test clock starts at 08:00) whose check-in opens by
/// itself five minutes early, for ten minutes.
async fn automatic(app: &TestApp, class: &Class) -> i64 {
    let body = json!({"title": "Auto", "starts_at": "2026-11-25T08:10:00Z",
                      "auto_checkin": {"open_offset_minutes": -5, "duration_seconds": 600}});
    let created =
        app.post(&format!("/api/v1/courses/{}/lessons", class.course_id), &class.teacher, body).await;
    created.ok(201)["id"].as_i64().unwrap()
}

fn state(lesson: &Value) -> &str {
    lesson["checkin"]["state"].as_str().unwrap()
}

#[tokio::test]
async fn every_reader_sees_the_lesson_open_at_its_time() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let id = automatic(&app, &class).await;
    let student = &class.students[0];
    let code_path = format!("/api/v1/lessons/{id}/checkin/code");

    // Before its time: not started for everyone, no code, and no check-in.
    assert_eq!(state(&lesson(&app, &class.teacher, id).await), "not_started");
    assert_eq!(lesson(&app, &student.token, id).await["my_status"], "not_started");
    app.get(&code_path, &class.teacher).await.problem(409, "checkin_not_open");

    app.advance(300);
    let teacher_view = lesson(&app, &class.teacher, id).await;
    assert_eq!(state(&teacher_view), "open");
    assert_eq!(teacher_view["checkin"]["opened_at"], "2026-11-25T08:05:00Z");
    assert_eq!(teacher_view["checkin"]["closes_at"], "2026-11-25T08:15:00Z");
    assert_eq!(lesson(&app, &student.token, id).await["my_status"], "pending");
    let replica = app.replica().await;
    assert_eq!(state(&lesson(&replica, &class.teacher, id).await), "open", "on every instance");
    let code = app.get(&code_path, &class.teacher).await.ok(200)["code"].as_str().unwrap().to_owned();
    let checked_in = replica.check_in(student, &code).await;
    assert_eq!(checked_in.ok(201)["status"], "present");

    app.advance(600);
    assert_eq!(state(&lesson(&app, &class.teacher, id).await), "closed");
    let results = app.get(&format!("/api/v1/lessons/{id}/attendance"), &class.teacher).await;
    let statuses: Vec<&str> = results.ok(200)["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["present", "absent"]);
}

#[tokio::test]
async fn a_connected_dashboard_sees_it_open_and_gets_its_codes() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let id = automatic(&app, &class).await;
    let mut socket = app.watch(id, &class.teacher).await;
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["lesson"]["checkin"]["state"], "not_started");
    app.advance(300);
    let opened = next_message(&mut socket).await;
    assert_eq!((opened["type"].as_str(), opened["checkin"]["state"].as_str()), (Some("state"), Some("open")));
    let frame = next_message(&mut socket).await;
    assert_eq!(frame["type"], "code");
    assert_eq!(frame["valid_from"], "2026-11-25T08:05:00Z");
    let code = app.get(&format!("/api/v1/lessons/{id}/checkin/code"), &class.teacher).await;
    assert_eq!(frame["code"], code.ok(200)["code"]);
    app.advance(10);
    assert_eq!(next_message(&mut socket).await["valid_from"], "2026-11-25T08:05:10Z");
}

#[tokio::test]
async fn opening_early_by_hand_replaces_the_automatic_window_and_closing_by_hand_works() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let early = automatic(&app, &class).await;
    let open = |id: i64| format!("/api/v1/lessons/{id}/checkin/open");
    let close = |id: i64| format!("/api/v1/lessons/{id}/checkin/close");
    app.post(&open(early), &class.teacher, json!({"duration_seconds": 60})).await.ok(200);
    app.advance(360);
    let after = lesson(&app, &class.teacher, early).await;
    assert_eq!(state(&after), "closed", "no automatic window follows an earlier opening");
    assert_eq!(after["checkin"]["opened_at"], "2026-11-25T08:00:00Z");

    // 08:06 now; this one opens at 08:15.
    let body = json!({"title": "Auto 2", "starts_at": "2026-11-25T08:20:00Z", "auto_checkin": {"open_offset_minutes": -5}});
    let later = app.post(&format!("/api/v1/courses/{}/lessons", class.course_id), &class.teacher, body).await;
    let later = later.ok(201)["id"].as_i64().unwrap();
    app.post(&close(later), &class.teacher, json!({})).await.problem(409, "checkin_not_open");
    app.advance(540);
    assert_eq!(state(&lesson(&app, &class.teacher, later).await), "open");
    app.post(&open(later), &class.teacher, json!({})).await.problem(409, "checkin_already_open");
    let closed = app.send(Method::POST, &close(later), Some(&class.teacher), None).await;
    assert_eq!(closed.ok(200)["state"], "closed");
    // ...and it can be opened again by hand.
    app.post(&open(later), &class.teacher, json!({})).await.ok(200);
}

#[tokio::test]
async fn editing_moves_a_planned_window_but_never_one_that_opened() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let id = automatic(&app, &class).await;
    let path = format!("/api/v1/lessons/{id}");
    let patch = |body| app.send(Method::PATCH, &path, Some(&class.teacher), Some(body));
    patch(json!({"starts_at": "2026-11-25T08:20:00Z"})).await.ok(200);
    app.advance(360);
    assert_eq!(state(&lesson(&app, &class.teacher, id).await), "not_started", "moved to 08:15");
    app.advance(540);
    let opened = lesson(&app, &class.teacher, id).await;
    assert_eq!(opened["checkin"]["opened_at"], "2026-11-25T08:15:00Z");
    let edited =
        patch(json!({"starts_at": "2026-11-25T09:00:00Z", "auto_checkin": {"open_offset_minutes": 0}})).await;
    let edited = edited.ok(200);
    assert_eq!(edited["starts_at"], "2026-11-25T09:00:00Z");
    assert_eq!(edited["checkin"]["opened_at"], "2026-11-25T08:15:00Z", "an opened window stays");
    assert_eq!(edited["checkin"]["state"], "open");
}

#[tokio::test]
async fn an_automatic_window_wholly_in_the_past_is_a_lesson_held() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let body = json!({"title": "Yesterday", "starts_at": "2026-11-24T08:00:00Z", "auto_checkin": {}});
    let created =
        app.post(&format!("/api/v1/courses/{}/lessons", class.course_id), &class.teacher, body).await;
    let created = created.ok(201);
    assert_eq!(created["checkin"]["state"], "closed");
    assert_eq!(created["checkin"]["closed_at"], "2026-11-24T08:10:00Z");
    let id = created["id"].as_i64().unwrap();
    // Held before the class was enrolled (this morning), so it does not count for them.
    assert_eq!(lesson(&app, &class.students[0].token, id).await["my_status"], Value::Null);
    // Turning automatic check-in off does not undo a window that opened.
    let path = format!("/api/v1/lessons/{id}");
    let off = app.send(Method::PATCH, &path, Some(&class.teacher), Some(json!({"auto_checkin": null}))).await;
    assert_eq!(off.ok(200)["checkin"]["state"], "closed");
}

#[tokio::test]
async fn a_lesson_cancelled_at_its_automatic_time_was_not_held_when_restored() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let id = automatic(&app, &class).await;
    let path = format!("/api/v1/lessons/{id}");
    let patch = |body| app.send(Method::PATCH, &path, Some(&class.teacher), Some(body));
    patch(json!({"cancelled": true})).await.ok(200);
    app.advance(1200);
    let restored = patch(json!({"cancelled": false})).await;
    assert_eq!(restored.ok(200)["checkin"]["state"], "not_started", "its time passed while it was cancelled");
    assert_eq!(lesson(&app, &class.students[0].token, id).await["my_status"], "not_started");
    // Restored before its time, it opens by itself again.
    let body = json!({"title": "Later", "starts_at": "2026-11-25T08:40:00Z", "auto_checkin": {"open_offset_minutes": -5}});
    let created =
        app.post(&format!("/api/v1/courses/{}/lessons", class.course_id), &class.teacher, body).await;
    let later = created.ok(201)["id"].as_i64().unwrap();
    let later_path = format!("/api/v1/lessons/{later}");
    app.send(Method::PATCH, &later_path, Some(&class.teacher), Some(json!({"cancelled": true})))
        .await
        .ok(200);
    app.send(Method::PATCH, &later_path, Some(&class.teacher), Some(json!({"cancelled": false})))
        .await
        .ok(200);
    app.advance(900);
    assert_eq!(state(&lesson(&app, &class.teacher, later).await), "open");
}

//! Editing, cancelling and deleting lessons, and lessons with an end.

use reqwest::Method;
use serde_json::{Value, json};

use super::{invalid, lesson_count};
use crate::helpers::TestApp;
use crate::helpers::spawn_app;

async fn patch(app: &TestApp, token: &str, lesson_id: i64, body: Value) -> crate::helpers::http::Response {
    app.send(Method::PATCH, &format!("/api/v1/lessons/{lesson_id}"), Some(token), Some(body)).await
}

#[tokio::test]
async fn a_lesson_takes_an_end_and_refuses_one_before_its_start() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    let created = app
        .post(
            &path,
            &class.teacher,
            json!({"title": "L", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T10:30:00Z"}),
        )
        .await;
    let created = created.ok(201);
    assert_eq!(
        (created["ends_at"].as_str(), created["cancelled"].as_bool()),
        (Some("2026-12-01T10:30:00Z"), Some(false))
    );
    assert_eq!(created["auto_checkin"], Value::Null);
    let open_ended = app.post(&path, &class.teacher, json!({"title": "L", "ends_at": null})).await;
    assert_eq!(open_ended.ok(201)["ends_at"], Value::Null, "null is the same as leaving it out");
    let cases = [
        (
            json!({"title": "L", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T09:00:00Z"}),
            vec!["ends_at"],
        ),
        (json!({"title": "L", "ends_at": "2026-12-01T09:00:00Z"}), vec!["ends_at"]),
        (json!({"title": "L", "auto_checkin": {}}), vec!["auto_checkin"]),
        (
            json!({"title": "L", "starts_at": "2026-12-01T09:00:00Z", "auto_checkin": {"duration_seconds": 29}}),
            vec!["auto_checkin.duration_seconds"],
        ),
    ];
    for (body, fields) in cases {
        invalid(&app.post(&path, &class.teacher, body).await, &fields);
    }
    assert_eq!(lesson_count(&app, class.course_id), 3);
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_a_refused_one_nothing() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let id = class.lesson_id;
    let renamed = patch(&app, &class.teacher, id, json!({"title": "Week 1: Welcome (room 2)"})).await;
    assert_eq!(renamed.ok(200)["title"], "Week 1: Welcome (room 2)");
    let timed = patch(
        &app,
        &class.teacher,
        id,
        json!({"starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T10:00:00Z",
        "auto_checkin": {"open_offset_minutes": 0}}),
    )
    .await;
    let timed = timed.ok(200).clone();
    assert_eq!(timed["title"], "Week 1: Welcome (room 2)");
    assert_eq!(timed["auto_checkin"]["open_offset_minutes"], 0);

    invalid(&patch(&app, &class.teacher, id, json!({"starts_at": null})).await, &["starts_at"]);
    invalid(&patch(&app, &class.teacher, id, json!({"ends_at": "2026-12-01T08:00:00Z"})).await, &["ends_at"]);
    invalid(
        &patch(&app, &class.teacher, id, json!({"title": "", "auto_checkin": {"rotation_seconds": 1}})).await,
        &["title", "auto_checkin.rotation_seconds"],
    );
    let unchanged = app.get(&format!("/api/v1/lessons/{id}"), &class.teacher).await;
    assert_eq!(unchanged.ok(200)["ends_at"], timed["ends_at"]);
    assert_eq!(unchanged.ok(200)["auto_checkin"], timed["auto_checkin"]);

    let off =
        patch(&app, &class.teacher, id, json!({"auto_checkin": null, "starts_at": null, "ends_at": null}))
            .await;
    let off = off.ok(200);
    assert_eq!((off["auto_checkin"].clone(), off["starts_at"].clone()), (Value::Null, Value::Null));
    patch(&app, &app.admin_token, id, json!({"title": "x"})).await.problem(403, "forbidden");
    patch(&app, &class.teacher, 999_999, json!({"title": "x"})).await.problem(404, "not_found");
}

#[tokio::test]
async fn only_a_lesson_never_opened_can_be_deleted() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    // A planned automatic window that has not opened does not count as opened.
    let planned = app
        .post(
            &path,
            &class.teacher,
            json!({"title": "Later", "starts_at": "2026-12-01T09:00:00Z", "auto_checkin": {}}),
        )
        .await;
    let planned = planned.ok(201)["id"].as_i64().unwrap();
    let delete = |id: i64| {
        let (app, teacher) = (&app, class.teacher.clone());
        async move { app.send(Method::DELETE, &format!("/api/v1/lessons/{id}"), Some(&teacher), None).await }
    };
    assert_eq!(delete(planned).await.status, 204);
    app.get(&format!("/api/v1/lessons/{planned}"), &class.teacher).await.problem(404, "not_found");

    app.open_checkin(&class, json!({})).await;
    app.send(
        Method::POST,
        &format!("/api/v1/lessons/{}/checkin/close", class.lesson_id),
        Some(&class.teacher),
        None,
    )
    .await
    .ok(200);
    delete(class.lesson_id).await.problem(409, "lesson_has_attendance");
    assert_eq!(lesson_count(&app, class.course_id), 1);
    // A teacher's mark before any opening is attendance too.
    let marked =
        app.post(&path, &class.teacher, json!({"title": "Marked"})).await.ok(201)["id"].as_i64().unwrap();
    let mark = format!("/api/v1/lessons/{marked}/attendance/{}", class.students[0].id);
    app.send(Method::PUT, &mark, Some(&class.teacher), Some(json!({"status": "excused"}))).await.ok(200);
    delete(marked).await.problem(409, "lesson_has_attendance");
}

#[tokio::test]
async fn a_cancelled_lesson_closes_cannot_open_and_counts_nowhere() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let student = &class.students[0];
    app.open_checkin(&class, json!({})).await;
    let cancelled = patch(&app, &class.teacher, class.lesson_id, json!({"cancelled": true})).await;
    let cancelled = cancelled.ok(200);
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["checkin"]["state"], "closed", "the open window closed");
    assert_eq!(cancelled["checkin"]["closed_at"], "2026-11-25T08:00:00Z");
    let open = format!("/api/v1/lessons/{}/checkin/open", class.lesson_id);
    app.post(&open, &class.teacher, json!({})).await.problem(409, "lesson_cancelled");

    let lessons = app.get(&format!("/api/v1/courses/{}/lessons", class.course_id), &student.token).await;
    let listed = &lessons.ok(200)[0];
    assert_eq!((listed["cancelled"].as_bool(), listed["my_status"].clone()), (Some(true), Value::Null));
    assert_eq!(app.get("/api/v1/me/attendance", &student.token).await.ok(200), &json!([]));
    let report = app.get(&format!("/api/v1/courses/{}/attendance", class.course_id), &class.teacher).await;
    let row = &report.ok(200)[0];
    assert_eq!((row["lessons_counted"].as_i64(), row["absent"].as_i64()), (Some(0), Some(0)));

    // Restored, it can be opened again.
    patch(&app, &class.teacher, class.lesson_id, json!({"cancelled": false})).await.ok(200);
    app.post(&open, &class.teacher, json!({})).await.ok(200);
}

#[tokio::test]
async fn cancelling_an_open_lesson_tells_the_dashboard() {
    use crate::helpers::websocket::next_message;
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    patch(&app, &class.teacher, class.lesson_id, json!({"cancelled": true})).await.ok(200);
    loop {
        let message = next_message(&mut socket).await;
        if message["type"] == "state" && message["checkin"]["state"] == "closed" {
            break;
        }
    }
}

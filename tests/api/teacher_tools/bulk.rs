//! Bulk marking: never overwrites without being asked, audits each change, tells the
//! dashboards, and refuses a bad list whole.

use serde_json::{Value, json};

use super::{another_lesson, rows};
use crate::helpers::spawn_app;
use crate::helpers::websocket::next_message;

#[tokio::test]
async fn marking_everyone_skips_existing_records_unless_asked() {
    let app = spawn_app().await;
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    let path = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    let audits = rows(&app, "attendance_audit");

    let marked = app.post(&path, &class.teacher, json!({"status": "excused", "note": "field trip"})).await;
    let marked = marked.ok(200);
    assert_eq!(marked["skipped"], 1, "the one who checked in keeps their record");
    let changed: Vec<(i64, &str)> = marked["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["student"]["id"].as_i64().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(changed, [(class.students[1].id, "excused"), (class.students[2].id, "excused")]);
    assert_eq!(marked["changed"][0]["note"], "field trip");
    assert_eq!(rows(&app, "attendance_audit"), audits + 2, "each change audited");

    let again = app.post(&path, &class.teacher, json!({"status": "absent", "overwrite": true})).await;
    let again = again.ok(200);
    assert_eq!((again["changed"].as_array().unwrap().len(), again["skipped"].as_i64()), (3, Some(0)));
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    assert!(results.ok(200)["records"].as_array().unwrap().iter().all(|r| r["status"] == "absent"));
    // A check-in's time survives a teacher's change.
    assert_eq!(results.ok(200)["records"][0]["checked_in_at"], "2026-11-25T08:00:00Z");
}

#[tokio::test]
async fn a_bad_list_is_refused_whole_and_changes_nothing() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let other = app.class("o", 1).await;
    let path = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    let (records, audits) = (rows(&app, "attendance"), rows(&app, "attendance_audit"));
    let bad = [
        json!({"status": "present", "student_ids": []}),
        json!({"status": "present", "student_ids": [class.students[0].id, other.students[0].id]}),
        json!({"status": "present", "student_ids": [class.students[0].id], "note": "x".repeat(1001)}),
    ];
    for body in bad {
        let refused = app.post(&path, &class.teacher, body).await;
        assert_eq!(refused.problem(422, "validation_failed")["errors"].as_array().unwrap().len(), 1);
    }
    app.post(&path, &class.teacher, json!({"status": "sometimes"})).await.problem(400, "bad_request");
    app.post(&path, &other.teacher, json!({"status": "present"})).await.problem(403, "forbidden");
    app.post(&path, &app.admin_token, json!({"status": "present"})).await.problem(403, "forbidden");
    assert_eq!((rows(&app, "attendance"), rows(&app, "attendance_audit")), (records, audits));
}

#[tokio::test]
async fn a_named_student_who_joined_later_can_be_marked_and_then_counts() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    app.advance(60);
    let (late, token) = app.create_user_directly("late.joiner", rollcall::domain::user::Role::Student).await;
    let enrol = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&enrol, &class.teacher, json!({"usernames": ["late.joiner"]})).await.ok(200);
    // Everyone the lesson counts for leaves the late joiner out...
    let path = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    let all = app.post(&path, &class.teacher, json!({"status": "excused"})).await;
    assert_eq!(all.ok(200)["changed"].as_array().unwrap().len(), 1);
    // ...and naming them marks them, which makes the lesson count for them.
    let named = app.post(&path, &class.teacher, json!({"status": "excused", "student_ids": [late]})).await;
    assert_eq!(named.ok(200)["changed"][0]["student"]["id"], late);
    let lesson = app.get(&format!("/api/v1/lessons/{}", class.lesson_id), &token).await;
    assert_eq!(lesson.ok(200)["my_status"], "excused");
    // A lesson never opened: everyone enrolled now.
    let fresh = another_lesson(&app, &class, "Week 2").await;
    let fresh_path = format!("/api/v1/lessons/{fresh}/attendance/bulk");
    let marked = app.post(&fresh_path, &class.teacher, json!({"status": "excused"})).await;
    assert_eq!(marked.ok(200)["changed"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn each_changed_record_reaches_the_dashboard_as_a_checkin_event() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    let path = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    app.post(&path, &class.teacher, json!({"status": "excused"})).await.ok(200);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message: Value = next_message(&mut socket).await;
        if message["type"] == "checkin" {
            assert_eq!(message["record"]["status"], "excused");
            seen.push(message["record"]["student"]["id"].as_i64().unwrap());
        }
    }
    seen.sort();
    assert_eq!(seen, [class.students[0].id, class.students[1].id]);
}

#[tokio::test]
async fn other_methods_on_the_bulk_route_are_405_not_a_bad_student_id() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    let put =
        app.send(reqwest::Method::PUT, &path, Some(&class.teacher), Some(json!({"status": "present"}))).await;
    put.problem(405, "method_not_allowed");
    assert_eq!(put.headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
}

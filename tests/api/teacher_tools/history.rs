//! A record's history: the code check-in and every teacher change, oldest first.

use serde_json::json;

use super::put_status;
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_history_lists_the_check_in_and_every_change_oldest_first() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let student = &class.students[0];
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(student, &code).await.ok(201);
    app.advance(60);
    put_status(&app, &class, class.lesson_id, student.id, json!({"status": "excused", "note": "doctor"}))
        .await;
    app.advance(60);
    // A bulk change that keeps the status is in the history too.
    let bulk = format!("/api/v1/lessons/{}/attendance/bulk", class.lesson_id);
    let marked = app
        .post(
            &bulk,
            &class.teacher,
            json!({"status": "excused", "student_ids": [student.id], "overwrite": true}),
        )
        .await;
    assert_eq!(marked.ok(200)["changed"].as_array().unwrap().len(), 1);

    let path = format!("/api/v1/lessons/{}/attendance/{}/history", class.lesson_id, student.id);
    let history = app.get(&path, &class.teacher).await;
    let history = history.ok(200).as_array().unwrap().clone();
    let steps: Vec<(&str, &str, &str, &str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["at"].as_str().unwrap(),
                h["by"]["username"].as_str().unwrap(),
                h["from"].as_str().unwrap(),
                h["to"].as_str().unwrap(),
                h["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("2026-11-25T08:00:00Z", "c.s000", "pending", "present", "code"),
            ("2026-11-25T08:01:00Z", "c.teacher", "present", "excused", "manual"),
            ("2026-11-25T08:02:00Z", "c.teacher", "excused", "excused", "manual"),
        ]
    );
    assert_eq!(history[1]["note"], "doctor");
    assert_eq!(history[0]["note"], serde_json::Value::Null);
    let paged = app.get(&format!("{path}?limit=1&offset=1"), &class.teacher).await;
    assert_eq!(paged.ok(200).as_array().unwrap().len(), 1);
    assert_eq!(paged.ok(200)[0]["at"], "2026-11-25T08:01:00Z");

    // Admins read it; another teacher and students do not.
    app.get(&path, &app.admin_token).await.ok(200);
    app.get(&path, &student.token).await.problem(403, "forbidden");
    let other = app.class("o", 0).await;
    app.get(&path, &other.teacher).await.problem(403, "forbidden");
}

#[tokio::test]
async fn a_student_the_lesson_does_not_list_has_no_history() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    app.advance(60);
    // Enrolled after the lesson was first opened, without a record: not listed.
    let (late, _) = app.create_user_directly("late.joiner", rollcall::domain::user::Role::Student).await;
    let enrol = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&enrol, &class.teacher, json!({"usernames": ["late.joiner"]})).await.ok(200);
    let path = |id: i64| format!("/api/v1/lessons/{}/attendance/{id}/history", class.lesson_id);
    app.get(&path(late), &class.teacher).await.problem(404, "not_found");
    let listed = app.get(&path(class.students[0].id), &class.teacher).await;
    assert_eq!(listed.ok(200), &json!([]), "listed, pending, nothing happened yet");
    app.get(&path(999_999), &class.teacher).await.problem(404, "not_found");
}

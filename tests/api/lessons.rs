use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn lessons_are_listed_by_start_time_with_unscheduled_ones_last() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    app.post(&path, &class.teacher, json!({"title": "Late", "starts_at": "2026-12-02T09:00:00Z"}))
        .await
        .ok(201);
    let early = app
        .post(&path, &class.teacher, json!({"title": "Early", "starts_at": "2026-12-01T09:00:00+01:00"}))
        .await;
    assert_eq!(early.ok(201)["starts_at"], "2026-12-01T08:00:00Z", "stored and returned in UTC");
    let titles: Vec<String> = app
        .get(&path, &class.teacher)
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Early", "Late", "Lesson 1"]);
}

#[tokio::test]
async fn a_new_lesson_has_not_started_and_students_see_their_status() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let path = format!("/api/v1/lessons/{}", class.lesson_id);
    let teacher_view = app.get(&path, &class.teacher).await;
    let lesson = teacher_view.ok(200);
    assert_eq!(lesson["checkin"]["state"], "not_started");
    assert_eq!(lesson["checkin"]["rotation_seconds"], serde_json::Value::Null);
    assert!(lesson.get("my_status").is_none(), "teachers have no status");
    let student_view = app.get(&path, &class.students[0].token).await;
    assert_eq!(student_view.ok(200)["my_status"], "not_started");
}

#[tokio::test]
async fn lesson_input_is_validated() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    app.post(&path, &class.teacher, json!({"title": ""})).await.problem(422, "validation_failed");
    app.post(&path, &class.teacher, json!({"title": "x".repeat(201)}))
        .await
        .problem(422, "validation_failed");
    app.post(&path, &class.teacher, json!({"title": "T", "starts_at": "tomorrow"}))
        .await
        .problem(400, "bad_request");
}

#[tokio::test]
async fn only_the_course_teacher_creates_lessons_and_members_read_them() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 1).await;
    let create = format!("/api/v1/courses/{}/lessons", class.course_id);
    for token in [&other.teacher, &class.students[0].token, &app.admin_token] {
        app.post(&create, token, json!({"title": "Nope"})).await.problem(403, "forbidden");
    }
    let lesson = format!("/api/v1/lessons/{}", class.lesson_id);
    for token in [&class.teacher, &class.students[0].token, &app.admin_token] {
        app.get(&lesson, token).await.ok(200);
        app.get(&create, token).await.ok(200);
    }
    for token in [&other.teacher, &other.students[0].token] {
        app.get(&lesson, token).await.problem(403, "forbidden");
        app.get(&create, token).await.problem(403, "forbidden");
    }
    app.get("/api/v1/lessons/424242", &class.teacher).await.problem(404, "not_found");
    app.post("/api/v1/courses/424242/lessons", &class.teacher, json!({"title": "x"}))
        .await
        .problem(404, "not_found");
}

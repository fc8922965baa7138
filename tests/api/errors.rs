//! Bad requests of every shape answer problem+json 4xx, never 500 or actix's plain text.

use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let app = spawn_app().await;
    let response = app.post_raw("/api/v1/auth/login", "application/json", "{\"username\": ").await;
    response.problem(400, "bad_request");
}

#[tokio::test]
async fn a_wrong_type_is_a_bad_request() {
    let app = spawn_app().await;
    let response = app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": 5, "password": "x"})),
        )
        .await;
    response.problem(400, "bad_request");
}

#[tokio::test]
async fn a_nul_character_that_reaches_the_database_is_a_bad_request_not_a_500() {
    let app = spawn_app().await;
    let response = app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "a\u{0}b", "password": "x"})),
        )
        .await;
    response.problem(400, "bad_request");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_unsupported_media_type() {
    let app = spawn_app().await;
    let response = app.post_raw("/api/v1/auth/login", "text/plain", "username=a&password=b").await;
    response.problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_64_kib_is_too_large() {
    let app = spawn_app().await;
    let huge = json!({"username": "x".repeat(70 * 1024), "password": "y"});
    let response = app.send(reqwest::Method::POST, "/api/v1/auth/login", None, Some(huge)).await;
    response.problem(413, "payload_too_large");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/nothing/here", &app.admin_token).await;
    response.problem(404, "not_found");
    let outside = app.get("/wp-admin", &app.admin_token).await;
    outside.problem(404, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_that_lists_the_allowed_ones() {
    let app = spawn_app().await;
    let response = app.send(reqwest::Method::DELETE, "/api/v1/me", Some(&app.admin_token), None).await;
    response.problem(405, "method_not_allowed");
    assert_eq!(response.headers["allow"], "GET, PATCH");
    let login = app.send(reqwest::Method::GET, "/api/v1/auth/login", None, None).await;
    login.problem(405, "method_not_allowed");
}

#[tokio::test]
async fn a_body_must_be_a_json_object_even_when_every_field_is_optional() {
    let app = spawn_app().await;
    let class = app.class("arr", 1).await;
    let student = &class.students[0].token;
    for body in [json!([null, null]), json!(["New Name"]), json!("New Name"), json!(null)] {
        let response =
            app.send(reqwest::Method::PATCH, "/api/v1/me", Some(student), Some(body.clone())).await;
        response.problem(400, "bad_request");
    }
    let me = app.get("/api/v1/me", student).await.ok(200).clone();
    assert_eq!(me["real_name"], "Real arr.s000", "nothing changed: {me}");
}

#[tokio::test]
async fn an_integer_written_with_a_zero_fraction_is_an_integer() {
    let app = spawn_app().await;
    let class = app.class("flt", 0).await;
    let path = format!("/api/v1/lessons/{}/checkin/open", class.lesson_id);
    let fraction = app.post(&path, &class.teacher, json!({"rotation_seconds": 12.5})).await;
    fraction.problem(400, "bad_request");
    let opened = app.post(&path, &class.teacher, json!({"rotation_seconds": 12.0, "code_length": 6.0})).await;
    assert_eq!(opened.ok(200)["rotation_seconds"], 12);
}

#[tokio::test]
async fn a_lesson_start_may_be_left_out_but_not_sent_as_null_or_empty() {
    let app = spawn_app().await;
    let class = app.class("sta", 0).await;
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    for starts_at in [json!(null), json!(""), json!("tomorrow")] {
        let response = app.post(&path, &class.teacher, json!({"title": "T", "starts_at": starts_at})).await;
        response.problem(400, "bad_request");
    }
    let created = app.post(&path, &class.teacher, json!({"title": "T"})).await.ok(201).clone();
    assert_eq!(created["starts_at"], serde_json::Value::Null);
    let lessons = app.get(&path, &class.teacher).await.ok(200).clone();
    assert_eq!(lessons.as_array().unwrap().len(), 2, "the class lesson and the one valid create: {lessons}");
}

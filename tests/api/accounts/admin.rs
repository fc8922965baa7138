//! An administrator reads and changes accounts, and disables them.

use reqwest::Method;
use rollcall::domain::user::Role;
use serde_json::{Value, json};

use super::{access, login, refresh, refresh_token};
use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn patch(app: &TestApp, id: i64, body: Value) -> crate::helpers::http::Response {
    app.send(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&app.admin_token), Some(body)).await
}

#[tokio::test]
async fn an_admin_reads_a_user_with_its_account_state() {
    let app = spawn_app().await;
    let (id, token) = app.create_user_directly("stud", Role::Student).await;
    let user = app.get(&format!("/api/v1/users/{id}"), &app.admin_token).await.ok(200).clone();
    assert_eq!(
        (user["username"].as_str(), user["disabled"].as_bool(), user["activation_pending"].as_bool()),
        (Some("stud"), Some(false), Some(false))
    );
    app.get(&format!("/api/v1/users/{id}"), &token).await.problem(403, "forbidden");
    app.get("/api/v1/users/424242", &app.admin_token).await.problem(404, "not_found");
}

#[tokio::test]
async fn an_admin_changes_names_and_student_numbers_but_never_roles() {
    let app = spawn_app().await;
    let (student, _) = app.create_user_directly("stud", Role::Student).await;
    let (teacher, _) = app.create_user_directly("teach", Role::Teacher).await;
    let renamed = patch(&app, student, json!({"real_name": "Ada King", "student_number": "s-9"})).await;
    assert_eq!(
        (renamed.ok(200)["real_name"].as_str(), renamed.body["student_number"].as_str()),
        (Some("Ada King"), Some("s-9"))
    );
    let cleared = patch(&app, student, json!({"student_number": null})).await;
    assert_eq!(cleared.ok(200)["student_number"], Value::Null);
    let role = patch(&app, student, json!({"role": "teacher"})).await;
    assert_eq!(role.problem(422, "validation_failed")["errors"][0]["field"], "role");
    let number = patch(&app, teacher, json!({"student_number": "s-1"})).await;
    assert_eq!(number.problem(422, "validation_failed")["errors"][0]["field"], "student_number");
    let cleared = patch(&app, teacher, json!({"student_number": null})).await;
    assert_eq!(cleared.problem(422, "validation_failed")["errors"][0]["field"], "student_number");
    patch(&app, student, json!({"real_name": 7})).await.problem(400, "bad_request");
    patch(&app, 424242, json!({"real_name": "Nobody"})).await.problem(404, "not_found");
    // Nothing refused was written.
    let user = app.get(&format!("/api/v1/users/{teacher}"), &app.admin_token).await.ok(200).clone();
    assert_eq!((user["role"].as_str(), user["student_number"].clone()), (Some("teacher"), Value::Null));
    let user = app.get(&format!("/api/v1/users/{student}"), &app.admin_token).await.ok(200).clone();
    assert_eq!((user["role"].as_str(), user["real_name"].as_str()), (Some("student"), Some("Ada King")));
}

#[tokio::test]
async fn a_student_number_held_by_someone_else_is_a_conflict() {
    let app = spawn_app().await;
    let (a, _) = app.create_user_directly("aaa", Role::Student).await;
    app.create_user_directly("bbb", Role::Student).await;
    patch(&app, a, json!({"student_number": "n-bbb"})).await.problem(409, "conflict");
}

#[tokio::test]
async fn disabling_a_user_revokes_their_sessions_and_refuses_their_right_password() {
    let app = spawn_app().await;
    let (id, fixture_token) = app.create_user_directly("teach", Role::Teacher).await;
    let answer = login(&app, "teach").await;
    let disabled = patch(&app, id, json!({"disabled": true})).await;
    assert_eq!(disabled.ok(200)["disabled"], true);
    app.get("/api/v1/me", access(&answer)).await.problem(401, "session_revoked");
    app.get("/api/v1/me", &fixture_token).await.problem(401, "session_revoked");
    refresh(&app, refresh_token(&answer)).await.problem(401, "session_revoked");
    app.login("teach", PASSWORD).await.problem(403, "account_disabled");
    app.login("teach", "wrong password").await.problem(401, "invalid_credentials");
    patch(&app, id, json!({"disabled": false})).await.ok(200);
    app.login("teach", PASSWORD).await.ok(200);
}

#[tokio::test]
async fn an_admin_cannot_disable_themself() {
    let app = spawn_app().await;
    let me = app.get("/api/v1/me", &app.admin_token).await.ok(200)["id"].as_i64().unwrap();
    patch(&app, me, json!({"disabled": true})).await.problem(409, "conflict");
    app.get("/api/v1/me", &app.admin_token).await.ok(200);
}

#[tokio::test]
async fn a_disabled_user_cannot_activate_either() {
    let app = spawn_app().await;
    let (id, _) = app.create_user_directly("stud", Role::Student).await;
    let code = app.post(&format!("/api/v1/users/{id}/activation"), &app.admin_token, json!({})).await.ok(201)
        ["activation_code"]
        .clone();
    patch(&app, id, json!({"disabled": true})).await.ok(200);
    let body = json!({"username": "stud", "activation_code": code, "new_password": "my own password"});
    app.send(Method::POST, "/api/v1/auth/activate", None, Some(body)).await.problem(403, "account_disabled");
}

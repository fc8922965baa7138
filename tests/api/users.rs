use crate::helpers::{PASSWORD, spawn_app};
use reqwest::Method;
use rollcall::domain::user::Role;
use serde_json::json;

#[tokio::test]
async fn an_admin_creates_users_who_can_then_log_in() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "s.one", "password": PASSWORD, "role": "student", "real_name": "  Zoë, \"Z\" O'Brien ", "student_number": "S-1"}),
        )
        .await;
    let user = response.ok(201);
    assert_eq!(user["role"], "student");
    assert_eq!(user["real_name"], "Zoë, \"Z\" O'Brien");
    assert_eq!(user["student_number"], "S-1");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    app.login("s.one", PASSWORD).await.ok(200);
}

#[tokio::test]
async fn only_admins_manage_users() {
    let app = spawn_app().await;
    let (_, teacher) = app.create_user_directly("teacher", Role::Teacher).await;
    let (_, student) = app.create_user_directly("student", Role::Student).await;
    let body = json!({"username": "new.one", "password": PASSWORD, "role": "teacher", "real_name": "New"});
    for token in [&teacher, &student] {
        app.post("/api/v1/users", token, body.clone()).await.problem(403, "forbidden");
        app.get("/api/v1/users", token).await.problem(403, "forbidden");
    }
    let users = app.get("/api/v1/users", &app.admin_token).await;
    assert_eq!(users.ok(200).as_array().unwrap().len(), 3, "nothing was created by the refused calls");
}

#[tokio::test]
async fn duplicate_usernames_and_student_numbers_conflict() {
    let app = spawn_app().await;
    app.create_user("taken", "student").await;
    let dup_name = json!({"username": "TAKEN", "password": PASSWORD, "role": "teacher", "real_name": "X"});
    app.post("/api/v1/users", &app.admin_token, dup_name).await.problem(409, "conflict");
    let dup_number = json!({"username": "other", "password": PASSWORD, "role": "student", "real_name": "X", "student_number": "n-taken"});
    app.post("/api/v1/users", &app.admin_token, dup_number).await.problem(409, "conflict");
}

#[tokio::test]
async fn invalid_fields_are_all_reported_and_nothing_is_created() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "a b", "password": "short", "role": "teacher", "real_name": "", "student_number": "9"}),
        )
        .await;
    let body = response.problem(422, "validation_failed");
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["password", "real_name", "student_number", "username"]);
    assert_eq!(app.get("/api/v1/users", &app.admin_token).await.ok(200).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_role_is_a_bad_request() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "x.y.z", "password": PASSWORD, "role": "root", "real_name": "X"}),
        )
        .await;
    response.problem(400, "bad_request");
}

#[tokio::test]
async fn users_are_listed_by_role_and_paged() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_user_directly(&format!("student{i}"), Role::Student).await;
    }
    app.create_user_directly("teacher", Role::Teacher).await;
    let students = app.get("/api/v1/users?role=student", &app.admin_token).await;
    assert_eq!(students.ok(200).as_array().unwrap().len(), 5);
    let page = app.get("/api/v1/users?role=student&limit=2&offset=3", &app.admin_token).await;
    let names: Vec<&str> =
        page.ok(200).as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["student3", "student4"]);
    for bad in ["limit=0", "limit=1001", "offset=-1"] {
        app.get(&format!("/api/v1/users?{bad}"), &app.admin_token).await.problem(422, "validation_failed");
    }
    app.get("/api/v1/users?limit=abc", &app.admin_token).await.problem(400, "bad_request");
    app.get("/api/v1/users?role=ghost", &app.admin_token).await.problem(400, "bad_request");
}

#[tokio::test]
async fn anyone_updates_their_real_name_but_only_students_set_a_number() {
    let app = spawn_app().await;
    let (_, teacher) = app.create_user_directly("teacher", Role::Teacher).await;
    let (_, student) = app.create_user_directly("student", Role::Student).await;
    let renamed =
        app.send(Method::PATCH, "/api/v1/me", Some(&teacher), Some(json!({"real_name": "Dr. T"}))).await;
    assert_eq!(renamed.ok(200)["real_name"], "Dr. T");
    app.send(Method::PATCH, "/api/v1/me", Some(&teacher), Some(json!({"student_number": "T1"})))
        .await
        .problem(403, "forbidden");
    let numbered =
        app.send(Method::PATCH, "/api/v1/me", Some(&student), Some(json!({"student_number": "S-42"}))).await;
    assert_eq!(numbered.ok(200)["student_number"], "S-42");
    assert_eq!(app.get("/api/v1/me", &student).await.ok(200)["student_number"], "S-42");
}

#[tokio::test]
async fn an_empty_profile_update_changes_nothing() {
    let app = spawn_app().await;
    let (_, student) = app.create_user_directly("student", Role::Student).await;
    let response = app.send(Method::PATCH, "/api/v1/me", Some(&student), Some(json!({}))).await;
    assert_eq!(response.ok(200)["real_name"], "Real student");
}

#[tokio::test]
async fn a_student_number_already_in_use_conflicts() {
    let app = spawn_app().await;
    app.create_user_directly("first", Role::Student).await;
    let (_, second) = app.create_user_directly("second", Role::Student).await;
    let response = app
        .send(Method::PATCH, "/api/v1/me", Some(&second), Some(json!({"student_number": "n-first"})))
        .await;
    response.problem(409, "conflict");
    assert_eq!(app.get("/api/v1/me", &second).await.ok(200)["student_number"], "n-second");
}

#[tokio::test]
async fn an_invalid_profile_update_changes_nothing() {
    let app = spawn_app().await;
    let (_, student) = app.create_user_directly("student", Role::Student).await;
    let response = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&student),
            Some(json!({"real_name": "ok name", "student_number": "has space"})),
        )
        .await;
    response.problem(422, "validation_failed");
    assert_eq!(app.get("/api/v1/me", &student).await.ok(200)["real_name"], "Real student");
}

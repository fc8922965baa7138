//! Changing one's own password, and resetting someone's with an activation code.

use reqwest::Method;
use rollcall::domain::user::Role;
use serde_json::{Value, json};

use super::{access, login};
use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn change(app: &TestApp, token: &str, body: Value) -> crate::helpers::http::Response {
    app.send(Method::POST, "/api/v1/me/password", Some(token), Some(body)).await
}

async fn activate(
    app: &TestApp,
    username: &str,
    code: &str,
    password: &str,
) -> crate::helpers::http::Response {
    let body = json!({"username": username, "activation_code": code, "new_password": password});
    app.send(Method::POST, "/api/v1/auth/activate", None, Some(body)).await
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_revokes_the_others() {
    let app = spawn_app().await;
    app.create_user_directly("teach", Role::Teacher).await;
    let here = login(&app, "teach").await;
    let elsewhere = login(&app, "teach").await;
    let body = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    change(&app, access(&here), body).await.ok(204);
    app.get("/api/v1/me", access(&here)).await.ok(200);
    app.get("/api/v1/me", access(&elsewhere)).await.problem(401, "session_revoked");
    app.login("teach", PASSWORD).await.problem(401, "invalid_credentials");
    app.login("teach", "a brand new passphrase").await.ok(200);
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_counts_in_the_login_throttle() {
    let app = spawn_app().await;
    let (_, token) = app.create_user_directly("teach", Role::Teacher).await;
    let wrong = json!({"current_password": "not my password", "new_password": "a brand new passphrase"});
    for _ in 0..10 {
        change(&app, &token, wrong.clone()).await.problem(403, "invalid_credentials");
    }
    change(&app, &token, wrong).await.problem(429, "too_many_attempts");
    // The username is throttled for logins too, and the password did not change.
    app.login("teach", PASSWORD).await.problem(429, "too_many_attempts");
    app.advance(301);
    app.login("teach", PASSWORD).await.ok(200);
}

#[tokio::test]
async fn a_refused_password_change_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.create_user_directly("teach", Role::Teacher).await;
    let weak = change(&app, &token, json!({"current_password": PASSWORD, "new_password": "short"})).await;
    assert_eq!(weak.problem(422, "validation_failed")["errors"][0]["field"], "new_password");
    let long = "p".repeat(257);
    change(&app, &token, json!({"current_password": PASSWORD, "new_password": long}))
        .await
        .problem(422, "validation_failed");
    let missing = change(&app, &token, json!({"new_password": "long enough pw"})).await;
    assert_eq!(missing.problem(422, "validation_failed")["errors"][0]["field"], "current_password");
    change(&app, &token, json!({"current_password": PASSWORD, "new_password": 12345678}))
        .await
        .problem(400, "bad_request");
    app.login("teach", PASSWORD).await.ok(200);
    app.get("/api/v1/me", &token).await.ok(200);
}

#[tokio::test]
async fn an_admin_reset_replaces_the_password_with_a_single_use_activation_code() {
    let app = spawn_app().await;
    let (id, token) = app.create_user_directly("stud", Role::Student).await;
    let issued = app.post(&format!("/api/v1/users/{id}/activation"), &app.admin_token, json!({})).await;
    let issued = issued.ok(201).clone();
    let code = issued["activation_code"].as_str().unwrap();
    assert!(code.len() >= 32 && code.bytes().all(|b| b.is_ascii_hexdigit()), "128 bits: {code}");
    assert!(issued["expires_at"].is_string());
    // The old password and every session stop working at once.
    app.get("/api/v1/me", &token).await.problem(401, "session_revoked");
    app.login("stud", PASSWORD).await.problem(401, "invalid_credentials");
    let user = app.get(&format!("/api/v1/users/{id}"), &app.admin_token).await.ok(200).clone();
    assert_eq!(user["activation_pending"], true);

    activate(&app, "stud", &"0".repeat(32), "my own password").await.problem(401, "invalid_credentials");
    let answer = activate(&app, "STUD", code, "my own password").await.ok(200).clone();
    assert_eq!(
        (answer["user"]["username"].as_str(), answer["user"]["activation_pending"].as_bool()),
        (Some("stud"), Some(false))
    );
    app.get("/api/v1/me", access(&answer)).await.ok(200);
    assert!(answer["refresh_token"].is_string());
    // Single use.
    activate(&app, "stud", code, "another password").await.problem(401, "invalid_credentials");
    app.login("stud", "my own password").await.ok(200);
}

#[tokio::test]
async fn an_activation_code_expires_and_a_new_one_replaces_the_old() {
    let app = spawn_app().await;
    let (id, _) = app.create_user_directly("stud", Role::Student).await;
    let path = format!("/api/v1/users/{id}/activation");
    let first = app.post(&path, &app.admin_token, json!({})).await.ok(201)["activation_code"].clone();
    let second = app.post(&path, &app.admin_token, json!({})).await.ok(201)["activation_code"].clone();
    activate(&app, "stud", first.as_str().unwrap(), "my own password")
        .await
        .problem(401, "invalid_credentials");
    app.advance(14 * 24 * 3600);
    activate(&app, "stud", second.as_str().unwrap(), "my own password")
        .await
        .problem(401, "invalid_credentials");
    let weak = activate(&app, "stud", second.as_str().unwrap(), "short").await;
    assert_eq!(weak.problem(422, "validation_failed")["errors"][0]["field"], "new_password");
}

#[tokio::test]
async fn wrong_activation_codes_count_in_the_login_throttle() {
    let app = spawn_app().await;
    app.create_user_directly("stud", Role::Student).await;
    for _ in 0..10 {
        activate(&app, "stud", &"1".repeat(32), "my own password").await.problem(401, "invalid_credentials");
    }
    activate(&app, "stud", &"1".repeat(32), "my own password").await.problem(429, "too_many_attempts");
    app.login("stud", PASSWORD).await.problem(429, "too_many_attempts");
}

#[tokio::test]
async fn a_reset_committed_while_a_login_is_being_checked_wins_over_it() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let app = spawn_app().await;
    let (id, _) = app.create_user_directly("stud", Role::Student).await;
    // Hold the account's row, as a reset's transaction would while it commits.
    let mut reset = PgConnection::establish(app.database_url()).unwrap();
    reset.batch_execute(&format!("BEGIN; SELECT id FROM users WHERE id = {id} FOR UPDATE")).unwrap();
    let login = {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/login"));
        tokio::spawn(async move {
            let body = json!({"username": "stud", "password": PASSWORD});
            client.post(url).json(&body).send().await.unwrap().status().as_u16()
        })
    };
    // The login checked the right password and now waits for the row to commit.
    let waiting = |conn: &mut PgConnection| -> bool {
        use diesel::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple'))",
        ))
        .get_result(conn)
        .unwrap()
    };
    let mut observer = PgConnection::establish(app.database_url()).unwrap();
    for _ in 0..500 {
        if waiting(&mut observer) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waiting(&mut observer), "the login waits for the account's row");
    reset.batch_execute(&format!("UPDATE users SET password_hash = NULL WHERE id = {id}")).unwrap();
    reset.batch_execute("COMMIT").unwrap();
    assert_eq!(login.await.unwrap(), 401, "the old password no longer logs in");
    // Nor does the refused attempt stay pending, where it would hold a place in the throttle.
    let pending: i64 = {
        use diesel::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM login_failures WHERE pending)",
        ))
        .get_result(&mut observer)
        .unwrap()
    };
    assert_eq!(pending, 0);
}

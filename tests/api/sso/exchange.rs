//! The provider list and `POST /auth/exchange`: a login code works once, within 60 s.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

fn issue(app: &TestApp, user_id: i64) -> String {
    let mut conn = app.pool.get().unwrap();
    use rollcall::clock::Clock;
    rollcall::auth::sso::issue(&mut conn, user_id, app.clock.now()).unwrap()
}

#[tokio::test]
async fn no_provider_is_listed_when_none_is_configured() {
    let app = spawn_app().await;
    let listed = app.send(Method::GET, "/api/v1/auth/providers", None, None).await;
    assert_eq!(listed.ok(200), &json!([]));
}

#[tokio::test]
async fn a_login_code_is_exchanged_once_for_a_session() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let code = issue(&app, class.students[0].id);
    let exchanged =
        app.send(Method::POST, "/api/v1/auth/exchange", None, Some(json!({"login_code": code}))).await;
    let answer = exchanged.ok(200);
    assert_eq!(answer["user"]["id"], class.students[0].id);
    assert_eq!(answer["token_type"], "Bearer");
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", token).await.ok(200)["id"], class.students[0].id);
    let refreshed = app
        .send(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": answer["refresh_token"]})),
        )
        .await;
    refreshed.ok(200);
    // Single use.
    app.send(Method::POST, "/api/v1/auth/exchange", None, Some(json!({"login_code": code})))
        .await
        .problem(401, "invalid_credentials");
}

#[tokio::test]
async fn an_expired_unknown_or_missing_code_is_refused() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let code = issue(&app, class.students[0].id);
    app.advance(60);
    let exchange = |body| app.send(Method::POST, "/api/v1/auth/exchange", None, Some(body));
    exchange(json!({"login_code": code})).await.problem(401, "invalid_credentials");
    exchange(json!({"login_code": "0".repeat(64)})).await.problem(401, "invalid_credentials");
    exchange(json!({"login_code": "x".repeat(10_000)})).await.problem(401, "invalid_credentials");
    exchange(json!({})).await.problem(422, "validation_failed");
    // A disabled account's code is refused as such.
    let fresh = issue(&app, class.students[0].id);
    let path = format!("/api/v1/users/{}", class.students[0].id);
    app.send(Method::PATCH, &path, Some(&app.admin_token), Some(json!({"disabled": true}))).await.ok(200);
    exchange(json!({"login_code": fresh})).await.problem(403, "account_disabled");
}

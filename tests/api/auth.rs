use crate::helpers::{PASSWORD, spawn_app};
use rollcall::domain::user::Role;
use serde_json::json;

#[tokio::test]
async fn login_returns_a_bearer_token_that_identifies_the_user() {
    let app = spawn_app().await;
    app.create_user_directly("teacher.t", Role::Teacher).await;

    let response = app.login("teacher.t", PASSWORD).await;
    let body = response.ok(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["user"]["username"], "teacher.t");
    assert!(body["user"].get("password_hash").is_none());

    let me = app.get("/api/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.ok(200)["role"], "teacher");
}

#[tokio::test]
async fn login_ignores_the_case_of_the_username() {
    let app = spawn_app().await;
    app.create_user_directly("Mixed.Case", Role::Student).await;
    app.login("mixed.case", PASSWORD).await.ok(200);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user_directly("real.user", Role::Student).await;

    let wrong_password = app.login("real.user", "not-the-password").await;
    let unknown_user = app.login("no.such.user", PASSWORD).await;
    wrong_password.problem(401, "invalid_credentials");
    unknown_user.problem(401, "invalid_credentials");
    assert_eq!(wrong_password.body, unknown_user.body);
}

#[tokio::test]
async fn a_login_with_a_missing_field_is_a_validation_error() {
    let app = spawn_app().await;
    let response =
        app.send(reqwest::Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "x"}))).await;
    let body = response.problem(422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "password");
}

#[tokio::test]
async fn more_than_ten_failures_in_five_minutes_are_throttled_even_with_the_right_password() {
    let app = spawn_app().await;
    app.create_user_directly("victim", Role::Teacher).await;
    for _ in 0..10 {
        app.login("victim", "guess-guess").await.problem(401, "invalid_credentials");
        app.advance(10);
    }
    // 100 s have passed; the first failure frees its slot at 300 s.
    let throttled = app.login("VICTIM", PASSWORD).await;
    throttled.problem(429, "too_many_attempts");
    assert_eq!(throttled.headers["retry-after"], "200");

    app.advance(199);
    app.login("victim", PASSWORD).await.problem(429, "too_many_attempts");
    app.advance(1);
    app.login("victim", PASSWORD).await.ok(200);
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let app = spawn_app().await;
    app.create_user_directly("forgetful", Role::Student).await;
    for _ in 0..9 {
        app.login("forgetful", "wrong-wrong").await.problem(401, "invalid_credentials");
    }
    app.login("forgetful", PASSWORD).await.ok(200);
    for _ in 0..10 {
        app.login("forgetful", "wrong-wrong").await.problem(401, "invalid_credentials");
    }
    app.login("forgetful", PASSWORD).await.problem(429, "too_many_attempts");
}

#[tokio::test]
async fn concurrent_guesses_cannot_exceed_the_failure_limit() {
    let app = spawn_app().await;
    app.create_user_directly("target", Role::Teacher).await;
    let guesses = (0..30).map(|i| {
        let app = &app;
        async move { app.login("target", &format!("guess-{i:04}")).await.status.as_u16() }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((evaluated, throttled), (10, 20), "{statuses:?}");
}

#[tokio::test]
async fn a_lecture_hall_logging_in_at_once_hashes_at_most_one_password_per_core() {
    let app = spawn_app().await;
    let usernames: Vec<String> = (0..32).map(|n| format!("hall.s{n:02}")).collect();
    crate::helpers::fixtures::insert_users(&app.pool, &usernames, Role::Student).await;
    // 64 at once: 32 right passwords, 16 wrong ones, 16 unknown users.
    let attempts = usernames
        .iter()
        .map(|name| (name.clone(), PASSWORD))
        .chain(usernames.iter().take(16).map(|name| (name.clone(), "wrong-password")))
        .chain((0..16).map(|n| (format!("nobody.{n}"), PASSWORD)));
    let logins = attempts.map(|(name, password)| {
        let app = &app;
        async move { app.login(&name, password).await.status.as_u16() }
    });
    let mut statuses = futures_util::future::join_all(logins).await;
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 32, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 32, "{statuses:?}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(app.hasher.peak() <= cores, "{} hashes ran at once on {cores} cores", app.hasher.peak());
    assert!(app.hasher.peak() >= 1);
    assert_eq!((app.hasher.running(), app.hasher.queued()), (0, 0), "nothing left behind");
}

//! Metrics, request ids and CORS.

use crate::helpers::http::metric;
use crate::helpers::{settings, spawn_app, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_check_ins_by_result() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    app.check_in(&class.students[0], &code).await.ok(200);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    app.check_in(&class.students[1], wrong).await.problem(422, "invalid_code");
    for _ in 0..3 {
        app.get(&format!("/api/v1/lessons/{}", class.lesson_id), &class.teacher).await.ok(200);
    }
    let _socket = app.watch(class.lesson_id, &class.teacher).await;

    let text = app.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="GET",route="/api/v1/lessons/{lesson_id}",status="200"}"#
        ),
        3.0
    );
    assert!(
        !text.contains(&format!("/api/v1/lessons/{}\"", class.lesson_id)),
        "raw paths would explode cardinality"
    );
    assert_eq!(
        metric(
            &text,
            r#"http_request_duration_seconds_count{method="POST",route="/api/v1/checkins",status="422"}"#
        ),
        1.0
    );
    assert!(text.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/api/v1/checkins",status="201",le="0.05"}"#));
    assert_eq!(metric(&text, r#"rollcall_checkins_total{result="accepted"}"#), 1.0);
    assert_eq!(metric(&text, r#"rollcall_checkins_total{result="repeated"}"#), 1.0);
    assert_eq!(metric(&text, r#"rollcall_checkins_total{result="invalid_code"}"#), 1.0);
    assert_eq!(metric(&text, r#"rollcall_checkins_total{result="throttled"}"#), 0.0);
    assert_eq!(metric(&text, "rollcall_websocket_connections"), 1.0);
    assert_eq!(metric(&text, "rollcall_live_lessons"), 1.0);
    assert!(metric(&text, r#"rollcall_db_pool_connections{state="idle"}"#) >= 1.0);
    assert!(text.contains(r#"rollcall_db_pool_connections{state="in_use"}"#));
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = spawn_app().await;
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 24);
    let again = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id, "ids are unique");
    let kept = app
        .client
        .get(app.url("/api/v1/nowhere"))
        .header("X-Request-Id", "frontend-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "frontend-abc-123", "also on error answers");
    let replaced =
        app.client.get(app.url("/healthz")).header("X-Request-Id", "x".repeat(200)).send().await.unwrap();
    assert_eq!(replaced.headers()["x-request-id"].to_str().unwrap().len(), 24);
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins() {
    let mut with_origins = settings();
    with_origins.cors_origins = vec!["https://checkin.example.edu".into()];
    let app = spawn_app_with(with_origins).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/checkins"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type, x-device-id")
            .send()
    };
    let allowed = preflight("https://checkin.example.edu").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://checkin.example.edu");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST") && methods.contains("PUT"), "{methods}");
    let headers = allowed.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("x-device-id"), "{headers}");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());

    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("Origin", "https://checkin.example.edu")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://checkin.example.edu");
    let exposed = simple.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    assert!(exposed.contains("retry-after") && exposed.contains("x-request-id"), "{exposed}");
}

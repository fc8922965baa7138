use crate::helpers::{settings, spawn_app};

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_is_200_when_the_database_answers() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_problem_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    // A second server over a database that cannot be reached.
    let unreachable = "postgresql://nobody@127.0.0.1:1/none";
    let pool = rollcall::db::pool(unreachable, 2);
    let broken = rollcall::startup::Application::build(
        &settings(),
        crate::helpers::JWT_SECRET.as_bytes(),
        pool,
        unreachable,
        app.clock.clone(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}/readyz", broken.port());
    tokio::spawn(broken.run_until_stopped());
    let response = crate::helpers::http::into_response(app.client.get(&url).send().await.unwrap()).await;
    response.problem(503, "database_unavailable");
    // The process itself is fine, so the same server stays alive.
    let alive = app.client.get(url.replace("/readyz", "/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
}

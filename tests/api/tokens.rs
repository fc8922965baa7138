//! Every way a bearer token must be refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, spawn_app};
use rollcall::domain::user::Role;

fn claims(app: &TestApp, user_id: i64) -> Value {
    let now = app.clock_now();
    json!({
        "sub": user_id.to_string(), "sid": crate::helpers::fixtures::FIXTURE_SESSIONS + user_id, "role": "teacher", "username": "t",
        "iat": now, "exp": now + 600, "iss": "rollcall", "aud": "rollcall-api",
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap()
}

impl TestApp {
    fn clock_now(&self) -> i64 {
        use rollcall::clock::Clock;
        self.clock.now().timestamp()
    }
}

async fn assert_rejected(app: &TestApp, token: &str) {
    let response = app.get("/api/v1/me", token).await;
    response.problem(401, "unauthorized");
    assert_eq!(response.headers["www-authenticate"], "Bearer");
}

async fn teacher(app: &TestApp) -> i64 {
    app.create_user_directly("teacher", Role::Teacher).await.0
}

#[tokio::test]
async fn a_correctly_signed_token_is_accepted() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    app.get("/api/v1/me", &sign(&claims(&app, id), JWT_SECRET)).await.ok(200);
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_is_401() {
    let app = spawn_app().await;
    let none = app.send(reqwest::Method::GET, "/api/v1/me", None, None).await;
    none.problem(401, "unauthorized");
    let basic =
        app.client.get(app.url("/api/v1/me")).header("Authorization", "Basic dTpw").send().await.unwrap();
    assert_eq!(basic.status(), 401);
    assert_rejected(&app, "not-a-jwt").await;
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, id).to_string());
    assert_rejected(&app, &format!("{header}.{payload}.")).await;
}

#[tokio::test]
async fn an_hs_rs_algorithm_swap_is_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    // The classic confusion attack: claim RS256 but sign with HMAC over the "public key".
    let valid = sign(&claims(&app, id), JWT_SECRET);
    let (_, rest) = valid.split_once('.').unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    assert_rejected(&app, &format!("{header}.{rest}")).await;
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(&app, id),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_rejected(&app, &hs512).await;
}

#[tokio::test]
async fn a_bad_signature_is_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    assert_rejected(&app, &sign(&claims(&app, id), "another-secret-that-is-long-enough-too")).await;
    // Flip one character in the middle of the signature (the last one carries padding bits).
    let mut tampered = sign(&claims(&app, id), JWT_SECRET).into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_rejected(&app, &tampered).await;
}

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let app = spawn_app().await;
    let token = app.create_user_directly("teacher2", Role::Teacher).await.1;
    app.get("/api/v1/me", &token).await.ok(200);
    app.advance(3600 + 6);
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn a_token_that_is_not_yet_valid_is_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    let mut future = claims(&app, id);
    future["iat"] = json!(app.clock_now() + 600);
    future["exp"] = json!(app.clock_now() + 1200);
    assert_rejected(&app, &sign(&future, JWT_SECRET)).await;
    let mut nbf = claims(&app, id);
    nbf["nbf"] = json!(app.clock_now() + 600);
    assert_rejected(&app, &sign(&nbf, JWT_SECRET)).await;
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    let mut wrong_iss = claims(&app, id);
    wrong_iss["iss"] = json!("someone-else");
    assert_rejected(&app, &sign(&wrong_iss, JWT_SECRET)).await;
    let mut wrong_aud = claims(&app, id);
    wrong_aud["aud"] = json!("another-api");
    assert_rejected(&app, &sign(&wrong_aud, JWT_SECRET)).await;
}

#[tokio::test]
async fn missing_claims_are_rejected() {
    let app = spawn_app().await;
    let id = teacher(&app).await;
    for claim in ["sub", "sid", "exp", "iss", "aud", "iat"] {
        let mut partial = claims(&app, id);
        partial.as_object_mut().unwrap().remove(claim);
        let response = app.get("/api/v1/me", &sign(&partial, JWT_SECRET)).await;
        assert_eq!(response.status, 401, "token without {claim} was accepted");
    }
    let mut not_a_number = claims(&app, id);
    not_a_number["sub"] = json!("abc");
    assert_rejected(&app, &sign(&not_a_number, JWT_SECRET)).await;
}

#[tokio::test]
async fn a_token_of_a_deleted_user_is_rejected() {
    let app = spawn_app().await;
    let (id, token) = app.create_user_directly("leaver", Role::Student).await;
    app.get("/api/v1/me", &token).await.ok(200);
    let mut conn = app.pool.get().unwrap();
    use diesel::prelude::*;
    diesel::delete(rollcall::schema::users::table.find(id)).execute(&mut conn).unwrap();
    assert_rejected(&app, &token).await;
    // Check-ins confirm the student in the batch that would store the check-in.
    let check_in = app.post("/api/v1/checkins", &token, serde_json::json!({"code": "123456"})).await;
    check_in.problem(401, "unauthorized");
}

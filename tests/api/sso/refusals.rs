//! Every refusal the contract names, each leaving nothing behind: bad `state` (missing,
//! forged, replayed, from another browser), ID tokens that do not hold up, and providers
//! that fail, hang or cannot be reached.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use super::{Browser, Sso, fragment, settings};
use crate::helpers::spawn_app_at;

#[tokio::test]
async fn a_missing_forged_replayed_or_foreign_state_is_invalid_state() {
    let sso = Sso::start().await;
    sso.person("vic", json!(["student"]), json!({})).await;
    let browser = Browser::new();
    for query in ["?code=abc", "?code=abc&state=forged-state-value", ""] {
        let url = sso.app.url(&format!("/api/v1/auth/oidc/uni/callback{query}"));
        assert_eq!(browser.land(&url).await, Err("invalid_state".into()), "{query}");
    }
    // Replayed: the state works once.
    let callback = browser.authorize(&sso.app, "vic").await;
    assert!(browser.land(&callback).await.is_ok());
    assert_eq!(browser.land(&callback).await, Err("invalid_state".into()));
    assert_eq!(sso.counts(), (2, 1));

    // Another browser brings a callback it did not start (login CSRF): refused, and the
    // state is used up for the browser that started it too.
    sso.person("eve", json!(["student"]), json!({})).await;
    let victim = Browser::new();
    let attackers = Browser::new().authorize(&sso.app, "eve").await;
    assert_eq!(victim.land(&attackers).await, Err("invalid_state".into()));
    assert_eq!(sso.counts(), (2, 1), "nothing created for eve");
}

#[tokio::test]
async fn a_state_expires_after_ten_minutes() {
    let sso = Sso::start().await;
    sso.person("slow", json!(["student"]), json!({})).await;
    let browser = Browser::new();
    let callback = browser.authorize(&sso.app, "slow").await;
    sso.app.advance(601);
    assert_eq!(browser.land(&callback).await, Err("invalid_state".into()));
    assert_eq!(sso.counts(), (1, 0));
}

#[tokio::test]
async fn id_tokens_that_do_not_hold_up_are_refused_and_change_nothing() {
    let sso = Sso::start().await;
    sso.person("mal", json!(["student"]), json!({})).await;
    let forgeries = [
        json!({"aud": "someone-else"}),
        json!({"aud": ["rollcall", "someone-else"]}),
        json!({"nonce": "not-the-nonce"}),
        json!({"iss": "http://127.0.0.1:1"}),
        json!({"exp_offset": -90, "iat_offset": -3600}),
        json!({"iat_offset": 120}),
        json!({"key": "unknown"}),
        json!({"nonce": null}),
        // Malformed: an ID token without a subject.
        json!({"sub": null}),
    ];
    for forgery in forgeries {
        // The manual clock stands still while the provider's runs on.
        sso.app.clock.set(Utc::now());
        sso.provider.tamper(forgery.clone()).await;
        assert_eq!(sso.sign_in("mal").await, Err("invalid_id_token".into()), "{forgery}");
        assert_eq!(sso.counts(), (1, 0), "{forgery}");
    }
    // Within the 60 s of skew the contract allows, the same person signs in.
    sso.app.clock.set(Utc::now());
    sso.provider.tamper(json!({"exp_offset": -30, "iat_offset": 30})).await;
    assert!(sso.sign_in("mal").await.is_ok());
}

#[tokio::test]
async fn a_provider_that_fails_is_a_provider_error() {
    let sso = Sso::start().await;
    sso.person("pat", json!(["student"]), json!({})).await;
    sso.provider.fail(json!({"endpoint": "token", "mode": "error"})).await;
    assert_eq!(sso.sign_in("pat").await, Err("provider_error".into()));
    assert_eq!(sso.counts(), (1, 0));
    sso.provider.fail(json!({"endpoint": "token", "mode": "hang"})).await;
    let began = Instant::now();
    assert_eq!(sso.sign_in("pat").await, Err("provider_error".into()));
    assert!(began.elapsed() < Duration::from_secs(15), "took {:?}", began.elapsed());
    assert_eq!(sso.counts(), (1, 0));
}

#[tokio::test]
async fn an_unreachable_provider_is_a_provider_error_within_ten_seconds_and_nothing_else_waits() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_at(settings(&issuer, &[]), Utc::now()).await;
    let began = Instant::now();
    let start = app.client.get(app.url("/api/v1/auth/oidc/uni/start")).send();
    let others = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let listed = app.send(Method::GET, "/api/v1/auth/providers", None, None).await;
        (listed.status.as_u16(), began.elapsed())
    };
    let (start, (listed, listed_after)) = tokio::join!(start, others);
    let start = start.unwrap();
    let elapsed = began.elapsed();
    assert_eq!(start.status().as_u16(), 302);
    let location = start.headers().get("location").unwrap().to_str().unwrap();
    assert_eq!(fragment(location), Err("provider_error".into()));
    assert!(elapsed < Duration::from_secs(11), "took {elapsed:?}");
    assert_eq!(listed, 200);
    assert!(listed_after < Duration::from_secs(3), "the rest of the API waited {listed_after:?}");

    // Nobody listens at all: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_at(settings(&issuer, &[]), Utc::now()).await;
    let start = app.client.get(app.url("/api/v1/auth/oidc/uni/start")).send().await.unwrap();
    assert_eq!(
        fragment(start.headers().get("location").unwrap().to_str().unwrap()),
        Err("provider_error".into())
    );
}

#[tokio::test]
async fn a_failing_userinfo_endpoint_is_a_provider_error() {
    let sso = Sso::start_with(&[("CLAIMS_IN_ID_TOKEN", "0")], &[]).await;
    sso.person("una", json!(["student"]), json!({})).await;
    sso.provider.fail(json!({"endpoint": "userinfo", "mode": "error"})).await;
    assert_eq!(sso.sign_in("una").await, Err("provider_error".into()));
    assert_eq!(sso.counts(), (1, 0));
}

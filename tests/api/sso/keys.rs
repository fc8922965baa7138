//! The provider's keys: fetched with discovery, fetched again when an ID token names an
//! unknown `kid` (a rotation), but at most once a minute.

use serde_json::json;

use super::Sso;

#[tokio::test]
async fn a_rotated_key_is_fetched_on_an_unknown_kid_at_most_once_a_minute() {
    let sso = Sso::start().await;
    sso.person("kim", json!(["student"]), json!({})).await;
    let fetches = || async { sso.provider.stats().await["jwks_fetches"].as_i64().unwrap() };
    assert!(sso.sign_in("kim").await.is_ok());
    assert_eq!(fetches().await, 1, "with discovery");

    sso.provider.rotate_key().await;
    // The keys were fetched less than a minute ago: not again, so the new key is unknown.
    assert_eq!(sso.sign_in("kim").await, Err("invalid_id_token".into()));
    assert_eq!(fetches().await, 1);
    sso.app.advance(61);
    assert!(sso.sign_in("kim").await.is_ok(), "{}", sso.provider.log());
    assert_eq!(fetches().await, 2, "fetched again for the new kid");
    // Known keys need no fetch.
    assert!(sso.sign_in("kim").await.is_ok());
    assert_eq!(fetches().await, 2);

    // A key the provider never published: refused; a fetch at most once a minute.
    sso.provider.tamper(json!({"key": "unknown"})).await;
    assert_eq!(sso.sign_in("kim").await, Err("invalid_id_token".into()));
    assert_eq!(fetches().await, 2);
    sso.app.advance(61);
    sso.provider.tamper(json!({"key": "unknown"})).await;
    assert_eq!(sso.sign_in("kim").await, Err("invalid_id_token".into()));
    assert_eq!(fetches().await, 3);
    assert_eq!(sso.counts(), (2, 1));
}

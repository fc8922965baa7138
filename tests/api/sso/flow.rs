//! The sign-in as a browser goes through it: `/start`, the provider's login form, the
//! callback, the login code and its exchange; across instances; claims from userinfo.

use reqwest::Method;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

use super::{Browser, Sso, exchange, param};

#[tokio::test]
async fn a_first_sign_in_creates_the_student_and_later_ones_refresh_the_profile() {
    let sso = Sso::start().await;
    sso.person("ada", json!(["student"]), json!({"student_number": "S9001"})).await;
    let answer = sso.log_in("ada").await;
    let user = &answer["user"];
    assert_eq!((user["username"].as_str(), user["role"].as_str()), (Some("ada"), Some("student")));
    assert_eq!(
        (user["real_name"].as_str(), user["student_number"].as_str()),
        (Some("ada Person"), Some("S9001"))
    );
    let token = answer["access_token"].as_str().unwrap();
    let me = sso.app.get("/api/v1/me", token).await;
    assert_eq!(me.ok(200)["id"], user["id"]);
    // An account made by sign-on has no password, and needs no activation.
    sso.app.login("ada", "any-password-at-all").await.problem(401, "invalid_credentials");
    let path = format!("/api/v1/users/{}", user["id"]);
    let admin_view = sso.app.get(&path, &sso.app.admin_token).await;
    assert_eq!(admin_view.ok(200)["activation_pending"], false);

    // Later sign-ins bring name and number up to date; the role never changes.
    sso.person("ada", json!(["teacher"]), json!({"name": "Ada Lovelace", "student_number": "S9002"})).await;
    let again = sso.log_in("ada").await;
    assert_eq!(again["user"]["id"], user["id"]);
    assert_eq!(again["user"]["role"], "student");
    assert_eq!(again["user"]["real_name"], "Ada Lovelace");
    assert_eq!(again["user"]["student_number"], "S9002");
    // Claims the provider stops sending change nothing.
    sso.provider
        .account(json!({"sub": "sub-ada", "password": "ada-password", "preferred_username": "ada", "roles": ["student"]}))
        .await;
    let third = sso.log_in("ada").await;
    assert_eq!(
        (third["user"]["real_name"].as_str(), third["user"]["student_number"].as_str()),
        (Some("Ada Lovelace"), Some("S9002"))
    );
    assert_eq!(sso.counts().1, 1, "one identity");
}

#[tokio::test]
async fn teacher_values_win_and_a_teacher_keeps_no_student_number() {
    let sso = Sso::start().await;
    sso.person("tess", json!(["student", "teacher"]), json!({"student_number": "S1003"})).await;
    let answer = sso.log_in("tess").await;
    assert_eq!(answer["user"]["role"], "teacher");
    assert_eq!(answer["user"]["student_number"], serde_json::Value::Null);
    // A role claim that is one string works too.
    sso.person("tom", json!("teacher"), json!({})).await;
    assert_eq!(sso.log_in("tom").await["user"]["role"], "teacher");
}

#[tokio::test]
async fn start_sends_pkce_state_and_nonce_and_binds_the_browser_by_cookie() {
    let sso = Sso::start().await;
    let start = sso.app.client.get(sso.app.url("/api/v1/auth/oidc/uni/start")).send().await.unwrap();
    assert_eq!(start.status().as_u16(), 302);
    let location = start.headers().get(LOCATION).unwrap().to_str().unwrap().to_owned();
    assert!(location.starts_with(&sso.provider.issuer), "{location}");
    let callback = sso.app.url("/api/v1/auth/oidc/uni/callback");
    assert_eq!(param(&location, "redirect_uri").as_deref(), Some(callback.as_str()));
    assert_eq!(param(&location, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&location, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(&location, "code_challenge").map(|c| c.len()), Some(43));
    let scopes = param(&location, "scope").unwrap();
    assert!(["openid", "profile", "email"].iter().all(|s| scopes.split(' ').any(|x| x == *s)), "{scopes}");
    // 32 random bytes each, base64url: well over 128 bits.
    let state = param(&location, "state").unwrap();
    assert!(state.len() >= 43 && param(&location, "nonce").unwrap().len() >= 43);
    let cookie = start.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.starts_with("rollcall_oidc_"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/api/v1/auth/oidc/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    // Stored hashed, never as the state itself.
    use diesel::prelude::*;
    use rollcall::schema::oidc_states;
    let mut conn = sso.app.pool.get().unwrap();
    let hashes: Vec<Vec<u8>> = oidc_states::table.select(oidc_states::state_hash).load(&mut conn).unwrap();
    use sha2::Digest;
    assert_eq!(hashes, [sha2::Sha256::digest(state.as_bytes()).to_vec()]);
}

#[tokio::test]
async fn without_a_public_url_a_start_at_another_host_name_moves_to_the_callback_host_first() {
    let sso = Sso::start().await;
    let port = sso.app.address.rsplit(':').next().unwrap();
    let start = sso
        .app
        .client
        .get(sso.app.url("/api/v1/auth/oidc/uni/start"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 302);
    // There the cookie is set for the host the provider sends the browser back to.
    assert_eq!(start.headers().get(LOCATION).unwrap(), &sso.app.url("/api/v1/auth/oidc/uni/start"));
    assert!(start.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_another() {
    let sso = Sso::start().await;
    sso.person("ben", json!(["student"]), json!({})).await;
    let replica = sso.replica().await;
    let browser = Browser::new();
    let callback = browser.authorize(&sso.app, "ben").await;
    // The load balancer sends the callback to the other instance (same host, other port);
    // the browser's cookie goes with it.
    let on_replica = callback.replacen(&sso.app.address, &replica.address, 1);
    assert_ne!(on_replica, callback);
    let code = browser.land(&on_replica).await.expect("signed in on the replica");
    let answer = exchange(&sso.app, &code).await;
    assert_eq!(answer["user"]["username"], "ben");
}

#[tokio::test]
async fn claims_the_id_token_lacks_come_from_userinfo() {
    let sso = Sso::start_with(&[("CLAIMS_IN_ID_TOKEN", "0")], &[]).await;
    sso.person("uma", json!(["student"]), json!({"student_number": "S4242", "name": "Uma Info"})).await;
    let answer = sso.log_in("uma").await;
    assert_eq!(answer["user"]["username"], "uma");
    assert_eq!(answer["user"]["real_name"], "Uma Info");
    assert_eq!(answer["user"]["student_number"], "S4242");
    assert!(sso.provider.stats().await["userinfo_requests"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn providers_are_listed_and_unknown_ones_are_not_found() {
    let sso = Sso::start().await;
    let listed = sso.app.send(Method::GET, "/api/v1/auth/providers", None, None).await;
    assert_eq!(listed.ok(200), &json!([{"id": "uni", "name": "University login"}]));
    for path in ["/api/v1/auth/oidc/nope/start", "/api/v1/auth/oidc/nope/callback?code=x&state=y"] {
        sso.app.send(Method::GET, path, None, None).await.problem(404, "not_found");
    }
}

#[tokio::test]
async fn cancelling_at_the_provider_is_a_provider_error() {
    let sso = Sso::start().await;
    sso.person("cal", json!(["student"]), json!({})).await;
    let browser = Browser::new();
    let callback = sso.app.url("/api/v1/auth/oidc/uni/callback");
    let page =
        browser.follow(sso.app.url("/api/v1/auth/oidc/uni/start"), |url| url.starts_with(&callback)).await;
    let abort = page.url.trim_end_matches('/').to_owned() + "/abort";
    let back = browser.follow(abort, |url| url.starts_with(&callback)).await;
    assert_eq!(param(&back.url, "error").as_deref(), Some("access_denied"));
    assert_eq!(browser.land(&back.url).await, Err("provider_error".into()));
    assert_eq!(sso.counts(), (1, 0), "only the admin");
}

#[tokio::test]
async fn behind_an_https_public_url_with_a_path_the_redirect_uri_and_cookie_follow_it() {
    let public = "https://rollcall.uni.example/attendance";
    let sso = Sso::start_with(&[], &[("ROLLCALL_PUBLIC_URL", public)]).await;
    let start = sso.app.client.get(sso.app.url("/api/v1/auth/oidc/uni/start")).send().await.unwrap();
    assert_eq!(start.status().as_u16(), 302);
    let location = start.headers().get(LOCATION).unwrap().to_str().unwrap();
    let expected = format!("{public}/api/v1/auth/oidc/uni/callback");
    assert_eq!(param(location, "redirect_uri").as_deref(), Some(expected.as_str()));
    let cookie = start.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/attendance/api/v1/auth/oidc/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
}

#[tokio::test]
async fn the_claims_that_give_username_name_number_and_role_are_configuration() {
    let mapping = [
        ("ROLLCALL_OIDC_UNI_USERNAME_CLAIM", "nickname"),
        ("ROLLCALL_OIDC_UNI_NAME_CLAIM", "given_name"),
        ("ROLLCALL_OIDC_UNI_STUDENT_NUMBER_CLAIM", "student_number"),
        ("ROLLCALL_OIDC_UNI_ROLE_CLAIM", "groups"),
        ("ROLLCALL_OIDC_UNI_TEACHER_VALUES", "faculty"),
        ("ROLLCALL_OIDC_UNI_STUDENT_VALUES", "undergrad,postgrad"),
    ];
    let sso = Sso::start_with(&[], &mapping).await;
    // The default claims say otherwise: only the configured ones count.
    sso.person(
        "gil",
        json!(["teacher"]),
        json!({"nickname": "g.lopez", "given_name": "Gil", "groups": ["staff", "postgrad"], "student_number": "P77"}),
    )
    .await;
    let user = sso.log_in("gil").await["user"].clone();
    assert_eq!((user["username"].as_str(), user["real_name"].as_str()), (Some("g.lopez"), Some("Gil")));
    assert_eq!((user["role"].as_str(), user["student_number"].as_str()), (Some("student"), Some("P77")));
}

//! Single sign-on (API v2 section 6) against a real OpenID provider (`tests/oidc-provider`,
//! one per test), driven as a browser would: following redirects, keeping cookies, and
//! submitting the provider's login form.

mod accounts;
mod exchange;
mod flow;
mod keys;
mod refusals;

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use reqwest::header::LOCATION;
use rollcall::config::Settings;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, spawn_app_at};

#[path = "../support/oidc.rs"]
mod oidc;
pub use oidc::{CLIENT_ID, CLIENT_SECRET, TestProvider};

pub const SPA: &str = "http://spa.test/app/";

/// A rollcall server with the provider `uni` configured, and that provider.
pub struct Sso {
    pub app: TestApp,
    pub provider: TestProvider,
}

/// Settings with `uni` at `issuer`, mapped the way the tests' accounts are made, plus `extra`.
pub fn settings(issuer: &str, extra: &[(&str, &str)]) -> Settings {
    let base = [
        ("ROLLCALL_BIND", "127.0.0.1:0".to_owned()),
        ("ROLLCALL_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROLLCALL_SPA_URL", SPA.to_owned()),
        ("ROLLCALL_OIDC_PROVIDERS", "uni".to_owned()),
        ("ROLLCALL_OIDC_UNI_NAME", "University login".to_owned()),
        ("ROLLCALL_OIDC_UNI_ISSUER", issuer.to_owned()),
        ("ROLLCALL_OIDC_UNI_CLIENT_ID", CLIENT_ID.to_owned()),
        ("ROLLCALL_OIDC_UNI_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("ROLLCALL_OIDC_UNI_STUDENT_NUMBER_CLAIM", "student_number".to_owned()),
        ("ROLLCALL_OIDC_UNI_ROLE_CLAIM", "roles".to_owned()),
        ("ROLLCALL_OIDC_UNI_TEACHER_VALUES", "teacher".to_owned()),
        ("ROLLCALL_OIDC_UNI_STUDENT_VALUES", "student".to_owned()),
    ];
    let vars: Vec<(String, String)> = base
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Settings::from_lookup(|name| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("valid single sign-on settings")
}

impl Sso {
    pub async fn start() -> Self {
        Self::start_with(&[], &[]).await
    }

    /// `provider_env` configures the test provider, `extra` rollcall.
    pub async fn start_with(provider_env: &[(&str, &str)], extra: &[(&str, &str)]) -> Self {
        let provider = TestProvider::start_with(provider_env).await;
        // The provider's tokens carry the real time; the manual clock starts there.
        let app = spawn_app_at(settings(&provider.issuer, extra), Utc::now()).await;
        Self { app, provider }
    }

    /// Another rollcall instance on the same database and clock, behind the same public
    /// URL (the first instance's address) as a load balancer would put it.
    pub async fn replica(&self) -> TestApp {
        let public = [("ROLLCALL_PUBLIC_URL", self.app.address.as_str())];
        self.app.replica_with(settings(&self.provider.issuer, &public)).await
    }

    /// A test account at the provider (password `<login>-password`).
    pub async fn person(&self, login: &str, roles: Value, extra: Value) -> Value {
        let mut account = json!({
            "sub": format!("sub-{login}"),
            "password": format!("{login}-password"),
            "preferred_username": login,
            "name": format!("{login} Person"),
            "email": format!("{login}@uni.test"),
            "email_verified": true,
            "roles": roles,
        });
        account.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        self.provider.account(account.clone()).await;
        account
    }

    /// A whole sign-in in a new browser: the login code, or the login error.
    pub async fn sign_in(&self, login: &str) -> Result<String, String> {
        Browser::new().sign_in(&self.app, login).await
    }

    /// A whole sign-in, then the code exchanged: the login answer.
    pub async fn log_in(&self, login: &str) -> Value {
        let code = self
            .sign_in(login)
            .await
            .unwrap_or_else(|error| panic!("{login}: {error}\n{}", self.provider.log()));
        exchange(&self.app, &code).await
    }

    /// Counts of rows single sign-on writes: users, identities.
    pub fn counts(&self) -> (i64, i64) {
        use diesel::prelude::*;
        use rollcall::schema::{oidc_identities, users};
        let mut conn = self.app.pool.get().unwrap();
        (
            users::table.count().get_result(&mut conn).unwrap(),
            oidc_identities::table.count().get_result(&mut conn).unwrap(),
        )
    }
}

pub async fn exchange(app: &TestApp, code: &str) -> Value {
    let answer =
        app.send(Method::POST, "/api/v1/auth/exchange", None, Some(json!({"login_code": code}))).await;
    answer.ok(200).clone()
}

/// A browser: its own cookies for rollcall and the provider, redirects followed by hand so
/// every hop can be seen.
pub struct Browser {
    pub client: reqwest::Client,
}

/// Where a followed chain of redirects stopped.
pub struct Stop {
    pub url: String,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { client }
    }

    /// GETs `url` and follows redirects until `until` says stop (on the Location) or a page
    /// answers; returns the URL it stopped at, with the last answer.
    pub async fn follow(&self, mut url: String, until: impl Fn(&str) -> bool) -> Stop {
        for _ in 0..20 {
            let response = self.client.get(&url).send().await.unwrap();
            let Some(location) = response.headers().get(LOCATION) else {
                return Stop { url, body: response.text().await.unwrap() };
            };
            let next =
                reqwest::Url::parse(&url).unwrap().join(location.to_str().unwrap()).unwrap().to_string();
            if until(&next) {
                return Stop { url: next, body: String::new() };
            }
            url = next;
        }
        panic!("more than 20 redirects from {url}");
    }

    /// From rollcall's `/start` through the provider's login form, up to (not into)
    /// rollcall's callback: the callback URL the provider sent the browser to.
    pub async fn authorize(&self, app: &TestApp, login: &str) -> String {
        self.authorize_at(app, "uni", login).await
    }

    pub async fn authorize_at(&self, app: &TestApp, provider: &str, login: &str) -> String {
        let callback = app.url(&format!("/api/v1/auth/oidc/{provider}/callback"));
        let is_callback = |url: &str| url.starts_with(&callback) || url.starts_with(SPA);
        let start = app.url(&format!("/api/v1/auth/oidc/{provider}/start"));
        let page = self.follow(start, is_callback).await;
        if is_callback(&page.url) {
            return page.url; // The provider remembered this browser, or rollcall sent it to the SPA.
        }
        let action =
            form_action(&page.body).unwrap_or_else(|| panic!("no login form at {}: {}", page.url, page.body));
        let action = reqwest::Url::parse(&page.url).unwrap().join(&action).unwrap();
        let posted = self
            .client
            .post(action.clone())
            .form(&[("login", login), ("password", &format!("{login}-password"))])
            .send()
            .await
            .unwrap();
        let location = posted
            .headers()
            .get(LOCATION)
            .unwrap_or_else(|| panic!("login as {login} refused"))
            .to_str()
            .unwrap();
        let next = action.join(location).unwrap().to_string();
        if is_callback(&next) {
            return next;
        }
        self.follow(next, is_callback).await.url
    }

    /// Visits a callback URL: what rollcall put in the SPA's fragment.
    pub async fn land(&self, callback: &str) -> Result<String, String> {
        let response = self.client.get(callback).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302, "callback answered {}", response.status());
        fragment(response.headers().get(LOCATION).unwrap().to_str().unwrap())
    }

    /// A whole sign-in: the login code, or the login error.
    pub async fn sign_in(&self, app: &TestApp, login: &str) -> Result<String, String> {
        let callback = self.authorize(app, login).await;
        if callback.starts_with(SPA) {
            return fragment(&callback);
        }
        self.land(&callback).await
    }
}

/// `#login_code=…` → `Ok(code)`, `#login_error=…` → `Err(error)`; the URL must be the SPA's.
pub fn fragment(location: &str) -> Result<String, String> {
    let fragment = location.strip_prefix(SPA).and_then(|rest| rest.strip_prefix('#'));
    let fragment = fragment.unwrap_or_else(|| panic!("not a redirect to the SPA: {location}"));
    if let Some(code) = fragment.strip_prefix("login_code=") {
        Ok(code.to_owned())
    } else if let Some(error) = fragment.strip_prefix("login_error=") {
        Err(error.to_owned())
    } else {
        panic!("unexpected fragment: {location}")
    }
}

fn form_action(html: &str) -> Option<String> {
    let start = html.find("action=\"")? + "action=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&#47;", "/"))
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

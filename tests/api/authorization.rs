//! The authorization matrix: every route of the OpenAPI document, called by an anonymous
//! client, an admin, the course's teacher, another teacher, an enrolled student and a
//! student of another course. Refused callers get exactly the documented answer (401
//! `unauthorized` without a token, 403 `forbidden` with one), a missing course or lesson is
//! 404 `not_found`, and allowed callers get past authorization. A route in the document
//! without a row here fails the test, so a new route cannot ship without deciding who may
//! call it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::fixtures::{Class, FIXTURE_SESSIONS};
use crate::helpers::{PASSWORD, TestApp, spawn_app_with};
use rollcall::domain::user::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Admin,
    Owner,
    OtherTeacher,
    Student,
    OtherStudent,
}

use Who::*;

const CALLERS: [Who; 6] = [Anonymous, Admin, Owner, OtherTeacher, Student, OtherStudent];
const PUBLIC: &[Who] = &CALLERS;
const SIGNED_IN: &[Who] = &[Admin, Owner, OtherTeacher, Student, OtherStudent];
const ADMIN: &[Who] = &[Admin];
const TEACHERS: &[Who] = &[Owner, OtherTeacher];
const STUDENTS: &[Who] = &[Student, OtherStudent];
const MEMBERS: &[Who] = &[Admin, Owner, Student];
const STAFF: &[Who] = &[Admin, Owner];
const OWNER: &[Who] = &[Owner];

struct Row {
    method: &'static str,
    path: &'static str,
    allowed: &'static [Who],
    body: fn(&World) -> Option<Value>,
}

const fn row(
    method: &'static str,
    path: &'static str,
    allowed: &'static [Who],
    body: fn(&World) -> Option<Value>,
) -> Row {
    Row { method, path, allowed, body }
}

fn none(_: &World) -> Option<Value> {
    None
}

const MATRIX: &[Row] = &[
    row("POST", "/api/v1/auth/login", PUBLIC, |w| {
        Some(json!({"username": format!("{}.teacher", w.name), "password": PASSWORD}))
    }),
    row("POST", "/api/v1/auth/refresh", PUBLIC, |w| {
        Some(json!({"refresh_token": w.refresh_tokens.lock().unwrap().pop()}))
    }),
    row("POST", "/api/v1/auth/activate", PUBLIC, |w| {
        let (username, code) = w.activations.lock().unwrap().pop().unwrap();
        Some(json!({"username": username, "activation_code": code, "new_password": "a new password"}))
    }),
    row("GET", "/api/v1/auth/providers", PUBLIC, none),
    // Browser navigations: a redirect for everyone (here to the SPA, as the provider is down).
    row("GET", "/api/v1/auth/oidc/{provider}/start", PUBLIC, none),
    row("GET", "/api/v1/auth/oidc/{provider}/callback", PUBLIC, none),
    row("POST", "/api/v1/auth/exchange", PUBLIC, |w| {
        Some(json!({"login_code": w.login_codes.lock().unwrap().pop()}))
    }),
    row("POST", "/api/v1/me/password", SIGNED_IN, |_| {
        Some(json!({"current_password": PASSWORD, "new_password": "a new password"}))
    }),
    row("GET", "/api/v1/me/sessions", SIGNED_IN, none),
    row("DELETE", "/api/v1/me/sessions/{session_id}", SIGNED_IN, none),
    row("POST", "/api/v1/auth/logout", SIGNED_IN, none),
    row("POST", "/api/v1/users/import", ADMIN, |_| Some(json!({"users": []}))),
    row("GET", "/api/v1/users/{user_id}", ADMIN, none),
    row("PATCH", "/api/v1/users/{user_id}", ADMIN, |_| Some(json!({"real_name": "Renamed"}))),
    row("POST", "/api/v1/users/{user_id}/activation", ADMIN, none),
    row("GET", "/api/v1/me", SIGNED_IN, none),
    row("PATCH", "/api/v1/me", SIGNED_IN, |_| Some(json!({"real_name": "Renamed"}))),
    row("GET", "/api/v1/me/attendance", STUDENTS, none),
    row("GET", "/api/v1/me/courses/attendance", STUDENTS, none),
    row("GET", "/api/v1/users", ADMIN, none),
    row("POST", "/api/v1/users", ADMIN, |w| {
        Some(
            json!({"username": format!("{}.new", w.name), "password": "long enough pw", "role": "teacher", "real_name": "New"}),
        )
    }),
    row("GET", "/api/v1/courses", SIGNED_IN, none),
    row("POST", "/api/v1/courses", TEACHERS, |_| Some(json!({"title": "Another course"}))),
    row("GET", "/api/v1/courses/{course_id}", MEMBERS, none),
    row("PATCH", "/api/v1/courses/{course_id}", OWNER, |_| Some(json!({"time_zone": "Europe/Vienna"}))),
    row("GET", "/api/v1/courses/{course_id}/students", STAFF, none),
    row("POST", "/api/v1/courses/{course_id}/students", OWNER, |w| {
        Some(json!({"usernames": [w.outsider_name]}))
    }),
    row("DELETE", "/api/v1/courses/{course_id}/students/{user_id}", OWNER, none),
    row("GET", "/api/v1/courses/{course_id}/lessons", MEMBERS, none),
    row("POST", "/api/v1/courses/{course_id}/lessons", OWNER, |_| Some(json!({"title": "Another lesson"}))),
    row("POST", "/api/v1/courses/{course_id}/lessons/series", OWNER, |_| {
        Some(json!({"title": "L{n}", "first_date": "2026-12-01", "until": "2026-12-08", "weekdays": ["tue"],
                    "start_time": "09:00", "duration_minutes": 60}))
    }),
    row("GET", "/api/v1/courses/{course_id}/attendance", STAFF, none),
    row("GET", "/api/v1/lessons/{lesson_id}", MEMBERS, none),
    row("PATCH", "/api/v1/lessons/{lesson_id}", OWNER, |_| Some(json!({"title": "Renamed"}))),
    row("DELETE", "/api/v1/lessons/{lesson_id}", OWNER, none),
    row("POST", "/api/v1/lessons/{lesson_id}/checkin/open", OWNER, |_| Some(json!({}))),
    row("POST", "/api/v1/lessons/{lesson_id}/checkin/close", OWNER, none),
    row("GET", "/api/v1/lessons/{lesson_id}/checkin/code", OWNER, none),
    row("GET", "/api/v1/lessons/{lesson_id}/checkin/qr.svg", STAFF, none),
    row("GET", "/api/v1/lessons/{lesson_id}/attendance", STAFF, none),
    row("PUT", "/api/v1/lessons/{lesson_id}/attendance/{student_id}", OWNER, |_| {
        Some(json!({"status": "excused"}))
    }),
    row("POST", "/api/v1/lessons/{lesson_id}/attendance/bulk", OWNER, |_| Some(json!({"status": "excused"}))),
    row("GET", "/api/v1/lessons/{lesson_id}/attendance/{student_id}/history", STAFF, none),
    row("POST", "/api/v1/checkins", STUDENTS, |_| Some(json!({"code": "000000"}))),
    row("POST", "/api/v1/ws-tickets", STAFF, |w| Some(json!({"lesson_id": w.class.lesson_id}))),
    row("GET", "/api/v1/lessons/{lesson_id}/checkin/live", STAFF, none),
    row("GET", "/healthz", PUBLIC, none),
    row("GET", "/readyz", PUBLIC, none),
    row("GET", "/metrics", PUBLIC, none),
];

/// A course with a lesson and an enrolled student, strangers to it, and an admin of its
/// own (routes that revoke the caller's session must not revoke the app's admin).
struct World {
    name: String,
    class: Class,
    other: Class,
    outsider_name: String,
    admin: (i64, String),
    /// For `POST /auth/refresh`: one refresh token per caller.
    refresh_tokens: Mutex<Vec<String>>,
    /// For `POST /auth/activate`: one (username, activation code) per caller.
    activations: Mutex<Vec<(String, String)>>,
    /// For `POST /auth/exchange`: one login code per caller.
    login_codes: Mutex<Vec<String>>,
}

impl World {
    async fn new(app: &TestApp, n: usize, route: &str) -> Self {
        let name = format!("w{n}");
        let class = app.class(&name, 1).await;
        let other = app.class(&format!("{name}x"), 1).await;
        let admin = app.create_user_directly(&format!("{name}.admin"), Role::Admin).await;
        let mut refresh_tokens = Vec::new();
        let mut activations = Vec::new();
        let mut login_codes = Vec::new();
        for caller in 0..CALLERS.len() {
            if route == "/api/v1/auth/exchange" {
                use rollcall::clock::Clock;
                let mut conn = app.pool.get().unwrap();
                login_codes
                    .push(rollcall::auth::sso::issue(&mut conn, class.teacher_id, app.clock.now()).unwrap());
            }
            if route == "/api/v1/auth/refresh" {
                let login = app.login(&format!("{name}.teacher"), PASSWORD).await;
                refresh_tokens.push(login.ok(200)["refresh_token"].as_str().unwrap().to_owned());
            }
            if route == "/api/v1/auth/activate" {
                let username = format!("{name}.new{caller}");
                let (id, _) = app.create_user_directly(&username, Role::Student).await;
                let issued = app.post(&format!("/api/v1/users/{id}/activation"), &admin.1, json!({})).await;
                activations.push((username, issued.ok(201)["activation_code"].as_str().unwrap().to_owned()));
            }
        }
        Self {
            outsider_name: format!("{name}x.s000"),
            name,
            class,
            other,
            admin,
            refresh_tokens: Mutex::new(refresh_tokens),
            activations: Mutex::new(activations),
            login_codes: Mutex::new(login_codes),
        }
    }

    /// The caller's session id (see `insert_users`).
    fn session_id(&self, who: Who) -> i64 {
        FIXTURE_SESSIONS
            + match who {
                Anonymous => 1,
                Admin => self.admin.0,
                Owner => self.class.teacher_id,
                OtherTeacher => self.other.teacher_id,
                Student => self.class.students[0].id,
                OtherStudent => self.other.students[0].id,
            }
    }

    fn token<'a>(&'a self, _app: &'a TestApp, who: Who) -> Option<&'a str> {
        match who {
            Anonymous => None,
            Admin => Some(&self.admin.1),
            Owner => Some(&self.class.teacher),
            OtherTeacher => Some(&self.other.teacher),
            Student => Some(&self.class.students[0].token),
            OtherStudent => Some(&self.other.students[0].token),
        }
    }

    fn path(&self, pattern: &str, existing: bool) -> String {
        let (course, lesson) =
            if existing { (self.class.course_id, self.class.lesson_id) } else { (999_999_999, 999_999_999) };
        let student = self.class.students[0].id.to_string();
        pattern
            .replace("{course_id}", &course.to_string())
            .replace("{lesson_id}", &lesson.to_string())
            .replace("{student_id}", &student)
            .replace("{user_id}", &student)
            .replace("{provider}", "uni")
    }
}

/// The status a call gets: over HTTP, or for the live route as a WebSocket upgrade.
async fn call(app: &TestApp, world: &World, row: &Row, who: Who, path: &str) -> (u16, Option<String>) {
    let token = world.token(app, who);
    if row.path.ends_with("/checkin/live") {
        let lesson_id: i64 = path.split('/').nth(4).unwrap().parse().unwrap();
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        return match app.connect_live(lesson_id, "", &headers).await {
            Ok(_) => (101, None),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
                let code =
                    body.and_then(|b| serde_json::from_str::<Value>(&b).ok()).map(|v| v["code"].to_string());
                (response.status().as_u16(), code.map(|c| c.trim_matches('"').to_owned()))
            }
            Err(other) => panic!("live stream: {other}"),
        };
    }
    let method = Method::from_bytes(row.method.as_bytes()).unwrap();
    let path = path.replace("{session_id}", &world.session_id(who).to_string());
    let response = app.send(method, &path, token, (row.body)(world)).await;
    let code = response.body["code"].as_str().map(str::to_owned);
    (response.status.as_u16(), code)
}

#[tokio::test]
async fn every_route_refuses_exactly_the_callers_it_must() {
    let doc = serde_json::to_value(rollcall::startup::document()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(|m| (m.to_uppercase(), path.clone())))
        .collect();
    let rows: BTreeSet<(String, String)> =
        MATRIX.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let missing: Vec<_> = documented.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&documented).collect();
    assert!(missing.is_empty(), "routes without a row in the authorization matrix: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for routes that do not exist: {stale:?}");

    // One identity provider, configured but unreachable: its routes exist and answer.
    let mut settings = crate::helpers::settings();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let vars = [
        ("ROLLCALL_OIDC_PROVIDERS", "uni".to_owned()),
        ("ROLLCALL_OIDC_UNI_ISSUER", format!("http://{closed}")),
        ("ROLLCALL_OIDC_UNI_CLIENT_ID", "rollcall".to_owned()),
    ];
    settings.sso = rollcall::config::sso::SsoSettings::from_lookup(|name| {
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let app = spawn_app_with(settings).await;
    let mut wrong = Vec::new();
    for (n, row) in MATRIX.iter().enumerate() {
        // A fresh course per route: allowed calls may change it (unenrol, open check-in).
        let world = World::new(&app, n, row.path).await;
        let path = world.path(row.path, true);
        // Refused callers first, so nothing they might have changed is hidden by an allowed call.
        let (allowed, refused): (Vec<Who>, Vec<Who>) =
            CALLERS.iter().partition(|who| row.allowed.contains(who));
        for who in refused {
            let expected = if who == Anonymous { (401, "unauthorized") } else { (403, "forbidden") };
            let (status, code) = call(&app, &world, row, who, &path).await;
            if (status, code.as_deref()) != (expected.0, Some(expected.1)) {
                wrong.push(format!(
                    "{} {} as {who:?}: {status} {code:?}, expected {expected:?}",
                    row.method, row.path
                ));
            }
        }
        for &who in &allowed {
            let (status, code) = call(&app, &world, row, who, &path).await;
            if matches!(status, 401 | 403 | 404) || status >= 500 {
                wrong.push(format!(
                    "{} {} as {who:?}: {status} {code:?}, expected to be let through",
                    row.method, row.path
                ));
            }
        }
        if row.path.contains("{course_id}") || row.path.contains("{lesson_id}") {
            let who = allowed[0];
            let (status, code) = call(&app, &world, row, who, &world.path(row.path, false)).await;
            if (status, code.as_deref()) != (404, Some("not_found")) {
                wrong.push(format!(
                    "{} {} (missing) as {who:?}: {status} {code:?}, expected 404",
                    row.method, row.path
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
}

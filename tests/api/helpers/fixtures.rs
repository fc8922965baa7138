//! Users, classes and open lessons: made straight in the database where the test is not
//! about making them, and through the API otherwise.

use rollcall::auth::jwt::{TokenKeys, TokenUser};
use rollcall::clock::Clock;
use rollcall::db::DbPool;
use rollcall::domain::user::Role;
use serde_json::{Value, json};

use super::http::Response;
use super::{JWT_SECRET, PASSWORD, TestApp, start_time};

pub struct Class {
    pub teacher: String,
    pub teacher_id: i64,
    pub course_id: i64,
    pub lesson_id: i64,
    pub students: Vec<Student>,
}

pub struct Student {
    pub id: i64,
    pub token: String,
}

/// Where fixture sessions' ids start: a fixture user's session id is this plus the user's
/// id (what `TestApp::token` names), far above the ids logins take from the sequence.
pub const FIXTURE_SESSIONS: i64 = 1_000_000_000;

/// Inserts users with password `PASSWORD` (hashed once per test process), each with a live
/// session of id `FIXTURE_SESSIONS + user id`; returns the user ids.
pub async fn insert_users(pool: &DbPool, usernames: &[String], role: Role) -> Vec<i64> {
    use diesel::prelude::*;
    use rollcall::schema::users;
    static HASH: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| rollcall::auth::password::hash(PASSWORD).unwrap());
    let rows: Vec<_> = usernames
        .iter()
        .map(|name| {
            (
                users::username.eq(name.clone()),
                users::password_hash.eq(HASH.clone()),
                users::role.eq(role),
                users::real_name.eq(format!("Real {name}")),
                users::student_number.eq((role == Role::Student).then(|| format!("n-{name}"))),
                users::created_at.eq(start_time()),
            )
        })
        .collect();
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        let ids: Vec<i64> = diesel::insert_into(users::table)
            .values(&rows)
            .returning(users::id)
            .get_results(&mut conn)
            .unwrap();
        insert_sessions(&mut conn, &ids);
        ids
    })
    .await
    .unwrap()
}

/// A live session for each user, of id `FIXTURE_SESSIONS + user id`.
pub fn insert_sessions(conn: &mut diesel::PgConnection, user_ids: &[i64]) {
    use diesel::prelude::*;
    diesel::sql_query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) OVERRIDING SYSTEM VALUE \
         SELECT $3 + id, id, $2, $2, $2 + interval '30 days' FROM unnest($1::int8[]) AS id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(user_ids)
    .bind::<diesel::sql_types::Timestamptz, _>(start_time())
    .bind::<diesel::sql_types::BigInt, _>(FIXTURE_SESSIONS)
    .execute(conn)
    .unwrap();
}

impl TestApp {
    /// Creates a user straight in the database (password `PASSWORD`), returning (id, token).
    pub async fn create_user_directly(&self, username: &str, role: Role) -> (i64, String) {
        let id = insert_users(&self.pool, &[username.to_owned()], role).await[0];
        (id, self.token(id, role, username))
    }

    /// An access token as login would issue it, without the password hashing, for the
    /// session `insert_users` made.
    pub fn token(&self, id: i64, role: Role, username: &str) -> String {
        let keys = TokenKeys::new(
            JWT_SECRET.as_bytes(),
            "rollcall",
            "rollcall-api",
            std::time::Duration::from_secs(3600),
        );
        let now = self.clock.now();
        let user = TokenUser { id, role, username, session_id: FIXTURE_SESSIONS + id };
        keys.issue(user, now, now + chrono::Duration::hours(1)).unwrap()
    }

    /// A teacher with a course of `students` enrolled students and one lesson.
    pub async fn class(&self, name: &str, students: usize) -> Class {
        let (teacher_id, teacher) =
            self.create_user_directly(&format!("{name}.teacher"), Role::Teacher).await;
        let course = self.post("/api/v1/courses", &teacher, json!({"title": format!("{name} course")})).await;
        let course_id = course.ok(201)["id"].as_i64().unwrap();
        let lesson = self
            .post(&format!("/api/v1/courses/{course_id}/lessons"), &teacher, json!({"title": "Lesson 1"}))
            .await;
        let lesson_id = lesson.ok(201)["id"].as_i64().unwrap();
        let usernames: Vec<String> = (0..students).map(|i| format!("{name}.s{i:03}")).collect();
        let ids = insert_users(&self.pool, &usernames, Role::Student).await;
        let students: Vec<Student> = ids
            .iter()
            .zip(&usernames)
            .map(|(id, username)| Student { id: *id, token: self.token(*id, Role::Student, username) })
            .collect();
        if !students.is_empty() {
            let enrolled = self
                .post(
                    &format!("/api/v1/courses/{course_id}/students"),
                    &teacher,
                    json!({"usernames": usernames}),
                )
                .await;
            assert_eq!(enrolled.ok(200)["enrolled"].as_array().unwrap().len(), students.len());
        }
        Class { teacher, teacher_id, course_id, lesson_id, students }
    }

    /// Opens check-in for the class's lesson with these settings; returns the state.
    pub async fn open_checkin(&self, class: &Class, settings: Value) -> Value {
        self.open_lesson(&class.teacher, class.lesson_id, settings).await
    }

    pub async fn open_lesson(&self, teacher: &str, lesson_id: i64, settings: Value) -> Value {
        let response =
            self.post(&format!("/api/v1/lessons/{lesson_id}/checkin/open"), teacher, settings).await;
        response.ok(200).clone()
    }

    /// The code the teacher's screen shows now.
    pub async fn current_code(&self, class: &Class) -> String {
        self.code_of(&class.teacher, class.lesson_id).await
    }

    pub async fn code_of(&self, teacher: &str, lesson_id: i64) -> String {
        let frame = self.get(&format!("/api/v1/lessons/{lesson_id}/checkin/code"), teacher).await;
        frame.ok(200)["code"].as_str().unwrap().to_owned()
    }

    pub async fn check_in(&self, student: &Student, code: &str) -> Response {
        self.post("/api/v1/checkins", &student.token, json!({"code": code})).await
    }

    /// Creates a user through `POST /users` as the admin, returning (id, token).
    pub async fn create_user(&self, username: &str, role: &str) -> (i64, String) {
        let mut body = json!({"username": username, "password": PASSWORD, "role": role, "real_name": format!("Real {username}")});
        if role == "student" {
            body["student_number"] = json!(format!("n-{username}"));
        }
        let created = self.post("/api/v1/users", &self.admin_token, body).await;
        let id = created.ok(201)["id"].as_i64().unwrap();
        (id, self.token_for(username).await)
    }
}

//! Lesson 1 with its teacher and students written straight into the tables, and what the
//! check-in burst tests (`faults`, `shutdown`) do with it.

use std::time::Duration;

use serde_json::json;

use crate::call;

/// A teacher (id 1), a course with lesson 1, and `count` enrolled students (ids 2…), each
/// with a session of id 1,000,000,000 + theirs, written directly; returns their tokens.
pub fn seed_lesson(url: &str, secret: &str, count: i64) -> (String, Vec<(i64, String)>) {
    use diesel::prelude::*;
    use rollcall::auth::jwt::{TokenKeys, TokenUser};
    use rollcall::domain::user::Role;
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        &format!(
            "INSERT INTO users (username, password_hash, role, real_name, created_at) VALUES \
             ('seed.teacher', 'x', 'teacher', 'T', now()); \
             INSERT INTO users (username, password_hash, role, real_name, student_number, created_at) \
             SELECT 'seed.s' || n, 'x', 'student', 'S' || n, 'c' || n, now() FROM generate_series(1, {count}) n; \
             INSERT INTO courses (title, teacher_id, created_at) SELECT 'C', id, now() FROM users WHERE username = 'seed.teacher'; \
             INSERT INTO lessons (course_id, title, created_at) SELECT id, 'L', now() FROM courses; \
             INSERT INTO enrollments (course_id, student_id, enrolled_at) \
             SELECT c.id, u.id, now() FROM courses c, users u WHERE u.role = 'student'; \
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) OVERRIDING SYSTEM VALUE \
             SELECT 1000000000 + id, id, now(), now(), now() + interval '1 day' FROM users"
        ),
    )
    .unwrap();
    let keys = TokenKeys::new(secret.as_bytes(), "rollcall", "rollcall-api", Duration::from_secs(3600));
    let now = chrono::Utc::now();
    let issue = |id: i64, role: Role, username: &str| {
        let user = TokenUser { id, role, username, session_id: 1_000_000_000 + id };
        keys.issue(user, now, now + chrono::Duration::hours(1)).unwrap()
    };
    let teacher = issue(1, Role::Teacher, "seed.teacher");
    let students =
        (2..2 + count).map(|id| (id, issue(id, Role::Student, &format!("seed.s{}", id - 1)))).collect();
    (teacher, students)
}

/// Opens check-in on lesson 1 for an hour (one code for five minutes) and returns the code.
pub async fn open_lesson_one(base: &str, teacher: &str) -> String {
    let opened = call(
        reqwest::Method::POST,
        format!("{base}/api/v1/lessons/1/checkin/open"),
        Some(teacher),
        json!({"rotation_seconds": 300, "duration_seconds": 3600}),
    )
    .await;
    assert_eq!(opened["state"], "open");
    let frame =
        call(reqwest::Method::GET, format!("{base}/api/v1/lessons/1/checkin/code"), Some(teacher), json!({}))
            .await;
    frame["code"].as_str().unwrap().to_owned()
}

/// The students with an attendance row for lesson 1.
pub fn stored_check_ins(url: &str) -> std::collections::BTreeSet<i64> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        student_id: i64,
    }
    let mut conn = PgConnection::establish(url).unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT student_id FROM attendance WHERE lesson_id = 1").load(&mut conn).unwrap();
    rows.into_iter().map(|r| r.student_id).collect()
}

/// One student's check-in, as the client saw it.
pub async fn check_in_once(client: &reqwest::Client, base: &str, token: &str, code: &str) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let status = client
        .post(format!("{base}/api/v1/checkins"))
        .bearer_auth(token)
        .json(&json!({"code": code}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

//! `rollcall demo`: an admin, a teacher, 30 students, a course and a lesson to try the API
//! with. Idempotent: existing demo records are kept, missing ones created.

use std::fmt::Write;

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;

use crate::auth::password::Hasher;
use crate::courses::queries as courses;
use crate::db::{self, DbPool};
use crate::domain::lesson::LessonFields;
use crate::domain::user::Role;
use crate::domain::zone::Zone;
use crate::lessons::queries as lessons;
use crate::schema::{courses as courses_table, lessons as lessons_table, users};

pub const ADMIN: (&str, &str) = ("demo.admin", "demo-admin-pw");
pub const TEACHER: (&str, &str) = ("demo.teacher", "demo-teacher-pw");
pub const STUDENT_PASSWORD: &str = "demo-student-pw";
pub const STUDENTS: usize = 30;
const COURSE_CODE: &str = "DEMO101";

const NAMES: [&str; STUDENTS] = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "John McCarthy",
    "Frances Allen",
    "Ken Thompson",
    "Radia Perlman",
    "Tony Hoare",
    "Shafi Goldwasser",
    "Niklaus Wirth",
    "Adele Goldberg",
    "Leslie Lamport",
    "Sophie Wilson",
    "Dennis Ritchie",
    "Hedy Lamarr",
    "Claude Shannon",
    "Katherine Johnson",
    "Edgar Codd",
    "Jean Bartik",
    "Robin Milner",
    "Mary Shaw",
    "Peter Naur",
    "Ivan Sutherland",
    "Lynn Conway",
    "Zoë Ó Briain",
    "José Müller, Jr.",
];

pub fn student_username(n: usize) -> String {
    format!("demo.student{n:02}")
}

/// Creates whatever of the demo set is missing and returns the credentials to print.
pub async fn seed(pool: &DbPool, hasher: &Hasher) -> anyhow::Result<String> {
    let (admin, teacher, student) = tokio::try_join!(
        hasher.hash(ADMIN.1.to_owned()),
        hasher.hash(TEACHER.1.to_owned()),
        hasher.hash(STUDENT_PASSWORD.to_owned()),
    )?;
    let hashes = [admin, teacher, student];
    let (course_id, lesson_id) = db::run(pool, move |conn| -> anyhow::Result<_> {
        Ok(conn.transaction(|conn| insert_missing(conn, &hashes))?)
    })
    .await
    .context("cannot seed the demo data")?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Demo data is ready (for trying rollcall out; never use these accounts in production)."
    );
    let _ = writeln!(out, "  admin:    {} / {}", ADMIN.0, ADMIN.1);
    let _ = writeln!(out, "  teacher:  {} / {}", TEACHER.0, TEACHER.1);
    let _ = writeln!(
        out,
        "  students: {} … {} / {}",
        student_username(1),
        student_username(STUDENTS),
        STUDENT_PASSWORD
    );
    let _ = writeln!(out, "  course {course_id} ({COURSE_CODE}), lesson {lesson_id}");
    out.push_str(SSO_STEPS);
    Ok(out)
}

/// How to try single sign-on with the test provider in `tests/oidc-provider/` (the README's
/// "Try it locally" in short).
const SSO_STEPS: &str = "\
To try single sign-on locally (README: \"Try it locally\"; needs Node.js >= 20.18):
  1. PORT=9000 tests/oidc-provider/run.sh
  2. start rollcall with ROLLCALL_OIDC_PROVIDERS=uni ROLLCALL_OIDC_UNI_ISSUER=http://127.0.0.1:9000
     ROLLCALL_OIDC_UNI_CLIENT_ID=rollcall ROLLCALL_OIDC_UNI_CLIENT_SECRET=rollcall-test-secret
     ROLLCALL_OIDC_UNI_ROLE_CLAIM=roles ROLLCALL_OIDC_UNI_TEACHER_VALUES=teacher
     ROLLCALL_OIDC_UNI_STUDENT_VALUES=student ROLLCALL_SPA_URL=http://127.0.0.1:8080/signed-in
  3. open http://127.0.0.1:8080/api/v1/auth/oidc/uni/start, sign in as alice / alice-password
  4. POST the login_code from the address bar to /api/v1/auth/exchange
";

fn insert_missing(
    conn: &mut PgConnection,
    [admin_hash, teacher_hash, student_hash]: &[String; 3],
) -> QueryResult<(i64, i64)> {
    let now = Utc::now();
    let mut people = vec![
        (ADMIN.0.to_owned(), admin_hash, Role::Admin, "Demo Admin".to_owned(), None),
        (TEACHER.0.to_owned(), teacher_hash, Role::Teacher, "Demo Teacher".to_owned(), None),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        let n = i + 1;
        people.push((
            student_username(n),
            student_hash,
            Role::Student,
            (*name).to_owned(),
            Some(format!("D{n:04}")),
        ));
    }
    let rows: Vec<_> = people
        .iter()
        .map(|(username, hash, role, real_name, number)| {
            (
                users::username.eq(username),
                users::password_hash.eq(*hash),
                users::role.eq(*role),
                users::real_name.eq(real_name),
                users::student_number.eq(number.as_deref()),
                users::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(users::table).values(&rows).on_conflict_do_nothing().execute(conn)?;

    let teacher_id: i64 = users::table.filter(users::username.eq(TEACHER.0)).select(users::id).first(conn)?;
    let existing_course: Option<i64> = courses_table::table
        .filter(courses_table::teacher_id.eq(teacher_id).and(courses_table::code.eq(COURSE_CODE)))
        .select(courses_table::id)
        .first(conn)
        .optional()?;
    let course_id = match existing_course {
        Some(id) => id,
        None => {
            courses::insert(
                conn,
                "Demo Course: Introduction to Computing",
                Some(COURSE_CODE),
                Zone::UTC,
                teacher_id,
                now,
            )?
            .id
        }
    };
    let student_names: Vec<String> = (1..=STUDENTS).map(student_username).collect();
    let student_ids: Vec<i64> = users::table
        .filter(users::username.eq_any(&student_names).and(users::role.eq(Role::Student)))
        .select(users::id)
        .load(conn)?;
    courses::enroll(conn, course_id, &student_ids, now)?;
    let existing_lesson: Option<i64> = lessons_table::table
        .filter(lessons_table::course_id.eq(course_id))
        .select(lessons_table::id)
        .order(lessons_table::id)
        .first(conn)
        .optional()?;
    let lesson_id = match existing_lesson {
        Some(id) => id,
        None => {
            let lesson = LessonFields {
                title: "Lesson 1: Welcome".into(),
                starts_at: Some(now),
                ends_at: None,
                cancelled: false,
                auto: None,
            };
            lessons::insert_many(conn, course_id, &[lesson], now)?.remove(0).id
        }
    };
    Ok((course_id, lesson_id))
}

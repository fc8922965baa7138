use crate::helpers::fixtures::Class;
use crate::helpers::http::metric;
use crate::helpers::{TestApp, settings, spawn_app, spawn_app_counting_queries, spawn_app_with};
use diesel::prelude::*;
use rollcall::clock::Clock;
use rollcall::domain::user::Role;
use rollcall::schema::{attendance, checkin_failures};
use serde_json::json;

/// A code that is none of the window's codes so far (brute-forced from the real ones).
async fn wrong_code(app: &TestApp, class: &Class) -> String {
    let current = app.current_code(class).await;
    (0..10u8).map(|d| d.to_string().repeat(current.len())).find(|c| *c != current).unwrap()
}

/// A class whose lesson is open for an hour with a code that lasts 5 minutes (so a wrong
/// code stays wrong while a test throttles it), and such a wrong code.
async fn class_with_wrong_code(app: &TestApp, students: usize) -> (Class, String) {
    let class = app.class("c", students).await;
    app.open_checkin(&class, json!({"rotation_seconds": 300, "duration_seconds": 3600})).await;
    let wrong = wrong_code(app, &class).await;
    (class, wrong)
}

/// Rejected codes recorded for the throttle: of one student, or of everyone (`None`).
fn failures_recorded(app: &TestApp, student_id: Option<i64>) -> i64 {
    let mut conn = app.pool.get().unwrap();
    let mut failures = checkin_failures::table.into_boxed();
    if let Some(student_id) = student_id {
        failures = failures.filter(checkin_failures::student_id.eq(student_id));
    }
    failures.count().get_result(&mut conn).unwrap()
}

fn attendance_rows(app: &TestApp, lesson_id: i64) -> i64 {
    let mut conn = app.pool.get().unwrap();
    attendance::table.filter(attendance::lesson_id.eq(lesson_id)).count().get_result(&mut conn).unwrap()
}

#[tokio::test]
async fn a_student_checks_in_with_the_current_code_once() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    app.advance(3);
    let code = app.current_code(&class).await;
    let first = app.check_in(&class.students[0], &code).await;
    let body = first.ok(201).clone();
    assert_eq!(body["lesson_id"], class.lesson_id);
    assert_eq!(body["course_id"], class.course_id);
    assert_eq!(body["lesson_title"], "Lesson 1");
    assert_eq!(body["course_title"], "c course");
    assert_eq!(body["status"], "present");
    assert_eq!(body["checked_in_at"], "2026-11-25T08:00:03Z");
    assert!(!first.text.contains(&code), "the code is never echoed to students");

    app.advance(1);
    let again = app.check_in(&class.students[0], &code).await;
    assert_eq!(again.ok(200), &body, "a repeat returns the stored record unchanged");
    assert_eq!(attendance_rows(&app, class.lesson_id), 1);
}

#[tokio::test]
async fn fifty_concurrent_check_ins_make_one_record_and_no_errors() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let attempts = (0..50).map(|_| app.check_in(&class.students[0], &code));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 49, "{statuses:?}");
    assert_eq!(attendance_rows(&app, class.lesson_id), 1);
}

#[tokio::test]
async fn a_burst_of_many_students_right_and_wrong_codes_and_repeats_settles_each_exactly() {
    let app = spawn_app().await;
    let class = app.class("burst", 60).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let wrong = wrong_code(&app, &class).await;
    // Students 0..40 send the right code (0..10 of them three times), 40..60 a wrong one:
    // all at once, so they share batches.
    let app = &app;
    let mut attempts = Vec::new();
    for (i, student) in class.students.iter().enumerate() {
        let repeats = if i < 10 { 3 } else { 1 };
        for _ in 0..repeats {
            let code = if i < 40 { code.clone() } else { wrong.clone() };
            attempts.push(async move { (i, app.check_in(student, &code).await.status.as_u16()) });
        }
    }
    let answers = futures_util::future::join_all(attempts).await;
    for i in 0..60 {
        let mine: Vec<u16> = answers.iter().filter(|(s, _)| *s == i).map(|(_, status)| *status).collect();
        let expected: Vec<u16> = match i {
            0..10 => vec![200, 200, 201],
            10..40 => vec![201],
            _ => vec![422],
        };
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected, "student {i}: {mine:?}");
    }
    assert_eq!(attendance_rows(app, class.lesson_id), 40);
    assert_eq!(failures_recorded(app, None), 20, "one failure recorded per wrong code");
}

#[tokio::test]
async fn check_ins_after_late_after_seconds_are_late() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({"late_after_seconds": 60, "rotation_seconds": 30})).await;
    app.advance(60);
    let on_time = app.current_code(&class).await;
    assert_eq!(app.check_in(&class.students[0], &on_time).await.ok(201)["status"], "present");
    app.advance(1);
    let code = app.current_code(&class).await;
    assert_eq!(app.check_in(&class.students[1], &code).await.ok(201)["status"], "late");
}

#[tokio::test]
async fn the_previous_code_works_for_the_grace_period_then_expires() {
    let app = spawn_app().await;
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    let old = app.current_code(&class).await;
    app.advance(14);
    app.check_in(&class.students[0], &old).await.ok(201);
    app.advance(1);
    let expired = app.check_in(&class.students[1], &old).await;
    expired.problem(422, "code_expired");
    assert!(!expired.text.contains(&old), "the code never appears in an error");
    app.advance(100);
    app.check_in(&class.students[2], &old).await.problem(422, "code_expired");
}

#[tokio::test]
async fn a_code_that_matches_nothing_is_invalid() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let wrong = wrong_code(&app, &class).await;
    app.check_in(&class.students[0], &wrong).await.problem(422, "invalid_code");
    app.check_in(&class.students[0], "not digits").await.problem(422, "invalid_code");
    app.post("/api/v1/checkins", &class.students[0].token, json!({"code": "  "}))
        .await
        .problem(422, "validation_failed");
    app.post("/api/v1/checkins", &class.students[0].token, json!({})).await.problem(422, "validation_failed");
    assert_eq!(attendance_rows(&app, class.lesson_id), 0);
}

#[tokio::test]
async fn a_valid_code_of_a_course_the_student_is_not_in_is_invalid() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let outsider = app.class("o", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&outsider.students[0], &code).await.problem(422, "invalid_code");
}

#[tokio::test]
async fn only_students_check_in() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    for token in [&class.teacher, &app.admin_token] {
        app.post("/api/v1/checkins", token, json!({"code": code})).await.problem(403, "forbidden");
    }
}

#[tokio::test]
async fn ten_wrong_codes_a_minute_throttle_every_attempt() {
    let app = spawn_app().await;
    let (class, wrong) = class_with_wrong_code(&app, 2).await;
    let student = &class.students[0];
    for _ in 0..10 {
        app.check_in(student, &wrong).await.problem(422, "invalid_code");
        app.advance(2);
    }
    let code = app.current_code(&class).await;
    let throttled = app.check_in(student, &code).await;
    throttled.problem(429, "too_many_attempts");
    assert_eq!(throttled.headers["retry-after"], "40");
    app.check_in(&class.students[1], &code).await.ok(201);

    app.advance(39);
    app.check_in(student, &code).await.problem(429, "too_many_attempts");
    app.advance(1);
    app.check_in(student, &code).await.ok(201);
    assert!(
        failures_recorded(&app, Some(student.id)) <= 10,
        "throttled attempts are not recorded as failures"
    );
}

#[tokio::test]
async fn expired_codes_count_toward_the_throttle() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({"rotation_seconds": 5})).await;
    let old = app.current_code(&class).await;
    app.advance(30);
    for _ in 0..10 {
        app.check_in(&class.students[0], &old).await.problem(422, "code_expired");
    }
    app.check_in(&class.students[0], &old).await.problem(429, "too_many_attempts");
}

#[tokio::test]
async fn client_details_are_stored_with_a_code_check_in() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let headers = [
        ("User-Agent", "StudentPhone/1.0"),
        ("X-Device-Id", "device-abc"),
        ("X-Forwarded-For", "203.0.113.50"),
    ];
    let body = json!({"code": code, "status": "excused", "student_id": 1});
    app.check_in_with(&class.students[0].token, body, &headers).await.ok(201);
    let mut conn = app.pool.get().unwrap();
    let stored: (Option<String>, Option<String>, Option<String>, String) = attendance::table
        .select((attendance::client_ip, attendance::user_agent, attendance::device_id, attendance::status))
        .first(&mut conn)
        .unwrap();
    // The peer is not a trusted proxy, so its X-Forwarded-For is ignored; server-controlled
    // fields in the body are ignored too.
    assert_eq!(
        stored,
        (
            Some("127.0.0.1".into()),
            Some("StudentPhone/1.0".into()),
            Some("device-abc".into()),
            "present".into()
        )
    );
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let mut trusting = settings();
    trusting.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = spawn_app_with(trusting).await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let headers = [("X-Forwarded-For", "198.51.100.1, 203.0.113.50")];
    app.check_in_with(&class.students[0].token, json!({"code": code}), &headers).await.ok(201);
    let mut conn = app.pool.get().unwrap();
    let ip: Option<String> = attendance::table.select(attendance::client_ip).first(&mut conn).unwrap();
    assert_eq!(ip.as_deref(), Some("203.0.113.50"));
}

#[tokio::test]
async fn a_malformed_device_id_is_a_bad_request() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let too_long = "x".repeat(200);
    let response = app
        .check_in_with(&class.students[0].token, json!({"code": code}), &[("X-Device-Id", &too_long)])
        .await;
    response.problem(400, "bad_request");
    assert_eq!(attendance_rows(&app, class.lesson_id), 0);
}

#[tokio::test]
async fn a_student_reads_their_own_history_newest_first() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let second = app
        .post(
            &format!("/api/v1/courses/{}/lessons", class.course_id),
            &class.teacher,
            json!({"title": "Lesson 2", "starts_at": "2026-12-01T09:00:00Z"}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    let other = app.class("o", 0).await;
    let _ = other;

    let history = app.get("/api/v1/me/attendance", &class.students[0].token).await;
    let items = history.ok(200).as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["lesson"]["id"], second);
    assert_eq!(items[0]["status"], "not_started");
    assert_eq!(items[1]["lesson"]["id"], class.lesson_id);
    assert_eq!(items[1]["status"], "present");
    assert_eq!(items[1]["checked_in_at"], "2026-11-25T08:00:00Z");
    assert_eq!(items[1]["course"], json!({"id": class.course_id, "title": "c course"}));

    let paged = app.get("/api/v1/me/attendance?limit=1&offset=1", &class.students[0].token).await;
    assert_eq!(paged.ok(200)[0]["lesson"]["id"], class.lesson_id);
    let filtered = app.get("/api/v1/me/attendance?course_id=999", &class.students[0].token).await;
    assert_eq!(filtered.ok(200).as_array().unwrap().len(), 0);
    app.get("/api/v1/me/attendance", &class.teacher).await.problem(403, "forbidden");
    app.get("/api/v1/me/attendance?limit=5000", &class.students[0].token)
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn concurrent_wrong_codes_on_two_instances_never_pass_the_throttle() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let (class, wrong) = class_with_wrong_code(&app, 1).await;
    let student = &class.students[0];
    let attempts = (0..30).map(|n| {
        let (instance, wrong) = (if n % 2 == 0 { &app } else { &replica }, wrong.clone());
        async move { instance.check_in(student, &wrong).await.status.as_u16() }
    });
    let mut answers = futures_util::future::join_all(attempts).await;
    answers.sort_unstable();
    assert_eq!(answers.iter().filter(|s| **s == 422).count(), 10, "{answers:?}");
    assert_eq!(answers.iter().filter(|s| **s == 429).count(), 20, "{answers:?}");
    assert_eq!(failures_recorded(&app, Some(student.id)), 10);
}

#[tokio::test]
async fn one_student_checks_in_to_five_lessons_at_once() {
    let app = spawn_app().await;
    let mut classes: Vec<Class> = Vec::new();
    for i in 0..5 {
        classes.push(app.class(&format!("multi{i}"), 1).await);
    }
    let student = &classes[0].students[0];
    for class in &classes[1..] {
        let path = format!("/api/v1/courses/{}/students", class.course_id);
        let enrolled = app.post(&path, &class.teacher, json!({"usernames": ["multi0.s000"]})).await;
        assert_eq!(enrolled.ok(200)["enrolled"].as_array().unwrap().len(), 1);
    }
    let mut codes = Vec::new();
    for class in &classes {
        app.open_checkin(class, json!({})).await;
        codes.push(app.current_code(class).await);
    }
    // All at once (so they share a batch), each lesson's code twice.
    let attempts = codes.iter().chain(&codes).map(|code| app.check_in(student, code));
    let answers = futures_util::future::join_all(attempts).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 201, 201, 201, 201, 201]);
    for class in &classes {
        assert_eq!(attendance_rows(&app, class.lesson_id), 1);
    }
}

/// A batch of right codes commits its new records with the insert itself. A step after that
/// which fails (reading the stored record a repeat is answered with) fails only the repeat:
/// every new record of the batch is answered 201, never with an error for a stored record.
#[tokio::test]
async fn a_repeat_that_cannot_be_answered_fails_alone_and_its_batch_is_answered() {
    let app = spawn_app().await;
    let class = app.class("alone", 21).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    let (first, repeat, rest) = (&class.students[..10], &class.students[10], &class.students[11..]);
    app.check_in(repeat, &code).await.ok(201);
    // The repeat's stored record becomes one the server cannot read back.
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query("ALTER TABLE attendance DROP CONSTRAINT attendance_status_check")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("UPDATE attendance SET status = 'unreadable' WHERE student_id = $1")
        .bind::<diesel::sql_types::BigInt, _>(repeat.id)
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    // All at once, the repeat among them, so that it shares a batch with new check-ins.
    let everyone = first.iter().chain([repeat]).chain(rest);
    let answers = futures_util::future::join_all(everyone.map(|s| app.check_in(s, &code))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    let new = statuses.iter().enumerate().filter(|(i, _)| *i != 10);
    assert!(new.map(|(_, status)| *status).all(|status| status == 201), "{statuses:?}");
    assert_eq!(statuses[10], 500, "only the repeat fails");
    assert_eq!(attendance_rows(&app, class.lesson_id), 21);
}

#[tokio::test]
async fn a_burst_of_wrong_codes_from_one_student_is_throttled_after_ten() {
    let app = spawn_app().await;
    let (class, wrong) = class_with_wrong_code(&app, 1).await;
    let student = &class.students[0];
    let answers = futures_util::future::join_all((0..14).map(|_| app.check_in(student, &wrong))).await;
    let rejected = answers.iter().filter(|r| r.status.as_u16() == 422).count();
    let throttled = answers.iter().filter(|r| r.status.as_u16() == 429).count();
    assert_eq!((rejected, throttled), (10, 4), "as if they came one at a time");
    assert_eq!(failures_recorded(&app, None), 10);
}

/// The check-in path's window lookup is hand-written SQL; it must run as a statement
/// PostgreSQL keeps prepared on the connection (parsed and planned once, not per batch),
/// and answer as before for every call. The statements over `checkin_failures` must not be
/// kept: that table swings between nearly empty and busy, and a plan cached while it was
/// small kept scanning all of it (benches/RESULTS.md).
#[tokio::test]
async fn the_window_lookup_is_prepared_once_per_connection_and_the_failure_reads_are_not() {
    use rollcall::checkins::queries::{confirm_students, failures_since, unfinished_windows_for};
    let app = spawn_app().await;
    let class = app.class("prep", 2).await;
    app.open_checkin(&class, json!({})).await;
    let students: Vec<i64> = class.students.iter().map(|s| s.id).collect();
    let pool = app.pool.clone();
    let now = app.clock.now();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        for _ in 0..3 {
            let found = unfinished_windows_for(&mut conn, &students, now, now).unwrap();
            let mut found: Vec<(i64, i64)> =
                found.iter().map(|(student, open)| (*student, open.window.lesson_id)).collect();
            found.sort_unstable();
            assert_eq!(found, students.iter().map(|s| (*s, class.lesson_id)).collect::<Vec<_>>());
            assert_eq!(confirm_students(&mut conn, &students, now).unwrap().len(), 2);
            assert!(failures_since(&mut conn, &students, now).unwrap().is_empty());
        }
        assert_eq!(
            prepared(&mut conn, "%CROSS JOIN LATERAL%"),
            1,
            "one prepared statement, reused by every call"
        );
        assert_eq!(prepared(&mut conn, "%checkin_failures%"), 0, "planned for each call");
    })
    .await
    .unwrap();
}

/// A batch's only write is one statement: it stores the new records, skips the ones that
/// exist, and announces exactly the new ones to every instance (`Event::Record` on the events
/// channel) when it commits; its text does not change with the batch size, so it is prepared
/// once per connection.
#[tokio::test]
async fn the_records_of_a_batch_are_stored_and_announced_by_one_prepared_statement() {
    use rollcall::attendance::records::{NewCheckin, insert_checkins};
    use rollcall::checkins::queries::unfinished_windows_for;
    use rollcall::domain::status::RecordStatus;
    use rollcall::events::{CHANNEL, Event};
    let app = spawn_app().await;
    let class = app.class("one", 3).await;
    app.open_checkin(&class, json!({})).await;
    let students: Vec<i64> = class.students.iter().map(|s| s.id).collect();
    let (pool, now, lesson_id) = (app.pool.clone(), app.clock.now(), class.lesson_id);
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        let (lesson_title, course_title): (String, String) = rollcall::schema::lessons::table
            .inner_join(rollcall::schema::courses::table)
            .filter(rollcall::schema::lessons::id.eq(lesson_id))
            .select((rollcall::schema::lessons::title, rollcall::schema::courses::title))
            .first(&mut conn)
            .unwrap();
        let window_id = unfinished_windows_for(&mut conn, &students, now, now).unwrap()[0].1.window.id;
        let new = |student_id: i64| NewCheckin {
            lesson_id,
            student_id,
            window_id,
            status: RecordStatus::Present,
            at: now,
            client_ip: Some("192.0.2.7"),
            user_agent: None,
            device_id: Some("tablet-1"),
            stale_code: student_id == students[1],
        };
        diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).unwrap();
        let announced = |conn: &mut diesel::PgConnection| -> Vec<Event> {
            let mut events: Vec<Event> = conn
                .notifications_iter()
                .map(|n| Event::decode(&n.unwrap().payload).expect("an event"))
                .collect();
            events.sort_by_key(|e| match e {
                Event::Record { lesson_id, student_id } => (*lesson_id, *student_id),
                other => panic!("not a record's event: {other:?}"),
            });
            events
        };
        let record = |student_id| Event::Record { lesson_id, student_id };

        let first = insert_checkins(&mut conn, &[new(students[0])]).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].lesson_title.as_str(), first[0].course_title.as_str()),
            (lesson_title.as_str(), course_title.as_str()),
            "the titles a check-in's answer names"
        );
        assert_eq!(announced(&mut conn), [record(students[0])]);
        // A batch of another size, with a student who already has a record.
        let second =
            insert_checkins(&mut conn, &[new(students[2]), new(students[0]), new(students[1])]).unwrap();
        let mut stored: Vec<(i64, bool, Option<String>)> = second
            .iter()
            .map(|r| (r.record.student_id, r.record.stale_code, r.record.device_id.clone()))
            .collect();
        stored.sort_unstable();
        assert_eq!(
            stored,
            [(students[1], true, Some("tablet-1".into())), (students[2], false, Some("tablet-1".into()))],
            "the new records, not the one that existed"
        );
        assert_eq!(announced(&mut conn), [record(students[1]), record(students[2])]);

        let ip: Option<String> = rollcall::schema::attendance::table
            .filter(rollcall::schema::attendance::student_id.eq(students[2]))
            .select(rollcall::schema::attendance::client_ip)
            .first(&mut conn)
            .unwrap();
        assert_eq!(ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            prepared(&mut conn, "%INSERT INTO attendance%"),
            1,
            "one prepared statement for batches of any size"
        );
        diesel::sql_query("UNLISTEN *").execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The statements prepared on this connection whose text is `LIKE` the pattern.
fn prepared(conn: &mut diesel::PgConnection, like: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1")
        .bind::<diesel::sql_types::Text, _>(like)
        .get_result::<Count>(conn)
        .unwrap()
        .n
}

/// The lookup reads a course's windows opened within the longest a window lasts (4 hours)
/// before the attempt: a 4-hour window is still found in its last seconds, among the many
/// unfinished windows a term leaves behind, and no window can last longer.
#[tokio::test]
async fn a_four_hour_window_takes_check_ins_until_its_last_second() {
    let app = spawn_app().await;
    let class = app.class("long", 2).await;
    // A term around it: lessons of the same course, one planned ahead by automatic check-in.
    let course = format!("/api/v1/courses/{}/lessons", class.course_id);
    for (title, starts_at) in [("Earlier", "2026-11-24T08:00:00Z"), ("Later", "2026-11-26T08:00:00Z")] {
        let body =
            json!({"title": title, "starts_at": starts_at, "auto_checkin": {"duration_seconds": 14400}});
        app.post(&course, &class.teacher, body).await.ok(201);
    }
    app.open_checkin(&class, json!({"duration_seconds": 14400, "rotation_seconds": 300})).await;
    app.advance(14_399);
    // Tokens as fresh as the clock (those of the fixture expired hours ago).
    let teacher = app.token(class.teacher_id, Role::Teacher, "long.teacher");
    let student = |n: usize| app.token(class.students[n].id, Role::Student, &format!("long.s{n:03}"));
    let code = app.code_of(&teacher, class.lesson_id).await;
    let late = app.post("/api/v1/checkins", &student(0), json!({"code": code})).await;
    assert_eq!(late.ok(201)["lesson_id"], class.lesson_id);
    app.advance(1);
    let closed = app.post("/api/v1/checkins", &student(1), json!({"code": code})).await;
    assert_eq!(closed.status, 422, "{}", closed.text);

    let mut conn = app.pool.get().unwrap();
    let longer = diesel::sql_query(
        "UPDATE checkin_windows SET closes_at = opened_at + interval '4 hours 1 second' WHERE lesson_id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(class.lesson_id)
    .execute(&mut conn);
    assert!(longer.is_err(), "the database refuses a window longer than 4 hours");
}

/// `rollcall_checkins_settled_total{path}`: attempts settled by one statement (`direct`) or
/// after reading the students and their windows (`read`).
async fn settled(app: &TestApp, path: &str) -> i64 {
    metric(&app.metrics().await, &format!("rollcall_checkins_settled_total{{path=\"{path}\"}}")) as i64
}

/// Once this instance's code index knows the window, a right code costs one statement: the
/// insert that confirms the student, their enrolment, the window and the throttle, stores
/// the record and announces it. A repeat and a wrong code are settled the full way.
#[tokio::test]
async fn a_right_code_is_stored_by_one_statement_once_the_instance_knows_its_window() {
    let (app, queries) = spawn_app_counting_queries().await;
    let class = app.class("direct", 3).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);

    let before = queries.get();
    let created = app.check_in(&class.students[1], &code).await;
    assert_eq!(queries.get() - before, 1, "one statement for a right code");
    let body = created.ok(201).clone();
    assert_eq!(
        (body["lesson_id"].as_i64(), body["course_id"].as_i64(), body["lesson_title"].as_str()),
        (Some(class.lesson_id), Some(class.course_id), Some("Lesson 1"))
    );
    assert_eq!(
        (body["course_title"].as_str(), body["status"].as_str()),
        (Some("direct course"), Some("present"))
    );

    let before = queries.get();
    assert_eq!(app.check_in(&class.students[1], &code).await.ok(200), &body, "a repeat finds the record");
    let wrong = wrong_code(&app, &class).await;
    app.check_in(&class.students[2], &wrong).await.problem(422, "invalid_code");
    assert!(queries.get() - before > 4, "the repeat and the wrong code read first");
    assert_eq!((settled(&app, "direct").await, settled(&app, "read").await), (2, 2));
    assert_eq!(attendance_rows(&app, class.lesson_id), 2);
}

/// A window opened after the index was loaded is found by the code once its event arrives
/// (seen here by a dashboard): the event makes the next batch reload the index.
#[tokio::test]
async fn a_window_opened_later_is_found_by_its_code_after_its_event() {
    use crate::helpers::websocket::next_message;
    let app = spawn_app().await;
    let (first, second) = (app.class("first", 1).await, app.class("second", 1).await);
    app.open_checkin(&first, json!({})).await;
    let code = app.current_code(&first).await;
    app.check_in(&first.students[0], &code).await.ok(201);
    assert_eq!(settled(&app, "direct").await, 1, "the index was loaded with the first window");

    let mut dashboard = app.watch(second.lesson_id, &second.teacher).await;
    assert_eq!(next_message(&mut dashboard).await["type"], "snapshot");
    app.open_checkin(&second, json!({})).await;
    let opened = next_message(&mut dashboard).await;
    assert_eq!((opened["type"].as_str(), opened["checkin"]["state"].as_str()), (Some("state"), Some("open")));
    let code = app.current_code(&second).await;
    app.check_in(&second.students[0], &code).await.ok(201);
    assert_eq!((settled(&app, "direct").await, settled(&app, "read").await), (2, 0));
}

/// The insert of a check-in found by its code stores nothing the full path would refuse:
/// a closed window, another lesson's window, a student who left the course, a disabled
/// account, or one locked out by the throttle; each is stored once that is no longer so.
#[tokio::test]
async fn a_check_in_found_by_its_code_is_stored_only_if_everything_still_holds() {
    use rollcall::attendance::records::{NewCheckin, insert_confirmed_checkins};
    use rollcall::checkins::queries::windows_opening_by;
    use rollcall::domain::status::RecordStatus;
    use rollcall::schema::{checkin_windows, enrollments, users};
    let app = spawn_app().await;
    let class = app.class("confirm", 5).await;
    let other = app.class("other", 0).await;
    app.open_checkin(&class, json!({})).await;
    app.open_checkin(&other, json!({})).await;
    // Opens by itself at 08:00:30, inside the index's horizon.
    let planned = app
        .post(
            &format!("/api/v1/courses/{}/lessons", class.course_id),
            &class.teacher,
            json!({"title": "Planned", "starts_at": "2026-11-25T08:00:30Z", "auto_checkin": {"open_offset_minutes": 0}}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<i64> = class.students.iter().map(|s| s.id).collect();
    let (pool, now, lesson_id, other_lesson) =
        (app.pool.clone(), app.clock.now(), class.lesson_id, other.lesson_id);
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        let windows = |conn: &mut diesel::PgConnection, seconds| -> Vec<i64> {
            let until = now + chrono::Duration::seconds(seconds);
            let mut lessons: Vec<i64> =
                windows_opening_by(conn, now, until).unwrap().iter().map(|o| o.window.lesson_id).collect();
            lessons.sort_unstable();
            lessons
        };
        assert_eq!(windows(&mut conn, 0), vec![lesson_id, other_lesson]);
        assert_eq!(windows(&mut conn, 60), vec![lesson_id, other_lesson, planned], "planned ahead");
        let window_id: i64 = checkin_windows::table
            .filter(checkin_windows::lesson_id.eq(lesson_id))
            .select(checkin_windows::id)
            .first(&mut conn)
            .unwrap();
        let new = |student_id: i64, lesson_id: i64| NewCheckin {
            lesson_id,
            student_id,
            window_id,
            status: RecordStatus::Present,
            at: now,
            client_ip: None,
            user_agent: None,
            device_id: None,
            stale_code: false,
        };
        let student = |i: usize| users::table.find(ids[i]);
        diesel::update(enrollments::table.filter(enrollments::student_id.eq(ids[1])))
            .set(enrollments::left_at.eq(now))
            .execute(&mut conn)
            .unwrap();
        diesel::update(student(2)).set(users::disabled.eq(true)).execute(&mut conn).unwrap();
        let locked = now + chrono::Duration::seconds(1);
        diesel::update(student(3)).set(users::checkin_throttled_until.eq(locked)).execute(&mut conn).unwrap();
        let batch = [
            new(ids[0], lesson_id),
            new(ids[1], lesson_id),
            new(ids[2], lesson_id),
            new(ids[3], lesson_id),
            new(ids[4], other_lesson),
        ];
        let stored: Vec<i64> = insert_confirmed_checkins(&mut conn, &batch)
            .unwrap()
            .iter()
            .map(|r| r.record.student_id)
            .collect();
        assert_eq!(stored, vec![ids[0]], "only the student for whom everything holds");

        // Each refusal was its condition's: the student who joins again, is enabled again or
        // whose lockout has passed is stored (ids[4]'s lesson is not the window's, still).
        diesel::update(enrollments::table.filter(enrollments::student_id.eq(ids[1])))
            .set(enrollments::left_at.eq(None::<chrono::DateTime<chrono::Utc>>))
            .execute(&mut conn)
            .unwrap();
        diesel::update(student(2)).set(users::disabled.eq(false)).execute(&mut conn).unwrap();
        diesel::update(student(3)).set(users::checkin_throttled_until.eq(now)).execute(&mut conn).unwrap();
        let mut stored: Vec<i64> = insert_confirmed_checkins(&mut conn, &batch)
            .unwrap()
            .iter()
            .map(|r| r.record.student_id)
            .collect();
        stored.sort_unstable();
        assert_eq!(stored, vec![ids[1], ids[2], ids[3]], "the first is a repeat now");

        diesel::update(checkin_windows::table.find(window_id))
            .set(checkin_windows::closed_at.eq(now))
            .execute(&mut conn)
            .unwrap();
        diesel::delete(attendance::table).execute(&mut conn).unwrap();
        assert!(insert_confirmed_checkins(&mut conn, &batch).unwrap().is_empty(), "the window closed");
    })
    .await
    .unwrap();
}

/// The failure that reaches the throttle's limit writes the lockout the one-statement insert
/// reads: a right code is refused with the same wait, and taken when the lockout ends.
#[tokio::test]
async fn the_tenth_failure_locks_the_student_out_until_the_oldest_leaves_the_window() {
    use rollcall::schema::users;
    let app = spawn_app().await;
    let (class, wrong) = class_with_wrong_code(&app, 1).await;
    let student = &class.students[0];
    let code = app.current_code(&class).await;
    let lockout = |app: &TestApp| -> Option<chrono::DateTime<chrono::Utc>> {
        let mut conn = app.pool.get().unwrap();
        users::table.find(student.id).select(users::checkin_throttled_until).first(&mut conn).unwrap()
    };
    for i in 0..10 {
        assert_eq!(lockout(&app), None, "not before the tenth failure ({i} so far)");
        app.check_in(student, &wrong).await.problem(422, "invalid_code");
        app.advance(3);
    }
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z").unwrap();
    assert_eq!(lockout(&app), Some(start.with_timezone(&chrono::Utc) + chrono::Duration::seconds(60)));
    // 08:00:30 now: the oldest failure (08:00:00) leaves the window at 08:01:00.
    let throttled = app.check_in(student, &code).await;
    throttled.problem(429, "too_many_attempts");
    assert_eq!(throttled.headers["retry-after"], "30");
    let direct = settled(&app, "direct").await;
    app.advance(30);
    app.check_in(student, &code).await.ok(201);
    assert_eq!(settled(&app, "direct").await, direct + 1, "settled by one statement again");
}

/// A batch settles one student's attempts in the order they came, even when the code index
/// knows one of them: a right code after the wrong code that reaches the throttle's limit is
/// throttled, as it would be a request later. (Tried against the index before the guesses
/// ahead of it counted, a burst of guesses in one batch would get past the throttle.)
#[tokio::test]
async fn a_batch_settles_a_students_guesses_in_order_even_when_the_index_knows_one() {
    use rollcall::auth::revoked::RevokedSessions;
    use rollcall::checkins::batch::{Attempt, Checkins, Outcome, Views};
    use rollcall::checkins::codes::OpenCodes;
    use rollcall::client::ClientInfo;
    use rollcall::domain::code::Verdict;
    use rollcall::metrics::Metrics;
    use std::sync::Arc;
    let app = spawn_app().await;
    let (class, wrong) = class_with_wrong_code(&app, 1).await;
    let student = &class.students[0];
    for _ in 0..9 {
        app.check_in(student, &wrong).await.problem(422, "invalid_code");
    }
    let code = app.current_code(&class).await;
    let revoked = Arc::new(RevokedSessions::new());
    revoked.reload(Vec::new());
    let codes = Arc::new(OpenCodes::new());
    let checkins =
        Checkins::start(Views { pool: app.pool.clone(), revoked, codes, metrics: Arc::new(Metrics::new()) });
    let attempt = |code: &str| Attempt {
        student_id: student.id,
        session_id: 1,
        code: code.to_owned(),
        client: ClientInfo::default(),
        now: app.clock.now(),
    };
    // This test's runtime has one thread: both jobs are queued before the batch task runs,
    // so they form one batch, in this order.
    let (tenth, right) = tokio::join!(checkins.submit(attempt(&wrong)), checkins.submit(attempt(&code)));
    assert!(matches!(tenth, Ok(Outcome::Rejected(Verdict::Invalid))), "the tenth failure");
    assert!(matches!(right, Ok(Outcome::Throttled { retry_after_secs: 60 })), "throttled after it");
    assert_eq!(attendance_rows(&app, class.lesson_id), 0);
    // Alone in a batch, the same right code is settled by one statement and throttled too.
    let alone = checkins.submit(attempt(&code)).await;
    assert!(matches!(alone, Ok(Outcome::Throttled { .. })));
}

/// Failures recorded without a lockout (as an instance of the version before the lockout
/// was stored left them, during a rolling upgrade) lock the student out of the one-statement
/// path as soon as a full-path attempt finds them throttled.
#[tokio::test]
async fn a_throttled_attempt_writes_the_lockout_its_failures_imply() {
    use rollcall::schema::users;
    let app = spawn_app().await;
    let (class, wrong) = class_with_wrong_code(&app, 1).await;
    let student = &class.students[0];
    for _ in 0..10 {
        app.check_in(student, &wrong).await.problem(422, "invalid_code");
    }
    {
        let mut conn = app.pool.get().unwrap();
        diesel::update(users::table.find(student.id))
            .set(users::checkin_throttled_until.eq(None::<chrono::DateTime<chrono::Utc>>))
            .execute(&mut conn)
            .unwrap();
    }
    app.check_in(student, &wrong).await.problem(429, "too_many_attempts");
    let code = app.current_code(&class).await;
    app.check_in(student, &code).await.problem(429, "too_many_attempts");
    assert_eq!(attendance_rows(&app, class.lesson_id), 0);
}

use crate::helpers::fixtures::insert_users;
use crate::helpers::{spawn_app, spawn_app_counting_queries};
use diesel::prelude::*;
use reqwest::Method;
use rollcall::domain::user::Role;
use rollcall::schema::attendance_audit;
use serde_json::{Value, json};

async fn put(
    app: &crate::helpers::TestApp,
    token: &str,
    lesson: i64,
    student: i64,
    body: Value,
) -> crate::helpers::http::Response {
    app.send(Method::PUT, &format!("/api/v1/lessons/{lesson}/attendance/{student}"), Some(token), Some(body))
        .await
}

#[tokio::test]
async fn results_list_every_enrolled_student_with_a_summary() {
    let app = spawn_app().await;
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[1], &code).await.ok(201);
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let body = results.ok(200);
    assert_eq!(body["lesson"]["checkin"]["state"], "open");
    assert_eq!(
        body["summary"],
        json!({"enrolled": 3, "present": 1, "late": 0, "excused": 0, "absent": 0, "pending": 2})
    );
    let records = body["records"].as_array().unwrap();
    let statuses: Vec<&str> = records.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending", "present", "pending"]);
    assert_eq!(records[1]["method"], "code");
    assert_eq!(records[1]["checked_in_at"], "2026-11-25T08:00:00Z");
    assert_eq!(records[0]["method"], Value::Null);
    assert_eq!(records[0]["flags"], json!([]));
}

#[tokio::test]
async fn results_are_for_the_courses_teacher_and_admins() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    let path = format!("/api/v1/lessons/{}/attendance", class.lesson_id);
    app.get(&path, &app.admin_token).await.ok(200);
    app.get(&path, &other.teacher).await.problem(403, "forbidden");
    app.get(&path, &class.students[0].token).await.problem(403, "forbidden");
    let course = format!("/api/v1/courses/{}/attendance", class.course_id);
    app.get(&course, &app.admin_token).await.ok(200);
    app.get(&course, &other.teacher).await.problem(403, "forbidden");
    app.get(&course, &class.students[0].token).await.problem(403, "forbidden");
    app.get("/api/v1/lessons/99999/attendance", &class.teacher).await.problem(404, "not_found");
}

#[tokio::test]
async fn results_export_as_csv_with_proper_quoting() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(rollcall::schema::users::table.find(class.students[0].id))
        .set(rollcall::schema::users::real_name.eq("Müller, \"Jo\" Zoë"))
        .execute(&mut conn)
        .unwrap();
    diesel::update(rollcall::schema::users::table.find(class.students[1].id))
        .set(rollcall::schema::users::real_name.eq("=1+1"))
        .execute(&mut conn)
        .unwrap();
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);

    let by_query =
        app.get(&format!("/api/v1/lessons/{}/attendance?format=csv", class.lesson_id), &class.teacher).await;
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.headers["content-type"], "text/csv; charset=utf-8");
    assert!(by_query.headers["content-disposition"].to_str().unwrap().contains(".csv"));
    assert_eq!(
        by_query.text,
        "student_number,username,real_name,status,checked_in_at,method\n\
         n-c.s000,c.s000,\"Müller, \"\"Jo\"\" Zoë\",present,2026-11-25T08:00:00Z,code\n\
         n-c.s001,c.s001,'=1+1,pending,,\n"
    );
    let by_accept = app
        .client
        .get(app.url(&format!("/api/v1/lessons/{}/attendance", class.lesson_id)))
        .bearer_auth(&class.teacher)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.text().await.unwrap(), by_query.text);
    app.get(&format!("/api/v1/lessons/{}/attendance?format=xml", class.lesson_id), &class.teacher)
        .await
        .problem(400, "bad_request");
}

#[tokio::test]
async fn a_teacher_override_is_audited() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    app.advance(5);
    let changed = put(
        &app,
        &class.teacher,
        class.lesson_id,
        class.students[0].id,
        json!({"status": "late", "note": "came in at 8:20"}),
    )
    .await;
    let record = changed.ok(200);
    assert_eq!(record["status"], "late");
    assert_eq!(record["method"], "manual");
    assert_eq!(record["note"], "came in at 8:20");
    assert_eq!(record["checked_in_at"], "2026-11-25T08:00:00Z", "the check-in time is kept");
    let excused =
        put(&app, &class.teacher, class.lesson_id, class.students[1].id, json!({"status": "excused"})).await;
    assert_eq!(excused.ok(200)["checked_in_at"], Value::Null);
    // The student's repeat check-in returns the teacher's decision unchanged.
    assert_eq!(app.check_in(&class.students[1], &code).await.ok(200)["status"], "excused");

    let mut conn = app.pool.get().unwrap();
    let audit: Vec<(i64, i64, String, String, Option<String>)> = attendance_audit::table
        .select((
            attendance_audit::student_id,
            attendance_audit::changed_by,
            attendance_audit::old_status,
            attendance_audit::new_status,
            attendance_audit::note,
        ))
        .order(attendance_audit::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        audit,
        [
            (
                class.students[0].id,
                class.teacher_id,
                "present".into(),
                "late".into(),
                Some("came in at 8:20".into())
            ),
            (class.students[1].id, class.teacher_id, "pending".into(), "excused".into(), None),
        ]
    );
}

#[tokio::test]
async fn overrides_are_for_enrolled_students_by_the_courses_teacher_only() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 1).await;
    let student = class.students[0].id;
    put(&app, &other.teacher, class.lesson_id, student, json!({"status": "present"}))
        .await
        .problem(403, "forbidden");
    put(&app, &app.admin_token, class.lesson_id, student, json!({"status": "present"}))
        .await
        .problem(403, "forbidden");
    put(&app, &class.students[0].token, class.lesson_id, student, json!({"status": "present"}))
        .await
        .problem(403, "forbidden");
    put(&app, &class.teacher, class.lesson_id, other.students[0].id, json!({"status": "present"}))
        .await
        .problem(404, "not_found");
    put(&app, &class.teacher, class.lesson_id, student, json!({"status": "pending"}))
        .await
        .problem(400, "bad_request");
    put(
        &app,
        &class.teacher,
        class.lesson_id,
        student,
        json!({"status": "absent", "note": "n".repeat(1001)}),
    )
    .await
    .problem(422, "validation_failed");
    let mut conn = app.pool.get().unwrap();
    let audits: i64 = attendance_audit::table.count().get_result(&mut conn).unwrap();
    assert_eq!(audits, 0, "refused changes leave no trace");
}

#[tokio::test]
async fn a_device_that_checks_in_two_students_is_flagged() {
    let app = spawn_app().await;
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    for (student, device) in class.students.iter().zip(["shared-phone", "shared-phone", "own-phone"]) {
        app.check_in_with(&student.token, json!({"code": code}), &[("X-Device-Id", device)]).await.ok(201);
    }
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let flags: Vec<Value> =
        results.ok(200)["records"].as_array().unwrap().iter().map(|r| r["flags"].clone()).collect();
    assert_eq!(flags, [json!(["shared_device"]), json!(["shared_device"]), json!([])]);
}

#[tokio::test]
async fn the_course_report_counts_each_students_lessons() {
    let app = spawn_app().await;
    let class = app.class("c", 3).await;
    let lessons_path = format!("/api/v1/courses/{}/lessons", class.course_id);
    let second = app.post(&lessons_path, &class.teacher, json!({"title": "Lesson 2"})).await.ok(201)["id"]
        .as_i64()
        .unwrap();
    app.post(&lessons_path, &class.teacher, json!({"title": "Never opened"})).await.ok(201);

    // Lesson 1: s0 present, s1 late, s2 absent.
    app.open_checkin(
        &class,
        json!({"late_after_seconds": 30, "rotation_seconds": 60, "duration_seconds": 120}),
    )
    .await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    app.advance(40);
    app.check_in(&class.students[1], &code).await.ok(201);
    app.advance(100);
    // Lesson 2: s0 excused by the teacher, s1 present, s2 absent.
    app.open_lesson(&class.teacher, second, json!({"duration_seconds": 60})).await;
    let code = app.code_of(&class.teacher, second).await;
    put(&app, &class.teacher, second, class.students[0].id, json!({"status": "excused"})).await.ok(200);
    app.check_in(&class.students[1], &code).await.ok(201);
    app.advance(60);

    let report = app.get(&format!("/api/v1/courses/{}/attendance", class.course_id), &class.teacher).await;
    let rows = report.ok(200).as_array().unwrap().clone();
    let summary: Vec<(i64, i64, i64, i64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["present"].as_i64().unwrap(),
                r["late"].as_i64().unwrap(),
                r["excused"].as_i64().unwrap(),
                r["absent"].as_i64().unwrap(),
                r["attendance_rate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [(1, 0, 1, 0, 0.5), (1, 1, 0, 0, 1.0), (0, 0, 0, 2, 0.0)]);
    assert_eq!(rows[0]["last_attended_at"], "2026-11-25T08:00:00Z");
    assert_eq!(rows[1]["last_attended_at"], "2026-11-25T08:02:20Z");
    assert_eq!(rows[2]["last_attended_at"], Value::Null);

    let csv =
        app.get(&format!("/api/v1/courses/{}/attendance?format=csv", class.course_id), &class.teacher).await;
    let lines: Vec<&str> = csv.text.lines().collect();
    // v1's columns first and unchanged, then the enrolment period's.
    assert_eq!(
        lines[0],
        "student_number,username,real_name,present,late,excused,absent,attendance_rate,last_attended_at,\
         lessons_counted,left_at,below_threshold"
    );
    assert_eq!(lines[2], "n-c.s001,c.s001,Real c.s001,1,1,0,0,1.0000,2026-11-25T08:02:20Z,2,,false");
    assert_eq!(lines.len(), 4);
}

#[tokio::test]
async fn results_and_report_take_the_same_number_of_queries_for_300_students_as_for_3() {
    let (app, queries) = spawn_app_counting_queries().await;
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);

    let lesson_path = format!("/api/v1/lessons/{}/attendance", class.lesson_id);
    let course_path = format!("/api/v1/courses/{}/attendance", class.course_id);
    let measure = |path: &str| {
        let (app, queries, teacher, path) = (&app, queries.clone(), class.teacher.clone(), path.to_owned());
        async move {
            let before = queries.get();
            app.get(&path, &teacher).await.ok(200);
            queries.get() - before
        }
    };
    let small = (measure(&lesson_path).await, measure(&course_path).await);

    let usernames: Vec<String> = (0..297).map(|i| format!("big.s{i:03}")).collect();
    let ids = insert_users(&app.pool, &usernames, Role::Student).await;
    app.post(
        &format!("/api/v1/courses/{}/students", class.course_id),
        &class.teacher,
        json!({"usernames": usernames}),
    )
    .await
    .ok(200);
    for (id, name) in ids.iter().zip(&usernames).take(100) {
        let student =
            crate::helpers::fixtures::Student { id: *id, token: app.token(*id, Role::Student, name) };
        app.check_in(&student, &code).await.ok(201);
    }
    let big = (measure(&lesson_path).await, measure(&course_path).await);
    let results = app.get(&lesson_path, &class.teacher).await;
    assert_eq!(results.ok(200)["records"].as_array().unwrap().len(), 300);
    eprintln!("query counts (lesson results, course report): 3 students {small:?}, 300 students {big:?}");
    assert_eq!(small, big, "query counts (lesson results, course report) grew with the number of students");
    assert!(big.0 <= 12 && big.1 <= 12, "{big:?}");
}

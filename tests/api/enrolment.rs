//! Enrolment periods: who a lesson counts for, in every place a student's attendance shows
//! (lesson results, `my_status`, `/me/attendance`, the course report and its CSV).

use crate::helpers::fixtures::{Class, Student};
use crate::helpers::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// A new lesson of the class's course; returns its id.
async fn lesson(app: &TestApp, class: &Class, title: &str) -> i64 {
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    app.post(&path, &class.teacher, json!({"title": title})).await.ok(201)["id"].as_i64().unwrap()
}

/// Opens the lesson for a minute, checks these students in, and lets it close.
async fn hold(app: &TestApp, class: &Class, lesson_id: i64, present: &[&Student]) {
    app.open_lesson(&class.teacher, lesson_id, json!({"duration_seconds": 60})).await;
    let code = app.code_of(&class.teacher, lesson_id).await;
    for student in present {
        app.check_in(student, &code).await.ok(201);
    }
    app.advance(120);
}

async fn enrol(app: &TestApp, class: &Class, student_id: i64) -> Value {
    let user = app.get(&format!("/api/v1/users/{student_id}"), &app.admin_token).await.ok(200).clone();
    let path = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&path, &class.teacher, json!({"usernames": [user["username"]]})).await.ok(200).clone()
}

async fn remove(app: &TestApp, class: &Class, student_id: i64) {
    let path = format!("/api/v1/courses/{}/students/{student_id}", class.course_id);
    assert_eq!(app.send(Method::DELETE, &path, Some(&class.teacher), None).await.status, 204);
}

/// A student of the course who is not enrolled yet.
async fn newcomer(app: &TestApp, name: &str) -> Student {
    let (id, token) = app.create_user_directly(name, rollcall::domain::user::Role::Student).await;
    Student { id, token }
}

async fn results(app: &TestApp, class: &Class, lesson_id: i64) -> Value {
    app.get(&format!("/api/v1/lessons/{lesson_id}/attendance"), &class.teacher).await.ok(200).clone()
}

fn listed(results: &Value) -> Vec<i64> {
    results["records"].as_array().unwrap().iter().map(|r| r["student"]["id"].as_i64().unwrap()).collect()
}

async fn report(app: &TestApp, class: &Class) -> Vec<Value> {
    let path = format!("/api/v1/courses/{}/attendance", class.course_id);
    app.get(&path, &class.teacher).await.ok(200).as_array().unwrap().clone()
}

fn row_of(report: &[Value], student_id: i64) -> Value {
    report.iter().find(|r| r["student"]["id"] == student_id).cloned().unwrap_or_else(|| {
        panic!("student {student_id} is not in the report: {report:?}");
    })
}

async fn my_statuses(app: &TestApp, class: &Class, student: &Student) -> Vec<Value> {
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    let lessons = app.get(&path, &student.token).await.ok(200).clone();
    lessons.as_array().unwrap().iter().map(|l| l["my_status"].clone()).collect()
}

async fn my_history(app: &TestApp, student: &Student) -> Vec<(i64, String)> {
    let history = app.get("/api/v1/me/attendance", &student.token).await.ok(200).clone();
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["lesson"]["id"].as_i64().unwrap(), h["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_student_who_joins_late_is_not_absent_for_lessons_held_before() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let week1 = class.lesson_id;
    hold(&app, &class, week1, &[&class.students[0]]).await;
    let late = newcomer(&app, "late.joiner").await;
    assert_eq!(enrol(&app, &class, late.id).await["enrolled"][0]["id"], late.id);
    let week2 = lesson(&app, &class, "Week 2").await;
    hold(&app, &class, week2, &[&late]).await;
    let week3 = lesson(&app, &class, "Week 3").await;

    // Week 1 was held before they joined: not in its results, not in their history.
    let held_before = results(&app, &class, week1).await;
    assert_eq!(listed(&held_before), [class.students[0].id]);
    assert_eq!(
        held_before["summary"],
        json!({"enrolled": 1, "present": 1, "late": 0, "excused": 0, "absent": 0, "pending": 0})
    );
    assert_eq!(listed(&results(&app, &class, week2).await).len(), 2);
    // Week 3 was never opened: it is for everyone enrolled now.
    assert_eq!(listed(&results(&app, &class, week3).await).len(), 2);

    assert_eq!(my_statuses(&app, &class, &late).await, [Value::Null, json!("present"), json!("not_started")]);
    let lesson_path = format!("/api/v1/lessons/{week1}");
    assert_eq!(app.get(&lesson_path, &late.token).await.ok(200)["my_status"], Value::Null);
    assert_eq!(my_statuses(&app, &class, &class.students[0]).await, ["present", "absent", "not_started"]);
    let history = my_history(&app, &late).await;
    assert!(history.iter().all(|(id, _)| *id != week1), "{history:?}");
    assert!(history.contains(&(week2, "present".into())) && history.contains(&(week3, "not_started".into())));

    let report = report(&app, &class).await;
    let late_row = row_of(&report, late.id);
    assert_eq!(late_row["lessons_counted"], 1);
    assert_eq!(late_row["absent"], 0);
    assert_eq!(late_row["attendance_rate"], 1.0);
    assert_eq!(late_row["left_at"], Value::Null);
    let first = row_of(&report, class.students[0].id);
    assert_eq!((first["lessons_counted"].as_i64(), first["absent"].as_i64()), (Some(2), Some(1)));
    assert_eq!(first["attendance_rate"], 0.5);
}

#[tokio::test]
async fn a_student_who_leaves_keeps_the_lessons_they_were_there_for() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let (stays, leaves) = (&class.students[0], &class.students[1]);
    hold(&app, &class, class.lesson_id, &[stays, leaves]).await;
    let week2 = lesson(&app, &class, "Week 2").await;
    hold(&app, &class, week2, &[stays]).await;
    remove(&app, &class, leaves.id).await;
    let left_at = "2026-11-25T08:04:00Z";
    let week3 = lesson(&app, &class, "Week 3").await;
    hold(&app, &class, week3, &[stays]).await;

    // Lessons held while they were enrolled still list them; the summary's `enrolled` is
    // how many of those listed are enrolled now.
    let week2_results = results(&app, &class, week2).await;
    assert_eq!(listed(&week2_results).len(), 2);
    assert_eq!(
        week2_results["summary"],
        json!({"enrolled": 1, "present": 1, "late": 0, "excused": 0, "absent": 1, "pending": 0})
    );
    assert_eq!(listed(&results(&app, &class, week3).await), [stays.id]);

    let report = report(&app, &class).await;
    assert_eq!(report.len(), 2, "the former student stays in the report");
    let former = row_of(&report, leaves.id);
    assert_eq!(former["left_at"], left_at);
    assert_eq!((former["lessons_counted"].as_i64(), former["present"].as_i64()), (Some(2), Some(1)));
    assert_eq!(former["absent"], 1);
    assert_eq!(former["attendance_rate"], 0.5);
    assert_eq!(row_of(&report, stays.id)["lessons_counted"], 3);

    // Their own history keeps the lessons of the course they left, and only those.
    let history = my_history(&app, leaves).await;
    assert_eq!(history, [(week2, "absent".into()), (class.lesson_id, "present".into())]);
    // They are no longer a member: the course's lessons are closed to them.
    let lessons = format!("/api/v1/courses/{}/lessons", class.course_id);
    app.get(&lessons, &leaves.token).await.problem(403, "forbidden");
    // The roster and the course's count are of those enrolled now.
    let roster = app.get(&format!("/api/v1/courses/{}/students", class.course_id), &class.teacher).await;
    assert_eq!(roster.ok(200).as_array().unwrap().len(), 1);
    let course = app.get(&format!("/api/v1/courses/{}", class.course_id), &class.teacher).await;
    assert_eq!(course.ok(200)["student_count"], 1);
}

#[tokio::test]
async fn enrolling_again_starts_a_new_period_and_the_gap_does_not_count() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let student = &class.students[0];
    remove(&app, &class, student.id).await;
    // Removing twice is 404: there is no running period to end.
    let path = format!("/api/v1/courses/{}/students/{}", class.course_id, student.id);
    app.send(Method::DELETE, &path, Some(&class.teacher), None).await.problem(404, "not_found");
    hold(&app, &class, class.lesson_id, &[]).await;
    let back = enrol(&app, &class, student.id).await;
    assert_eq!(back["enrolled"][0]["id"], student.id, "{back}");
    assert_eq!(enrol(&app, &class, student.id).await["already_enrolled"][0]["id"], student.id);
    let week2 = lesson(&app, &class, "Week 2").await;
    hold(&app, &class, week2, &[]).await;

    assert_eq!(my_statuses(&app, &class, student).await, [Value::Null, json!("absent")]);
    let row = row_of(&report(&app, &class).await, student.id);
    assert_eq!((row["lessons_counted"].as_i64(), row["absent"].as_i64()), (Some(1), Some(1)));
    assert_eq!(row["left_at"], Value::Null, "enrolled again");
    assert_eq!(my_history(&app, student).await, [(week2, "absent".into())]);
}

#[tokio::test]
async fn a_record_always_counts() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let week1 = class.lesson_id;
    hold(&app, &class, week1, &[]).await;
    let week2 = lesson(&app, &class, "Week 2").await;
    hold(&app, &class, week2, &[]).await;
    let late = newcomer(&app, "late.joiner").await;
    enrol(&app, &class, late.id).await;

    // The teacher marks them for a lesson held before they joined...
    let mark = format!("/api/v1/lessons/{week1}/attendance/{}", late.id);
    let marked = app.send(Method::PUT, &mark, Some(&class.teacher), Some(json!({"status": "excused"}))).await;
    assert_eq!(marked.ok(200)["status"], "excused");
    // ...and they check in to a re-opened one.
    app.open_lesson(&class.teacher, week2, json!({})).await;
    let code = app.code_of(&class.teacher, week2).await;
    app.check_in(&late, &code).await.ok(201);

    assert_eq!(my_statuses(&app, &class, &late).await, ["excused", "present"]);
    assert_eq!(listed(&results(&app, &class, week1).await).len(), 2);
    let row = row_of(&report(&app, &class).await, late.id);
    assert_eq!(row["lessons_counted"], 2);
    assert_eq!((row["excused"].as_i64(), row["present"].as_i64()), (Some(1), Some(1)));
    assert_eq!(my_history(&app, &late).await.len(), 2);
}

#[tokio::test]
async fn a_former_students_record_can_be_corrected_but_strangers_cannot_be_marked() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    hold(&app, &class, class.lesson_id, &[&class.students[0]]).await;
    remove(&app, &class, class.students[0].id).await;
    remove(&app, &class, class.students[1].id).await;
    let put = |student: i64| {
        let path = format!("/api/v1/lessons/{}/attendance/{student}", class.lesson_id);
        let app = &app;
        let teacher = class.teacher.clone();
        async move { app.send(Method::PUT, &path, Some(&teacher), Some(json!({"status": "late"}))).await }
    };
    assert_eq!(put(class.students[0].id).await.ok(200)["status"], "late");
    put(class.students[1].id).await.problem(404, "not_found");
}

#[tokio::test]
async fn a_student_with_no_counted_lesson_has_no_rate_and_the_csv_says_so() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    hold(&app, &class, class.lesson_id, &[&class.students[0]]).await;
    let late = newcomer(&app, "late.joiner").await;
    enrol(&app, &class, late.id).await;
    remove(&app, &class, class.students[0].id).await;

    let report = report(&app, &class).await;
    let row = row_of(&report, late.id);
    assert_eq!((row["lessons_counted"].as_i64(), row["attendance_rate"].clone()), (Some(0), Value::Null));

    let path = format!("/api/v1/courses/{}/attendance?format=csv", class.course_id);
    let csv = app.get(&path, &class.teacher).await;
    let csv = csv.text.lines().collect::<Vec<_>>();
    assert_eq!(
        csv[0],
        "student_number,username,real_name,present,late,excused,absent,attendance_rate,\
         last_attended_at,lessons_counted,left_at,below_threshold"
    );
    assert!(csv.contains(&"n-late.joiner,late.joiner,Real late.joiner,0,0,0,0,,,0,,false"), "{csv:?}");
    assert!(
        csv.contains(
            &"n-c.s000,c.s000,Real c.s000,1,0,0,0,1.0000,2026-11-25T08:00:00Z,1,2026-11-25T08:02:00Z,false"
        ),
        "{csv:?}"
    );
}

#[tokio::test]
async fn an_enrolment_refused_changes_nothing() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    let count = || async {
        use diesel::prelude::*;
        let mut conn = diesel::PgConnection::establish(app.database_url()).unwrap();
        rollcall::schema::enrollments::table.count().get_result::<i64>(&mut conn).unwrap()
    };
    let before = count().await;
    let path = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&path, &other.teacher, json!({"usernames": ["c.s000"]})).await.problem(403, "forbidden");
    let leave = format!("/api/v1/courses/{}/students/{}", class.course_id, class.students[0].id);
    app.send(Method::DELETE, &leave, Some(&other.teacher), None).await.problem(403, "forbidden");
    assert_eq!(count().await, before);
    assert_eq!(listed(&results(&app, &class, class.lesson_id).await), [class.students[0].id]);
}

#[tokio::test]
async fn existing_enrolments_migrate_to_one_period_from_their_enrolled_at() {
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;
    use rollcall::schema::{enrollments, lessons};
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    hold(&app, &class, class.lesson_id, &[&class.students[0]]).await;
    let mut conn = PgConnection::establish(app.database_url()).unwrap();
    // Back to the schema before periods (one row per enrolment, no first opening), where a
    // student who joins after the lesson was held is enrolled the v1 way.
    loop {
        let reverted = conn.revert_last_migration(rollcall::db::MIGRATIONS).unwrap();
        if reverted.to_string() == "20261202000000" {
            break;
        }
        assert!(reverted.to_string().as_str() > "20261202000000", "reverted past it: {reverted}");
    }
    let late = newcomer(&app, "late.joiner").await;
    diesel::sql_query("INSERT INTO enrollments (course_id, student_id, enrolled_at) VALUES ($1, $2, $3)")
        .bind::<diesel::sql_types::BigInt, _>(class.course_id)
        .bind::<diesel::sql_types::BigInt, _>(late.id)
        .bind::<diesel::sql_types::Timestamptz, _>(crate::helpers::start_time() + chrono::Duration::hours(1))
        .execute(&mut conn)
        .unwrap();
    conn.run_pending_migrations(rollcall::db::MIGRATIONS).unwrap();

    let periods: Vec<(i64, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> =
        enrollments::table
            .select((enrollments::student_id, enrollments::enrolled_at, enrollments::left_at))
            .order(enrollments::student_id)
            .load(&mut conn)
            .unwrap();
    assert_eq!(periods.len(), 3, "one period per enrolment: {periods:?}");
    assert!(periods.iter().all(|(_, _, left)| left.is_none()));
    assert_eq!(periods[2].1, crate::helpers::start_time() + chrono::Duration::hours(1));
    let first_opened: Option<chrono::DateTime<chrono::Utc>> =
        lessons::table.find(class.lesson_id).select(lessons::first_opened_at).first(&mut conn).unwrap();
    assert_eq!(first_opened, Some(crate::helpers::start_time()));
    // So the lesson held before the late joiner's enrolment does not count for them.
    assert_eq!(listed(&results(&app, &class, class.lesson_id).await).len(), 2);
}

#[tokio::test]
async fn a_teachers_mark_on_a_lesson_never_opened_counts_for_that_student_only() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let mark = format!("/api/v1/lessons/{}/attendance/{}", class.lesson_id, class.students[0].id);
    app.send(Method::PUT, &mark, Some(&class.teacher), Some(json!({"status": "excused"}))).await.ok(200);
    let report = report(&app, &class).await;
    let marked = row_of(&report, class.students[0].id);
    assert_eq!((marked["lessons_counted"].as_i64(), marked["excused"].as_i64()), (Some(1), Some(1)));
    let other = row_of(&report, class.students[1].id);
    assert_eq!((other["lessons_counted"].as_i64(), other["attendance_rate"].clone()), (Some(0), Value::Null));
    let mine = app.get("/api/v1/me/courses/attendance", &class.students[0].token).await;
    assert_eq!(mine.ok(200)[0]["lessons_counted"], 1);
}

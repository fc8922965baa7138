use crate::helpers::fixtures::insert_users;
use crate::helpers::spawn_app;
use reqwest::Method;
use rollcall::domain::user::Role;
use serde_json::json;

#[tokio::test]
async fn a_teacher_creates_a_course_and_becomes_its_teacher() {
    let app = spawn_app().await;
    let (teacher_id, teacher) = app.create_user_directly("teacher", Role::Teacher).await;
    let response =
        app.post("/api/v1/courses", &teacher, json!({"title": "  Databases ", "code": "DB1"})).await;
    let course = response.ok(201);
    assert_eq!(course["title"], "Databases");
    assert_eq!(course["code"], "DB1");
    assert_eq!(course["teacher"]["id"], teacher_id);
    assert_eq!(course["student_count"], 0);
}

#[tokio::test]
async fn only_teachers_create_courses_and_titles_are_validated() {
    let app = spawn_app().await;
    let (_, student) = app.create_user_directly("student", Role::Student).await;
    let (_, teacher) = app.create_user_directly("teacher", Role::Teacher).await;
    app.post("/api/v1/courses", &student, json!({"title": "X"})).await.problem(403, "forbidden");
    app.post("/api/v1/courses", &app.admin_token, json!({"title": "X"})).await.problem(403, "forbidden");
    let invalid = app.post("/api/v1/courses", &teacher, json!({"title": " ", "code": "x".repeat(33)})).await;
    assert_eq!(invalid.problem(422, "validation_failed")["errors"].as_array().unwrap().len(), 2);
    app.post("/api/v1/courses", &teacher, json!({"code": "C"})).await.problem(422, "validation_failed");
    assert_eq!(app.get("/api/v1/courses", &app.admin_token).await.ok(200).as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn each_role_lists_its_own_courses() {
    let app = spawn_app().await;
    let a = app.class("a", 2).await;
    let b = app.class("b", 1).await;
    let titles = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(titles(app.get("/api/v1/courses", &a.teacher).await.ok(200)), ["a course"]);
    assert_eq!(titles(app.get("/api/v1/courses", &b.students[0].token).await.ok(200)), ["b course"]);
    assert_eq!(titles(app.get("/api/v1/courses", &app.admin_token).await.ok(200)), ["a course", "b course"]);
    let course = app.get(&format!("/api/v1/courses/{}", a.course_id), &a.students[1].token).await;
    assert_eq!(course.ok(200)["student_count"], 2);
}

#[tokio::test]
async fn a_course_is_readable_by_its_teacher_students_and_admins_only() {
    let app = spawn_app().await;
    let mine = app.class("mine", 1).await;
    let other = app.class("other", 1).await;
    let path = format!("/api/v1/courses/{}", mine.course_id);
    for token in [&mine.teacher, &mine.students[0].token, &app.admin_token] {
        app.get(&path, token).await.ok(200);
    }
    for token in [&other.teacher, &other.students[0].token] {
        app.get(&path, token).await.problem(403, "forbidden");
    }
    app.get("/api/v1/courses/999999", &mine.teacher).await.problem(404, "not_found");
    app.get("/api/v1/courses/abc", &mine.teacher).await.problem(400, "bad_request");
}

#[tokio::test]
async fn enrolment_reports_enrolled_already_enrolled_and_not_found() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let newcomers = insert_users(&app.pool, &["new.one".into(), "new.two".into()], Role::Student).await;
    app.create_user_directly("a.teacher", Role::Teacher).await;
    let response = app
        .post(
            &format!("/api/v1/courses/{}/students", class.course_id),
            &class.teacher,
            json!({"usernames": ["NEW.ONE", "c.s000", "ghost", "a.teacher"], "student_numbers": ["n-new.two", "n-nobody"]}),
        )
        .await;
    let body = response.ok(200);
    let ids = |key: &str| -> Vec<i64> {
        body[key].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect()
    };
    let mut enrolled = ids("enrolled");
    enrolled.sort();
    assert_eq!(enrolled, newcomers);
    assert_eq!(ids("already_enrolled"), [class.students[0].id]);
    assert_eq!(body["not_found"], json!(["ghost", "a.teacher", "n-nobody"]));

    let roster = app.get(&format!("/api/v1/courses/{}/students", class.course_id), &class.teacher).await;
    let numbers: Vec<&str> =
        roster.ok(200).as_array().unwrap().iter().map(|u| u["student_number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["n-c.s000", "n-new.one", "n-new.two"], "ordered by student number");
}

#[tokio::test]
async fn names_with_control_characters_are_simply_not_found() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let response = app
        .post(
            &format!("/api/v1/courses/{}/students", class.course_id),
            &class.teacher,
            json!({"usernames": ["c.s000", "nul\u{0}name"], "student_numbers": ["\u{10}"]}),
        )
        .await;
    let body = response.ok(200);
    assert_eq!(body["not_found"], json!(["nul\u{0}name", "\u{10}"]));
    assert_eq!(body["already_enrolled"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_enrolment_is_a_validation_error() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}/students", class.course_id);
    app.post(&path, &class.teacher, json!({})).await.problem(422, "validation_failed");
    let too_many: Vec<String> = (0..1001).map(|i| format!("user{i}")).collect();
    app.post(&path, &class.teacher, json!({"usernames": too_many})).await.problem(422, "validation_failed");
}

#[tokio::test]
async fn removing_a_student_keeps_their_attendance() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    let path = format!("/api/v1/courses/{}/students/{}", class.course_id, class.students[0].id);
    let removed = app.send(Method::DELETE, &path, Some(&class.teacher), None).await;
    assert_eq!(removed.status, 204);
    app.send(Method::DELETE, &path, Some(&class.teacher), None).await.problem(404, "not_found");

    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let body = results.ok(200);
    assert_eq!(body["summary"]["enrolled"], 1);
    let former =
        body["records"].as_array().unwrap().iter().find(|r| r["student"]["id"] == class.students[0].id);
    assert_eq!(former.expect("the former student's record is listed")["status"], "present");
}

#[tokio::test]
async fn another_teacher_can_neither_read_nor_change_a_roster() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    let roster = format!("/api/v1/courses/{}/students", class.course_id);
    app.get(&roster, &other.teacher).await.problem(403, "forbidden");
    app.get(&roster, &class.students[0].token).await.problem(403, "forbidden");
    app.get(&roster, &app.admin_token).await.ok(200);
    app.post(&roster, &other.teacher, json!({"usernames": ["c.s000"]})).await.problem(403, "forbidden");
    app.post(&roster, &app.admin_token, json!({"usernames": ["c.s000"]})).await.problem(403, "forbidden");
    let remove = format!("{roster}/{}", class.students[0].id);
    app.send(Method::DELETE, &remove, Some(&other.teacher), None).await.problem(403, "forbidden");
    assert_eq!(app.get(&roster, &class.teacher).await.ok(200).as_array().unwrap().len(), 1);
}

async fn enrol_csv(
    app: &crate::helpers::TestApp,
    course_id: i64,
    teacher: &str,
    body: impl Into<reqwest::Body>,
) -> crate::helpers::http::Response {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/courses/{course_id}/students")))
        .bearer_auth(teacher)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::http::into_response(response).await
}

#[tokio::test]
async fn a_csv_class_list_enrols_by_username_or_student_number() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let names: Vec<String> = ["ada.l", "alan.t", "grace.h"].map(String::from).to_vec();
    insert_users(&app.pool, &names, Role::Student).await;
    // As a spreadsheet exports it: BOM, `;`, CRLF, a quoted cell, a column nobody asked for.
    let list = "\u{feff}Name;Username;Student_Number\r\n\"Lovelace; Ada\";ada.l;\r\nTuring;;n-alan.t\r\nNobody;no.body;\r\n";
    let result = enrol_csv(&app, class.course_id, &class.teacher, list).await.ok(200).clone();
    let enrolled: Vec<&str> =
        result["enrolled"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(enrolled.len(), 2, "{result}");
    assert!(enrolled.contains(&"ada.l") && enrolled.contains(&"alan.t"));
    assert_eq!(result["not_found"], json!(["no.body"]));
    // A list of one column is a class list too.
    let one = enrol_csv(&app, class.course_id, &class.teacher, "username\ngrace.h\n").await.ok(200).clone();
    assert_eq!(one["enrolled"][0]["username"], "grace.h");
    let roster = app.get(&format!("/api/v1/courses/{}/students", class.course_id), &class.teacher).await;
    assert_eq!(roster.ok(200).as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_csv_class_list_without_a_name_column_or_not_csv_changes_nothing() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let refused = enrol_csv(&app, class.course_id, &class.teacher, "name;email\nAda;ada@example.edu\n").await;
    assert_eq!(refused.problem(422, "validation_failed")["errors"][0]["field"], "usernames");
    enrol_csv(&app, class.course_id, &class.teacher, b"username;x\n\xff\xfe;y\n".to_vec())
        .await
        .problem(400, "bad_request");
    enrol_csv(
        &app,
        class.course_id,
        &class.teacher,
        "just some text
",
    )
    .await
    .problem(422, "validation_failed");
    let roster = app.get(&format!("/api/v1/courses/{}/students", class.course_id), &class.teacher).await;
    assert_eq!(roster.ok(200).as_array().unwrap().len(), 0);
}

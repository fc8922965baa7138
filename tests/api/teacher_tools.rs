//! The teacher's rules and tools: the course policy and rates, a record's history, bulk
//! marking, exports (long layout, Excel), QR codes and stale codes.

mod bulk;
mod exports;
mod history;
mod policy;
mod qr;

use crate::helpers::TestApp;
use crate::helpers::fixtures::Class;
use serde_json::{Value, json};

/// A second lesson of the class's course; returns its id.
async fn another_lesson(app: &TestApp, class: &Class, title: &str) -> i64 {
    let path = format!("/api/v1/courses/{}/lessons", class.course_id);
    app.post(&path, &class.teacher, json!({"title": title})).await.ok(201)["id"].as_i64().unwrap()
}

async fn put_status(app: &TestApp, class: &Class, lesson_id: i64, student_id: i64, body: Value) {
    let path = format!("/api/v1/lessons/{lesson_id}/attendance/{student_id}");
    app.send(reqwest::Method::PUT, &path, Some(&class.teacher), Some(body)).await.ok(200);
}

async fn close(app: &TestApp, class: &Class, lesson_id: i64) {
    let path = format!("/api/v1/lessons/{lesson_id}/checkin/close");
    app.send(reqwest::Method::POST, &path, Some(&class.teacher), None).await.ok(200);
}

/// Counts rows of a table, straight from the database.
fn rows(app: &TestApp, table: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<Count>(&mut conn).unwrap().n
}

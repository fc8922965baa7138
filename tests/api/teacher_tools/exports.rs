//! Exports: the long layout, Excel workbooks that match the CSV cell for cell, and content
//! negotiation.

use calamine::{Data, Reader, Xlsx};
use serde_json::json;

use super::put_status;
use crate::helpers::fixtures::Class;
use crate::helpers::{TestApp, spawn_app};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn download(app: &TestApp, token: &str, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

/// The first worksheet's cells, each as the CSV writes it (dates on the course's clock).
fn workbook_cells(bytes: &[u8], offset: &str) -> Vec<Vec<String>> {
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    sheet
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(text) => text.clone(),
                    Data::Float(n) => n.to_string(),
                    Data::Int(n) => n.to_string(),
                    Data::DateTime(at) => {
                        let at = at.as_datetime().expect("a date-time cell");
                        format!("{}{offset}", at.format("%Y-%m-%dT%H:%M:%S"))
                    }
                    other => panic!("unexpected cell {other:?}"),
                })
                .collect()
        })
        .collect()
}

fn csv_cells(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
}

/// A Vienna course with a held lesson: s0 checked in, s1 excused with a note, s2 absent.
async fn held(app: &TestApp) -> Class {
    let class = app.class("c", 3).await;
    let course = format!("/api/v1/courses/{}", class.course_id);
    app.send(
        reqwest::Method::PATCH,
        &course,
        Some(&class.teacher),
        Some(json!({"time_zone": "Europe/Vienna"})),
    )
    .await
    .ok(200);
    app.open_checkin(&class, json!({"duration_seconds": 60})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    put_status(
        app,
        &class,
        class.lesson_id,
        class.students[1].id,
        json!({"status": "excused", "note": "=1+1"}),
    )
    .await;
    app.advance(120);
    class
}

#[tokio::test]
async fn a_workbook_has_the_csvs_header_and_cells_typed() {
    let app = spawn_app().await;
    let class = held(&app).await;
    for path in [
        format!("/api/v1/courses/{}/attendance", class.course_id),
        format!("/api/v1/courses/{}/attendance?layout=long", class.course_id),
        format!("/api/v1/lessons/{}/attendance", class.lesson_id),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let csv = download(&app, &class.teacher, &format!("{path}{sep}format=csv"), None)
            .await
            .text()
            .await
            .unwrap();
        let xlsx = download(&app, &class.teacher, &path, Some(XLSX)).await;
        assert_eq!(xlsx.status(), 200, "{path}");
        assert_eq!(xlsx.headers()["content-type"], XLSX);
        assert!(xlsx.headers()["content-disposition"].to_str().unwrap().ends_with(".xlsx\""));
        let cells = workbook_cells(&xlsx.bytes().await.unwrap(), "+01:00");
        // The CSV defuses formula-like text with a leading `'`; the workbook stores text as text.
        let expected: Vec<Vec<String>> = csv_cells(&csv)
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|cell| cell.strip_prefix('\'').map(str::to_owned).unwrap_or(cell))
                    .collect()
            })
            .collect();
        assert_eq!(cells.len(), expected.len(), "{path}");
        for (got, want) in cells.iter().zip(&expected) {
            assert_eq!(got.len(), want.len(), "{path}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(want) {
                // Numbers compare as numbers (the CSV writes a rate with four decimals).
                let same = match (g.parse::<f64>(), w.parse::<f64>()) {
                    (Ok(g), Ok(w)) => (g - w).abs() < 1e-9,
                    _ => g == w,
                };
                assert!(same, "{path}: workbook {got:?} vs CSV {want:?}");
            }
        }
        assert!(cells.len() > 1);
    }
    // Typed: a time is a date-time cell, a count a number, in the summary.
    let bytes = download(
        &app,
        &class.teacher,
        &format!("/api/v1/courses/{}/attendance?format=xlsx", class.course_id),
        None,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    assert!(
        matches!(sheet.get((1, 3)), Some(Data::Float(_))),
        "present is a number: {:?}",
        sheet.get((1, 3))
    );
    assert!(
        matches!(sheet.get((1, 8)), Some(Data::DateTime(_))),
        "last_attended_at: {:?}",
        sheet.get((1, 8))
    );
    assert!(frozen_header(&bytes), "the header row is frozen");
}

/// Whether the first worksheet freezes its first row.
fn frozen_header(xlsx: &[u8]) -> bool {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    let mut sheet = String::new();
    archive.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    sheet.contains("ySplit=\"1\"") && sheet.contains("state=\"frozen\"")
}

#[tokio::test]
async fn the_long_layout_has_a_row_per_student_per_counted_lesson() {
    let app = spawn_app().await;
    let class = held(&app).await;
    let path = format!("/api/v1/courses/{}/attendance?format=csv&layout=long", class.course_id);
    let csv = app.get(&path, &class.teacher).await;
    let rows = csv_cells(&csv.text);
    assert_eq!(
        rows[0],
        [
            "lesson_id",
            "lesson_title",
            "starts_at",
            "student_number",
            "username",
            "real_name",
            "status",
            "checked_in_at",
            "method",
            "note",
            "flags"
        ]
    );
    let lesson = class.lesson_id.to_string();
    assert_eq!(
        rows[1],
        [
            lesson.as_str(),
            "Lesson 1",
            "",
            "n-c.s000",
            "c.s000",
            "Real c.s000",
            "present",
            "2026-11-25T09:00:00+01:00",
            "code",
            "",
            ""
        ]
    );
    assert_eq!(rows[2][6..10], ["excused", "", "manual", "'=1+1"]);
    assert_eq!(rows[3][6..9], ["absent", "", ""]);
    assert_eq!(rows.len(), 4);
}

#[tokio::test]
async fn unknown_formats_and_layouts_are_400_and_an_unmet_accept_is_406() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let course = format!("/api/v1/courses/{}/attendance", class.course_id);
    let lesson = format!("/api/v1/lessons/{}/attendance", class.lesson_id);
    app.get(&format!("{course}?format=pdf"), &class.teacher).await.problem(400, "bad_request");
    app.get(&format!("{course}?layout=wide"), &class.teacher).await.problem(400, "bad_request");
    for path in [&course, &lesson] {
        let refused = download(&app, &class.teacher, path, Some("image/png")).await;
        assert_eq!(refused.status(), 406, "{path}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "not_acceptable");
        let json = download(&app, &class.teacher, path, Some("application/json, */*")).await;
        assert_eq!(json.status(), 200);
        assert!(json.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    }
}

//! `POST /courses/{id}/lessons/series`: numbering, weeks, skipped dates, daylight saving,
//! the 200-lesson cap, and nothing created by a refused series.

use super::{invalid, lesson_count, set_time_zone};
use crate::helpers::spawn_app;
use serde_json::{Value, json};

fn starts(created: &Value) -> Vec<(String, String)> {
    created["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["title"].as_str().unwrap().to_owned(), l["starts_at"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_series_numbers_its_lessons_every_other_week_without_skipped_dates() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}/lessons/series", class.course_id);
    let body = json!({
        "title": "Lecture {n}", "first_date": "2026-12-01", "until": "2026-12-31",
        "weekdays": ["tue", "thu"], "every_weeks": 2, "start_time": "09:15", "duration_minutes": 90,
        "skip_dates": ["2026-12-03"], "auto_checkin": {"open_offset_minutes": -5, "late_after_seconds": 300}
    });
    let created = app.post(&path, &class.teacher, body).await;
    let created = created.ok(201);
    assert_eq!(
        starts(created),
        [
            ("Lecture 1".into(), "2026-12-01T09:15:00Z".into()),
            ("Lecture 2".into(), "2026-12-15T09:15:00Z".into()),
            ("Lecture 3".into(), "2026-12-17T09:15:00Z".into()),
            ("Lecture 4".into(), "2026-12-29T09:15:00Z".into()),
            ("Lecture 5".into(), "2026-12-31T09:15:00Z".into()),
        ]
    );
    let first = &created["lessons"][0];
    assert_eq!(first["ends_at"], "2026-12-01T10:45:00Z");
    assert_eq!(first["cancelled"], false);
    assert_eq!(
        first["auto_checkin"],
        json!({"open_offset_minutes": -5, "rotation_seconds": 10, "code_length": 6, "duration_seconds": 600, "late_after_seconds": 300})
    );
    assert_eq!(first["checkin"]["state"], "not_started");
    assert_eq!(created["warnings"], json!([]));
    assert_eq!(lesson_count(&app, class.course_id), 6);
}

#[tokio::test]
async fn a_series_keeps_the_local_wall_clock_across_daylight_saving_changes() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let course = format!("/api/v1/courses/{}", class.course_id);
    set_time_zone(&app, &class, "Europe/Vienna").await;
    let path = format!("{course}/lessons/series");
    // Vienna leaves summer time on 2026-10-25: 09:15 is 07:15Z before and 08:15Z after.
    let autumn = json!({"title": "L{n}", "first_date": "2026-10-20", "until": "2026-10-27",
                        "weekdays": ["tue"], "start_time": "09:15", "duration_minutes": 90});
    let created = app.post(&path, &class.teacher, autumn).await;
    let times: Vec<String> = starts(created.ok(201)).into_iter().map(|(_, at)| at).collect();
    assert_eq!(times, ["2026-10-20T07:15:00Z", "2026-10-27T08:15:00Z"]);
    // It enters summer time on 2027-03-28 at 02:00: 02:30 does not exist that day and moves
    // to 03:30 (01:30Z), with a warning naming the date.
    let spring = json!({"title": "N{n}", "first_date": "2027-03-21", "until": "2027-04-04",
                        "weekdays": ["sun"], "start_time": "02:30", "duration_minutes": 60});
    let created = app.post(&path, &class.teacher, spring).await;
    let created = created.ok(201);
    let times: Vec<String> = starts(created).into_iter().map(|(_, at)| at).collect();
    assert_eq!(times, ["2027-03-21T01:30:00Z", "2027-03-28T01:30:00Z", "2027-04-04T00:30:00Z"]);
    let warnings = created["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().starts_with("2027-03-28"), "{warnings:?}");
    // An hour that occurs twice (2026-10-25 02:30) takes the earlier instant (00:30Z, CEST).
    let twice = json!({"title": "A{n}", "first_date": "2026-10-25", "until": "2026-10-25",
                       "weekdays": ["sun"], "start_time": "02:30", "duration_minutes": 60});
    let created = app.post(&path, &class.teacher, twice).await;
    assert_eq!(starts(created.ok(201))[0].1, "2026-10-25T00:30:00Z");
}

#[tokio::test]
async fn a_refused_series_names_the_field_and_creates_nothing() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}/lessons/series", class.course_id);
    let base = json!({"title": "L{n}", "first_date": "2027-01-01", "until": "2027-07-19",
                      "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                      "start_time": "09:00", "duration_minutes": 60});
    let with = |changes: Value| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        body
    };
    let cases = [
        (json!({"until": "2027-07-20"}), vec!["until"]),
        (json!({"until": "2026-12-31"}), vec!["until"]),
        (json!({"weekdays": []}), vec!["weekdays"]),
        (json!({"weekdays": ["monday"]}), vec!["weekdays"]),
        (json!({"every_weeks": 5}), vec!["every_weeks"]),
        (json!({"start_time": "9:00"}), vec!["start_time"]),
        (json!({"duration_minutes": 0}), vec!["duration_minutes"]),
        (json!({"duration_minutes": 1441, "title": ""}), vec!["title", "duration_minutes"]),
        (
            json!({"auto_checkin": {"code_length": 3, "open_offset_minutes": 61}}),
            vec!["auto_checkin.open_offset_minutes", "auto_checkin.code_length"],
        ),
    ];
    for (changes, fields) in cases {
        invalid(&app.post(&path, &class.teacher, with(changes)).await, &fields);
    }
    assert_eq!(lesson_count(&app, class.course_id), 1, "only the fixture's lesson");
    // Exactly 200 is allowed.
    let other = app.class("o", 0).await;
    app.post(&path, &other.teacher, base.clone()).await.problem(403, "forbidden");
    let created = app.post(&path, &class.teacher, base).await;
    assert_eq!(created.ok(201)["lessons"].as_array().unwrap().len(), 200);
    assert_eq!(lesson_count(&app, class.course_id), 201);
}

//! `POST /courses/{id}/lessons/series`: a term's lessons from one rule, laid out in the
//! course's time zone (see `domain::series`), created together or not at all.

use actix_web::{HttpResponse, post, web};
use chrono::NaiveDate;
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AutoCheckinRequest, Lesson, assemble, queries, schedule};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::lesson::LessonFields;
use crate::domain::series::{self, SeriesSpec};
use crate::domain::text::{Invalid, check};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;

/// A series of lessons: one per matching local date in the course's time zone.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LessonSeries {
    /// Each lesson's title; `{n}` is replaced by its number (from 1, skipped dates take none).
    #[schema(example = "Lecture {n}")]
    pub title: String,
    /// The first date that may hold a lesson (local, `YYYY-MM-DD`).
    #[schema(value_type = String, format = Date, example = "2026-09-01")]
    pub first_date: NaiveDate,
    /// The last date that may hold a lesson (inclusive).
    #[schema(value_type = String, format = Date, example = "2026-12-18")]
    pub until: NaiveDate,
    /// Days of the week: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    #[schema(example = json!(["tue", "thu"]))]
    pub weekdays: Vec<String>,
    /// Every how many weeks (1..=4, default 1), counted in ISO weeks from the week of
    /// `first_date`.
    #[schema(example = 1)]
    pub every_weeks: Option<i64>,
    /// Local wall-clock start time, `HH:MM`, kept across daylight-saving changes (a time
    /// that does not exist that day moves forward by the gap, with a warning; one that
    /// occurs twice takes the earlier instant).
    #[schema(example = "09:15")]
    pub start_time: String,
    /// 1..=1440; each lesson's `ends_at` is its start plus this (elapsed time).
    #[schema(example = 90)]
    pub duration_minutes: i64,
    /// Dates that hold no lesson.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["2026-10-06"]))]
    pub skip_dates: Vec<NaiveDate>,
    /// Automatic check-in for every lesson of the series.
    #[schema(inline)]
    pub auto_checkin: Option<AutoCheckinRequest>,
}

/// The lessons a series created, and what had to be adjusted to place them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSeries {
    /// In date order.
    pub lessons: Vec<Lesson>,
    /// One per lesson whose start time did not exist that day (clocks going forward), each
    /// beginning with that local date.
    #[schema(example = json!(["2027-03-28: 02:30 does not exist in Europe/Vienna (the clocks go forward); moved to 03:30"]))]
    pub warnings: Vec<String>,
}

problems!(CreateSeriesProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, e.g. a date not written YYYY-MM-DD",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such course",
    ApiError::Validation(Vec::new()) => "Invalid field: until before first_date, no weekdays or no matching date, more than 200 lessons, settings out of range",
});

/// Create a term's lessons from one rule (the course's teacher).
///
/// One lesson per date from `first_date` to `until` (inclusive) that falls on one of
/// `weekdays`, in every `every_weeks`-th ISO week counted from the week of `first_date`,
/// except `skip_dates`; each starts at `start_time` on the course's local wall clock and
/// ends `duration_minutes` later. At most 200 lessons; all are created, or none.
#[utoipa::path(
    tag = "lessons",
    params(("course_id" = i64, Path, description = "Course id")),
    request_body(content = LessonSeries, example = json!({
        "title": "Lecture {n}", "first_date": "2026-09-01", "until": "2026-12-18",
        "weekdays": ["tue", "thu"], "start_time": "09:15", "duration_minutes": 90,
        "skip_dates": ["2026-10-06"], "auto_checkin": {"open_offset_minutes": -5, "late_after_seconds": 600}
    })),
    responses(
        (status = 201, description = "Created", body = CreatedSeries),
        CreateSeriesProblems,
    )
)]
#[post("/courses/{course_id}/lessons/series")]
pub async fn create_series(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<LessonSeries>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let auto = body.auto_checkin.as_ref().map(AutoCheckinRequest::parse).transpose();
    let spec = SeriesSpec {
        title: body.title,
        first_date: body.first_date,
        until: body.until,
        weekdays: body.weekdays,
        every_weeks: body.every_weeks,
        start_time: body.start_time,
        duration_minutes: body.duration_minutes,
        skip_dates: body.skip_dates,
    };
    let (course_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let created = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_course(conn, course_id, &user, access::TEACHER)?;
        let zone = courses::time_zone(conn, course_id)?;
        // Every field's error at once: the series' and the automatic check-in's.
        let plan = series::plan(&spec, zone);
        let mut errors = Vec::new();
        for result in [plan.as_ref().err(), auto.as_ref().err()].into_iter().flatten() {
            let Invalid(more) = result;
            errors.extend(more.iter().cloned());
        }
        check(errors)?;
        let (plan, auto) = (plan?, auto?);
        let fields: Vec<LessonFields> = plan
            .lessons
            .into_iter()
            .map(|planned| LessonFields {
                title: planned.title,
                starts_at: Some(planned.starts_at),
                ends_at: Some(planned.ends_at),
                cancelled: false,
                auto,
            })
            .collect();
        let ids = conn.transaction(|conn| -> Result<_, ApiError> {
            let rows = queries::insert_many(conn, course_id, &fields, now)?;
            // New lessons have no dashboard to tell.
            for row in &rows {
                schedule::plan(conn, row, user.id, now, schedule::Past::Held)?;
            }
            Ok(rows.iter().map(|row| row.id).collect::<Vec<_>>())
        })?;
        let rows = queries::get_many(conn, &ids)?;
        let lessons = assemble(conn, rows, None, now)?;
        Ok(CreatedSeries { lessons, warnings: plan.warnings })
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

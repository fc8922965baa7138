//! The student side: checking in with a code, and reading one's own attendance.

pub mod client;
mod mine;
pub mod queries;

pub use mine::list_my_attendance;

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::{Connection, PgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::attendance::records::{self, NewCheckin, RecordRow};
use crate::attendance::status::{RecordStatus, Status};
use crate::auth::extract::{Authenticated, StudentOnly};
use crate::auth::login::seconds_until;
use crate::db;
use crate::error::{ApiError, Problem};
use crate::live::events::{self, Event};
use crate::metrics::Attempt;
use crate::rejections::JsonObject;
use crate::rotating_code::Verdict;
use crate::state::AppState;
use client::ClientInfo;

/// Wrong codes allowed per student within `WINDOW`.
const MAX_FAILURES: i64 = 10;
const WINDOW: Duration = Duration::seconds(60);

/// A student's check-in: the code alone says which lesson.
#[derive(Deserialize, ToSchema)]
pub struct CheckinRequest {
    /// The code shown on the teacher's screen.
    #[schema(
        example = "042917",
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub code: String,
}

/// A student's record for the lesson the code belonged to.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinResult {
    /// The id of the lesson the code belonged to.
    pub lesson_id: i64,
    /// That lesson's title.
    pub lesson_title: String,
    /// The id of the lesson's course.
    pub course_id: i64,
    /// That course's title.
    pub course_title: String,
    /// `present` or `late` for a new check-in; a repeat returns the stored record as it is
    /// (which may be a teacher's `excused`, say).
    pub status: Status,
    /// When the student checked in with a code (RFC 3339, UTC); `null` only for a repeat
    /// that finds a record the teacher set without a check-in.
    pub checked_in_at: Option<DateTime<Utc>>,
}

enum Outcome {
    Created(CheckinResult),
    Existing(CheckinResult),
    Rejected(Verdict),
    Throttled { retry_after_secs: u64 },
}

/// Check in with a code (student).
///
/// The code alone says which lesson: the server looks for an open check-in among the
/// student's courses whose current code (or, for `min(5, rotation_seconds / 2)` seconds
/// after a rotation, previous code) matches. The first successful check-in answers 201; any
/// later one for the same lesson answers 200 with the stored record and changes nothing.
///
/// Send the SPA's device id in `X-Device-Id`: the teacher's results flag a device that
/// checked in several students. Every rejected code counts toward a throttle: after 10
/// within 60 seconds, every attempt (right or wrong) answers 429 until `Retry-After`.
#[utoipa::path(
    tag = "check-in",
    request_body(content = CheckinRequest, example = json!({"code": "042917"})),
    params(("X-Device-Id" = Option<String>, Header, pattern = "^[!-~]{1,128}$",
        description = "The SPA's stable device id (1–128 printable ASCII characters, no spaces)")),
    responses(
        (status = 201, description = "Checked in", body = CheckinResult),
        (status = 200, description = "Already had a record for that lesson; nothing changed", body = CheckinResult),
        (status = 400, description = "Malformed body or `X-Device-Id` (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller is not a student (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No open check-in matches (`invalid_code`), the code has just expired (`code_expired`), or the code is empty (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes (`too_many_attempts`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    )
)]
#[post("/checkins")]
pub async fn create_checkin(
    state: web::Data<AppState>,
    req: HttpRequest,
    student: Authenticated<StudentOnly>,
    body: JsonObject<CheckinRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.into_inner().code.trim().to_owned();
    if code.is_empty() || code.len() > 32 {
        return Err(ApiError::invalid_field("code", "must be 1 to 32 characters long"));
    }
    let client = ClientInfo::from_request(&req, &state.trusted_proxies)?;
    let (student_id, now) = (student.id, state.clock.now());
    let outcome = db::run(&state.pool, move |conn| {
        Ok(conn.transaction(|conn| check_in(conn, student_id, &code, &client, now))?)
    })
    .await?;
    state.metrics.count_checkin(match &outcome {
        Outcome::Created(_) => Attempt::Accepted,
        Outcome::Existing(_) => Attempt::Repeated,
        Outcome::Rejected(Verdict::Expired) => Attempt::CodeExpired,
        Outcome::Rejected(_) => Attempt::InvalidCode,
        Outcome::Throttled { .. } => Attempt::Throttled,
    });
    match outcome {
        Outcome::Created(result) => Ok(HttpResponse::Created().json(result)),
        Outcome::Existing(result) => Ok(HttpResponse::Ok().json(result)),
        Outcome::Rejected(Verdict::Expired) => Err(ApiError::CodeExpired),
        Outcome::Rejected(_) => Err(ApiError::InvalidCode),
        Outcome::Throttled { retry_after_secs } => Err(ApiError::TooManyAttempts { retry_after_secs }),
    }
}

fn check_in(
    conn: &mut PgConnection,
    student_id: i64,
    code: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Outcome> {
    queries::lock_student(conn, student_id)?;
    let (failures, oldest) = queries::recent_failures(conn, student_id, now - WINDOW)?;
    if failures >= MAX_FAILURES {
        return Ok(Outcome::Throttled {
            retry_after_secs: seconds_until(now, oldest.unwrap_or(now) + WINDOW),
        });
    }
    let windows = queries::open_windows_for(conn, student_id, now)?;
    let verdicts: Vec<Verdict> =
        windows.iter().map(|open| open.window.schedule().verify(code, now)).collect();
    let Some(matched) = verdicts.iter().position(|v| *v == Verdict::Accepted).map(|i| &windows[i]) else {
        queries::record_failure(conn, student_id, now, now - WINDOW)?;
        let verdict = if verdicts.contains(&Verdict::Expired) { Verdict::Expired } else { Verdict::Invalid };
        return Ok(Outcome::Rejected(verdict));
    };
    let window = &matched.window;
    let status = if window.is_late(now) { RecordStatus::Late } else { RecordStatus::Present };
    let inserted = records::insert_checkin(
        conn,
        &NewCheckin {
            lesson_id: window.lesson_id,
            student_id,
            window_id: window.id,
            status,
            at: now,
            client_ip: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
            device_id: client.device_id.as_deref(),
        },
    )?;
    let result = |record: RecordRow| CheckinResult {
        lesson_id: window.lesson_id,
        lesson_title: matched.lesson_title.clone(),
        course_id: matched.course_id,
        course_title: matched.course_title.clone(),
        status: record.status.into(),
        checked_in_at: record.checked_in_at,
    };
    Ok(match inserted {
        Some(record) => {
            events::publish(conn, Event::Record { lesson_id: window.lesson_id, student_id })?;
            Outcome::Created(result(record))
        }
        None => {
            let existing =
                records::find(conn, window.lesson_id, student_id)?.ok_or(diesel::result::Error::NotFound)?;
            Outcome::Existing(result(existing))
        }
    })
}

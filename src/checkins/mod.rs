//! The student side: checking in with a code, and reading one's own attendance.

pub mod batch;
pub mod client;
mod mine;
pub mod queries;

pub use mine::list_my_attendance;

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::attendance::status::Status;
use crate::auth::extract::{Claimed, StudentOnly};
use crate::error::{ApiError, Problem};
use crate::metrics::Attempt;
use crate::rejections::JsonObject;
use crate::rotating_code::Verdict;
use crate::state::AppState;
use batch::Outcome;
use client::ClientInfo;

/// Wrong codes allowed per student within `WINDOW`.
pub(crate) const MAX_FAILURES: i64 = 10;
pub(crate) const WINDOW: Duration = Duration::seconds(60);

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
    student: Claimed<StudentOnly>,
    body: JsonObject<CheckinRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.into_inner().code.trim().to_owned();
    if code.is_empty() || code.len() > 32 {
        return Err(ApiError::invalid_field("code", "must be 1 to 32 characters long"));
    }
    let client = ClientInfo::from_request(&req, &state.trusted_proxies)?;
    let attempt = batch::Attempt { student_id: student.id, code, client, now: state.clock.now() };
    let outcome = state.checkins.submit(attempt).await?;
    let attempt = match &outcome {
        Outcome::Created(_) => Some(Attempt::Accepted),
        Outcome::Existing(_) => Some(Attempt::Repeated),
        Outcome::Rejected(Verdict::Expired) => Some(Attempt::CodeExpired),
        Outcome::Rejected(_) => Some(Attempt::InvalidCode),
        Outcome::Throttled { .. } => Some(Attempt::Throttled),
        // Not a check-in attempt: the account behind the token is gone.
        Outcome::UnknownStudent => None,
    };
    if let Some(attempt) = attempt {
        state.metrics.count_checkin(attempt);
    }
    match outcome {
        Outcome::Created(result) => Ok(HttpResponse::Created().json(result)),
        Outcome::Existing(result) => Ok(HttpResponse::Ok().json(result)),
        Outcome::Rejected(Verdict::Expired) => Err(ApiError::CodeExpired),
        Outcome::Rejected(_) => Err(ApiError::InvalidCode),
        Outcome::Throttled { retry_after_secs } => Err(ApiError::TooManyAttempts { retry_after_secs }),
        Outcome::UnknownStudent => Err(ApiError::Unauthorized("the access token's user no longer exists")),
    }
}

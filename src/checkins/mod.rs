//! A student checking in with a code (as opposed to the teacher's check-in control, in
//! `lessons::checkin_control`): the handler, and the group commit that settles check-ins.

pub mod batch;
pub mod codes;
pub mod queries;
mod settle;

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::{Claimed, StudentOnly};
use crate::client::{ClientInfo, TrustedProxies};
use crate::clock::Clock;
use crate::domain::code::Verdict;
use crate::domain::status::Status;
use crate::domain::text::{CheckinCode, Invalid};
use crate::error::{ApiError, problems};
use crate::metrics::{CheckinOutcome, Metrics};
use crate::rejections::JsonObject;
use batch::{Checkins, Outcome};

/// A student's check-in: the code alone says which lesson.
#[derive(Deserialize, ToSchema)]
pub struct CheckinRequest {
    /// The code shown on the teacher's screen.
    #[schema(example = "042917")]
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

problems!(CreateCheckinProblems {
    ApiError::BadRequest(String::new()) => "Malformed body or `X-Device-Id`",
    ApiError::Forbidden("") => "Caller is not a student",
    ApiError::InvalidCode => "No open check-in matches",
    ApiError::CodeExpired => "The code has just expired",
    ApiError::Validation(Vec::new()) => "The code is empty",
    ApiError::TooManyAttempts { retry_after_secs: 1 } => "Too many wrong codes",
});

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
        CreateCheckinProblems,
    )
)]
#[post("/checkins")]
pub async fn create_checkin(
    checkins: web::Data<Checkins>,
    clock: web::Data<dyn Clock>,
    metrics: web::Data<Metrics>,
    proxies: web::Data<TrustedProxies>,
    req: HttpRequest,
    student: Claimed<StudentOnly>,
    body: JsonObject<CheckinRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = CheckinCode::parse(&body.code).map_err(|message| Invalid::field("code", message))?;
    let client = ClientInfo::from_request(&req, &proxies)?;
    let attempt = batch::Attempt {
        student_id: student.id,
        session_id: student.session_id,
        code: code.into_inner(),
        client,
        now: clock.now(),
    };
    let outcome = checkins.submit(attempt).await?;
    let counted = match &outcome {
        Outcome::Created(_) => Some(CheckinOutcome::Accepted),
        Outcome::Existing(_) => Some(CheckinOutcome::Repeated),
        Outcome::Rejected(Verdict::Expired) => Some(CheckinOutcome::CodeExpired),
        Outcome::Rejected(_) => Some(CheckinOutcome::InvalidCode),
        Outcome::Throttled { .. } => Some(CheckinOutcome::Throttled),
        // Not a check-in attempt: the account behind the token is gone.
        Outcome::UnknownStudent | Outcome::SessionRevoked => None,
    };
    if let Some(counted) = counted {
        metrics.count_checkin(counted);
    }
    match outcome {
        Outcome::Created(result) => Ok(HttpResponse::Created().json(result)),
        Outcome::Existing(result) => Ok(HttpResponse::Ok().json(result)),
        Outcome::Rejected(Verdict::Expired) => Err(ApiError::CodeExpired),
        Outcome::Rejected(_) => Err(ApiError::InvalidCode),
        Outcome::Throttled { retry_after_secs } => Err(ApiError::TooManyAttempts { retry_after_secs }),
        Outcome::UnknownStudent => {
            Err(ApiError::Unauthorized("the access token's user or session no longer exists"))
        }
        Outcome::SessionRevoked => Err(ApiError::SessionRevoked),
    }
}

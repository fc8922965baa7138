//! Check-in control for the lesson's teacher: open a window, close it, and read the
//! current code (the polling fallback for dashboards without a WebSocket).

use actix_web::{get, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::{Connection, PgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queries::{self, NewWindow};
use super::window::{CheckinState, Window};
use crate::auth::extract::Authenticated;
use crate::courses::access;
use crate::db;
use crate::error::{ApiError, FieldError, Problem, check};
use crate::live::events::{self, Event};
use crate::rejections::JsonObject;
use crate::rotating_code::Frame;
use crate::state::AppState;

/// Check-in settings; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OpenCheckin {
    /// Seconds each code is shown (5..=300, default 10).
    #[schema(minimum = 5, maximum = 300, example = 10)]
    pub rotation_seconds: Option<i64>,
    /// Digits per code (4..=10, default 6).
    #[schema(minimum = 4, maximum = 10, example = 6)]
    pub code_length: Option<i64>,
    /// Seconds until the window closes by itself (30..=14400, default 600).
    #[schema(minimum = 30, maximum = 14400, example = 600)]
    pub duration_seconds: Option<i64>,
    /// Check-ins more than this many seconds after opening count as `late`
    /// (0..=duration_seconds; default: nobody is late).
    #[schema(minimum = 0, example = 300)]
    pub late_after_seconds: Option<i64>,
}

/// Validated settings.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub rotation_seconds: i32,
    pub code_length: i32,
    pub duration_seconds: i32,
    pub late_after_seconds: Option<i32>,
}

impl OpenCheckin {
    pub fn parse(&self) -> Result<Settings, ApiError> {
        let mut errors = Vec::new();
        let mut ranged = |field: &str, value: Option<i64>, default: i64, min: i64, max: i64| -> i32 {
            let value = value.unwrap_or(default);
            if !(min..=max).contains(&value) {
                errors.push(FieldError::new(field, format!("must be between {min} and {max}")));
            }
            value.clamp(min, max) as i32
        };
        let rotation_seconds = ranged("rotation_seconds", self.rotation_seconds, 10, 5, 300);
        let code_length = ranged("code_length", self.code_length, 6, 4, 10);
        let duration_seconds = ranged("duration_seconds", self.duration_seconds, 600, 30, 14_400);
        let late_after_seconds = self
            .late_after_seconds
            .map(|late| ranged("late_after_seconds", Some(late), 0, 0, i64::from(duration_seconds)));
        check(errors)?;
        Ok(Settings { rotation_seconds, code_length, duration_seconds, late_after_seconds })
    }
}

/// Open check-in (the lesson's teacher).
///
/// Starts a window with a new random secret: codes rotate every `rotation_seconds` from
/// now, and the window closes itself after `duration_seconds`. Re-opening a closed lesson
/// is allowed; records already taken stay. Send `{}` to take every default.
#[utoipa::path(
    tag = "check-in",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    request_body(
        content = OpenCheckin,
        description = "Settings; every field is optional",
        example = json!({"rotation_seconds": 10, "code_length": 6, "duration_seconds": 600, "late_after_seconds": 300})
    ),
    responses(
        (status = 200, description = "Check-in is open", body = CheckinState),
        (status = 400, description = "Malformed body (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the lesson's teacher (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lesson (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Check-in is already open (`checkin_already_open`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A setting is out of range (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/lessons/{lesson_id}/checkin/open")]
pub async fn open_checkin(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<OpenCheckin>,
) -> Result<web::Json<CheckinState>, ApiError> {
    let settings = body.parse()?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("no OS randomness: {e}")))?;
    let (lesson_id, user, now) = (path.into_inner(), caller.user, state.clock.now());
    let window = db::run(&state.pool, move |conn| {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| open(conn, lesson_id, user.id, &settings, &secret, now))
    })
    .await?;
    Ok(web::Json(CheckinState::of(Some(&window), now)))
}

fn open(
    conn: &mut PgConnection,
    lesson_id: i64,
    teacher_id: i64,
    settings: &Settings,
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<Window, ApiError> {
    let already_open =
        || ApiError::conflict("checkin_already_open", "check-in is already open for this lesson");
    if let Some(previous) = queries::unfinalised_window_for_update(conn, lesson_id)? {
        if previous.is_open(now) {
            return Err(already_open());
        }
        // It closed itself at closes_at; record that before starting a new one.
        queries::set_closed_at(conn, previous.id, previous.closes_at)?;
    }
    let new = NewWindow {
        lesson_id,
        secret,
        opened_at: now,
        closes_at: now + Duration::seconds(i64::from(settings.duration_seconds)),
        rotation_seconds: settings.rotation_seconds,
        code_length: settings.code_length,
        late_after_seconds: settings.late_after_seconds,
        opened_by: teacher_id,
    };
    let window = queries::insert_window(conn, &new)?.ok_or_else(already_open)?;
    events::publish(conn, Event::Window { lesson_id })?;
    Ok(window)
}

/// Close check-in (the lesson's teacher).
///
/// Ends the open window now: its codes stop working at once, students without a record
/// become `absent`, and records already taken stay. If check-in is not open (including when
/// it already closed itself at `closes_at`) the answer is 409 `checkin_not_open`. It can be
/// opened again later.
#[utoipa::path(
    tag = "check-in",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "Check-in is closed", body = CheckinState),
        (status = 403, description = "Not the lesson's teacher (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lesson (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Check-in is not open (`checkin_not_open`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/lessons/{lesson_id}/checkin/close")]
pub async fn close_checkin(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<CheckinState>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, state.clock.now());
    let window = db::run(&state.pool, move |conn| {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| match queries::unfinalised_window_for_update(conn, lesson_id)? {
            Some(open) if open.is_open(now) => {
                let closed = queries::set_closed_at(conn, open.id, now)?;
                events::publish(conn, Event::Window { lesson_id })?;
                Ok(closed)
            }
            _ => Err(not_open()),
        })
    })
    .await?;
    Ok(web::Json(CheckinState::of(Some(&window), now)))
}

fn not_open() -> ApiError {
    ApiError::conflict("checkin_not_open", "check-in is not open for this lesson")
}

/// The code shown on the teacher's screen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeFrame {
    /// The lesson whose check-in this code is for.
    pub lesson_id: i64,
    /// The current code: `code_length` decimal digits.
    #[schema(example = "042917")]
    pub code: String,
    /// When this code started being shown.
    pub valid_from: DateTime<Utc>,
    /// When the next code replaces it (or the window closes, if sooner).
    pub expires_at: DateTime<Utc>,
    /// The server's clock when this frame was made, to correct a client's clock skew.
    pub server_time: DateTime<Utc>,
    /// Seconds each code is shown.
    #[schema(example = 10)]
    pub rotation_seconds: i32,
}

impl CodeFrame {
    pub fn new(window: &Window, frame: Frame, now: DateTime<Utc>) -> Self {
        Self {
            lesson_id: window.lesson_id,
            code: frame.code,
            valid_from: frame.valid_from,
            expires_at: frame.expires_at,
            server_time: now,
            rotation_seconds: window.rotation_seconds,
        }
    }
}

/// Get the current code (the lesson's teacher).
///
/// A polling fallback for dashboards that cannot hold the live WebSocket: poll again at
/// `expires_at`. A code is accepted while it is current, and for a grace period of
/// `min(5, rotation_seconds / 2)` seconds after the next one appears.
#[utoipa::path(
    tag = "check-in",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The current code", body = CodeFrame),
        (status = 403, description = "Not the lesson's teacher (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lesson (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Check-in is not open (`checkin_not_open`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/lessons/{lesson_id}/checkin/code")]
pub async fn get_checkin_code(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<CodeFrame>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, state.clock.now());
    let window = db::run(&state.pool, move |conn| {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        Ok(queries::latest_window(conn, lesson_id)?)
    })
    .await?
    .filter(|w| w.is_open(now))
    .ok_or_else(not_open)?;
    let frame = window.schedule().frame(now);
    Ok(web::Json(CodeFrame::new(&window, frame, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_body() {
        let settings = OpenCheckin::default().parse().unwrap();
        assert_eq!(
            settings,
            Settings {
                rotation_seconds: 10,
                code_length: 6,
                duration_seconds: 600,
                late_after_seconds: None
            }
        );
    }

    #[test]
    fn every_setting_is_range_checked() {
        let bad = OpenCheckin {
            rotation_seconds: Some(4),
            code_length: Some(11),
            duration_seconds: Some(14_401),
            late_after_seconds: Some(-1),
        };
        let ApiError::Validation(errors) = bad.parse().unwrap_err() else { panic!("not a validation error") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rotation_seconds", "code_length", "duration_seconds", "late_after_seconds"]);
    }

    #[test]
    fn late_after_may_not_exceed_the_duration() {
        let late = |late| OpenCheckin {
            duration_seconds: Some(60),
            late_after_seconds: Some(late),
            ..Default::default()
        };
        assert_eq!(late(60).parse().unwrap().late_after_seconds, Some(60));
        assert!(late(61).parse().is_err());
        assert!(OpenCheckin { rotation_seconds: Some(i64::MAX), ..Default::default() }.parse().is_err());
    }
}

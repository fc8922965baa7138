//! The teacher's check-in control (as opposed to a student checking in, in `checkins`):
//! open a window, close it, and read the current code (the polling fallback for dashboards
//! without a WebSocket).

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::{Connection, PgConnection};
use serde::Deserialize;
use utoipa::ToSchema;

use super::queries::{self, NewWindow};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::access;
use crate::db::{self, DbPool};
use crate::domain::settings::{CheckinSettings, RawSettings};
use crate::domain::text::Invalid;
use crate::domain::window::{CheckinLink, CheckinState, CodeFrame, Window};
use crate::error::{ApiError, problems};
use crate::events::{self, Event};
use crate::rejections::JsonObject;

/// Check-in settings; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OpenCheckin {
    /// Seconds each code is shown (5..=300, default 10).
    #[schema(example = 10)]
    pub rotation_seconds: Option<i64>,
    /// Digits per code (4..=10, default 6).
    #[schema(example = 6)]
    pub code_length: Option<i64>,
    /// Seconds until the window closes by itself (30..=14400, default 600).
    #[schema(example = 600)]
    pub duration_seconds: Option<i64>,
    /// Check-ins more than this many seconds after opening count as `late`
    /// (0..=duration_seconds; default: nobody is late).
    #[schema(minimum = 0, example = 300)]
    pub late_after_seconds: Option<i64>,
}

impl OpenCheckin {
    pub fn parse(&self) -> Result<CheckinSettings, Invalid> {
        CheckinSettings::parse(RawSettings {
            rotation_seconds: self.rotation_seconds,
            code_length: self.code_length,
            duration_seconds: self.duration_seconds,
            late_after_seconds: self.late_after_seconds,
        })
    }
}

problems!(OpenCheckinProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "Not the lesson's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::CheckinAlreadyOpen => "Check-in is already open",
    ApiError::LessonCancelled => "The lesson is cancelled",
    ApiError::Validation(Vec::new()) => "A setting is out of range",
});

/// Open check-in (the lesson's teacher).
///
/// Starts a window with a new random secret: codes rotate every `rotation_seconds` from
/// now, and the window closes itself after `duration_seconds`. Re-opening a closed lesson
/// is allowed; records already taken stay. Send `{}` to take every default. Opening a
/// lesson with automatic check-in before its time replaces the automatic window (it opens
/// automatically only if never opened before then). A cancelled lesson cannot be opened
/// (409 `lesson_cancelled`).
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
        OpenCheckinProblems,
    )
)]
#[post("/lessons/{lesson_id}/checkin/open")]
pub async fn open_checkin(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<OpenCheckin>,
) -> Result<web::Json<CheckinState>, ApiError> {
    let settings = body.parse()?;
    let secret = super::schedule::new_secret()?;
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let window = db::run(&pool, move |conn| -> Result<_, ApiError> {
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
    settings: &CheckinSettings,
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<Window, ApiError> {
    let lesson = queries::get_for_update(conn, lesson_id)?;
    if lesson.cancelled {
        return Err(ApiError::LessonCancelled);
    }
    // Opened by hand before its automatic time: no automatic window follows.
    queries::unschedule(conn, lesson_id, now)?;
    if let Some(previous) = queries::unfinalised_window_for_update(conn, lesson_id)? {
        if previous.is_open(now) {
            return Err(ApiError::CheckinAlreadyOpen);
        }
        // It closed itself at closes_at; record that before starting a new one.
        queries::set_closed_at(conn, previous.id, previous.closes_at)?;
    }
    let new = NewWindow {
        lesson_id,
        course_id: lesson.course_id,
        secret,
        opened_at: now,
        closes_at: now + Duration::seconds(i64::from(settings.duration_seconds)),
        rotation_seconds: settings.rotation_seconds,
        code_length: settings.code_length,
        late_after_seconds: settings.late_after_seconds,
        opened_by: teacher_id,
    };
    let window = queries::insert_window(conn, &new)?.ok_or(ApiError::CheckinAlreadyOpen)?;
    queries::mark_opened(conn, lesson_id, window.opened_at)?;
    events::publish(conn, Event::Window { lesson_id })?;
    Ok(window)
}

problems!(CloseCheckinProblems {
    ApiError::Forbidden("") => "Not the lesson's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::CheckinNotOpen => "Check-in is not open",
});

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
        CloseCheckinProblems,
    )
)]
#[post("/lessons/{lesson_id}/checkin/close")]
pub async fn close_checkin(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<CheckinState>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let window = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| match queries::unfinalised_window_for_update(conn, lesson_id)? {
            Some(open) if open.is_open(now) => {
                let closed = queries::set_closed_at(conn, open.id, now)?;
                events::publish(conn, Event::Window { lesson_id })?;
                Ok(closed)
            }
            _ => Err(ApiError::CheckinNotOpen),
        })
    })
    .await?;
    Ok(web::Json(CheckinState::of(Some(&window), now)))
}

problems!(GetCheckinCodeProblems {
    ApiError::Forbidden("") => "Not the lesson's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::CheckinNotOpen => "Check-in is not open",
});

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
        GetCheckinCodeProblems,
    )
)]
#[get("/lessons/{lesson_id}/checkin/code")]
pub async fn get_checkin_code(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    links: web::Data<CheckinLinks>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<web::Json<CodeFrame>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let window = open_window(&pool, lesson_id, user, access::TEACHER, now).await?;
    Ok(web::Json(CodeFrame::current(&window, now, links.0.as_ref())))
}

/// The lesson's open window, for a caller with one of the `allowed` relations.
async fn open_window(
    pool: &DbPool,
    lesson_id: i64,
    user: crate::domain::user::User,
    allowed: &'static [access::Relation],
    now: DateTime<Utc>,
) -> Result<Window, ApiError> {
    db::run(pool, move |conn| -> Result<_, ApiError> {
        access::check_lesson(conn, lesson_id, &user, allowed)?;
        Ok(queries::latest_window(conn, lesson_id)?)
    })
    .await?
    .filter(|w| w.is_open(now))
    .ok_or(ApiError::CheckinNotOpen)
}

/// The check-in link (`ROLLCALL_CHECKIN_URL`) that code frames and QR codes carry, if any.
#[derive(Debug, Clone, Default)]
pub struct CheckinLinks(pub Option<CheckinLink>);

problems!(GetCheckinQrProblems {
    ApiError::Forbidden("") => "Not the lesson's teacher or an admin",
    ApiError::NotFound("") => "No such lesson",
    ApiError::CheckinNotOpen => "Check-in is not open",
});

/// The current code as a QR code (the lesson's teacher, admin).
///
/// An SVG image of the QR code of the frame's `checkin_url` (the server's
/// `ROLLCALL_CHECKIN_URL` with the current code), or of the bare code when no link is
/// configured. It changes with every step, so it is never cached (`Cache-Control:
/// no-store`); fetch it again at the frame's `expires_at`. Typing the code stays the way to
/// check in; the QR code is another way to show it.
#[utoipa::path(
    tag = "check-in",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The QR code", content_type = "image/svg+xml", body = String),
        GetCheckinQrProblems,
    )
)]
#[get("/lessons/{lesson_id}/checkin/qr.svg")]
pub async fn get_checkin_qr(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    links: web::Data<CheckinLinks>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let window = open_window(&pool, lesson_id, user, access::STAFF, now).await?;
    let frame = CodeFrame::current(&window, now, links.0.as_ref());
    let content = frame.checkin_url.as_deref().unwrap_or(&frame.code);
    let qr = qrcode::QrCode::with_error_correction_level(content.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("QR encoding failed: {e}")))?;
    let svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(svg))
}

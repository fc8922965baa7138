//! Editing, cancelling and deleting a lesson (its teacher only).

use actix_web::{HttpResponse, delete, patch, web};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AutoCheckinRequest, Lesson, assemble, queries, schedule};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::access;
use crate::db::{self, DbPool};
use crate::domain::lesson::{Cleared, LessonFields};
use crate::domain::settings::AutoCheckin;
use crate::domain::text::{Invalid, Title, check, parse_field};
use crate::error::{ApiError, problems};
use crate::events::{self, Event};
use crate::rejections::{JsonObject, present};

/// Changes to a lesson; a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
pub struct UpdateLesson {
    /// 1–200 characters.
    #[schema(example = "Week 1: Welcome (room 2)")]
    pub title: Option<String>,
    /// A new start (RFC 3339), or `null` for none (refused while `auto_checkin` is set).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// A new end (RFC 3339), or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    /// `true` cancels the lesson: an open window closes now, a planned automatic one is
    /// dropped, and it counts nowhere. `false` restores it.
    pub cancelled: Option<bool>,
    /// Replaces the automatic check-in settings whole; `null` turns it off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AutoCheckinRequest>, inline)]
    pub auto_checkin: Option<Option<AutoCheckinRequest>>,
}

impl UpdateLesson {
    /// The lesson's fields after this change, checked.
    fn apply(self, mut fields: LessonFields) -> Result<LessonFields, Invalid> {
        let mut errors = Vec::new();
        let title = parse_field(&mut errors, "title", self.title.as_deref(), Title::parse);
        let auto: Option<Option<AutoCheckin>> = match self.auto_checkin {
            Some(Some(request)) => {
                request.parse().map(Some).map_err(|Invalid(more)| errors.extend(more)).ok()
            }
            Some(None) => Some(None),
            None => None,
        };
        check(errors)?;
        if let Some(title) = title {
            fields.title = title.into_inner();
        }
        let cleared = if self.starts_at == Some(None) { Cleared::StartsAt } else { Cleared::Nothing };
        fields.starts_at = self.starts_at.unwrap_or(fields.starts_at);
        fields.ends_at = self.ends_at.unwrap_or(fields.ends_at);
        fields.cancelled = self.cancelled.unwrap_or(fields.cancelled);
        fields.auto = auto.unwrap_or(fields.auto);
        fields.check(cleared)?;
        Ok(fields)
    }
}

problems!(UpdateLessonProblems {
    ApiError::BadRequest(String::new()) => "Malformed body, e.g. a bad timestamp",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::Validation(Vec::new()) => "Invalid field: title, an end not after the start, automatic check-in without a start or out of range",
});

/// Edit or cancel a lesson (the course's teacher).
///
/// Fields left out stay as they are; `auto_checkin` replaces the stored settings whole
/// (`null` turns it off). A planned automatic window follows the new start and settings
/// while it has not opened; a window that has opened is never changed by an edit.
/// Cancelling closes an open window now (dashboards get the `state` event) and drops a
/// planned one; a cancelled lesson stays in lists with `cancelled: true`, cannot be opened
/// and counts nowhere. Un-cancelling plans its automatic window again if it was never opened
/// and its time is still ahead.
#[utoipa::path(
    tag = "lessons",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    request_body(content = UpdateLesson, example = json!({"title": "Week 1: Welcome (room 2)", "auto_checkin": {"open_offset_minutes": -5}})),
    responses(
        (status = 200, description = "The lesson as it is now", body = Lesson),
        UpdateLessonProblems,
    )
)]
#[patch("/lessons/{lesson_id}")]
pub async fn update_lesson(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<UpdateLesson>,
) -> Result<web::Json<Lesson>, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let change = body.into_inner();
    let lesson = db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        let row = conn.transaction(|conn| update(conn, lesson_id, change, user.id, now))?;
        Ok(assemble(conn, vec![row], None, now)?.remove(0))
    })
    .await?;
    Ok(web::Json(lesson))
}

fn update(
    conn: &mut PgConnection,
    lesson_id: i64,
    change: UpdateLesson,
    teacher_id: i64,
    now: DateTime<Utc>,
) -> Result<queries::LessonRow, ApiError> {
    let before = queries::get_for_update(conn, lesson_id)?;
    let fields = change.apply(before.fields())?;
    let row = queries::update(conn, lesson_id, &fields)?;
    let mut changed = false;
    // Cancelling closes an open window now.
    if row.cancelled
        && !before.cancelled
        && let Some(open) =
            queries::unfinalised_window_for_update(conn, lesson_id)?.filter(|w| w.is_open(now))
    {
        queries::set_closed_at(conn, open.id, now)?;
        changed = true;
    }
    let past =
        if before.cancelled && !row.cancelled { schedule::Past::Skipped } else { schedule::Past::Held };
    changed |= schedule::plan(conn, &row, teacher_id, now, past)?;
    if changed {
        events::publish(conn, Event::Window { lesson_id })?;
    }
    Ok(queries::get(conn, lesson_id)?)
}

problems!(DeleteLessonProblems {
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::LessonHasAttendance => "Check-in for the lesson has been opened: cancel it instead",
});

/// Delete a lesson created by mistake (the course's teacher).
///
/// Only while its check-in has never opened (a planned automatic window does not count) and
/// nobody has a record for it; after that the lesson has attendance to keep, and the answer
/// is 409 `lesson_has_attendance`: cancel it instead.
#[utoipa::path(
    tag = "lessons",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    responses(
        (status = 204, description = "Deleted"),
        DeleteLessonProblems,
    )
)]
#[delete("/lessons/{lesson_id}")]
pub async fn delete_lesson(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| {
            queries::get_for_update(conn, lesson_id)?;
            // A teacher's mark before any opening is attendance too.
            if queries::has_opened(conn, lesson_id, now)? || queries::has_records(conn, lesson_id)? {
                return Err(ApiError::LessonHasAttendance);
            }
            queries::delete(conn, lesson_id)?;
            // A dashboard watching a planned lesson drops its planned window.
            events::publish(conn, Event::Window { lesson_id })?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

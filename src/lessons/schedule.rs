//! Automatic check-in: a lesson's window stored ahead of time, so that every reader on
//! every instance sees it open at `starts_at + open_offset_minutes` with no job to run.
//!
//! The rules, in one place:
//! - A lesson with automatic check-in that has never been opened holds one window row
//!   whose `opened_at` may lie ahead. Until then the lesson reads as never opened
//!   (`Window::has_opened`), and its `first_opened_at` already names that instant: it is
//!   who is enrolled *then* that the lesson will count for.
//! - Editing the lesson (start, settings, cancelling) re-plans that window only while it
//!   has not opened; a window that has opened is never changed by an edit.
//! - Opening by hand before the automatic time drops the planned window (the lesson then
//!   opens automatically no more); closing by hand and re-opening work as for any window.
//! - A planned window wholly in the past (a lesson entered after it was held) is a closed
//!   window: the lesson was held. Un-cancelling plans the window again only if its time is
//!   still ahead: a lesson cancelled at its time was not held.

use chrono::{DateTime, Utc};
use diesel::PgConnection;

use super::queries::{self, LessonRow, NewWindow};
use crate::error::ApiError;

/// A new window secret from the operating system.
pub fn new_secret() -> Result<[u8; 32], ApiError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("no OS randomness: {e}")))?;
    Ok(secret)
}

/// Whether a window whose opening time has passed may still be written: yes for a lesson
/// entered or moved after it was held, no for one un-cancelled (it was cancelled then, so it
/// cannot have been open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Past {
    Held,
    Skipped,
}

/// Makes the lesson's planned window agree with its fields; returns whether any window
/// changed (the caller then tells the dashboards). Run it in the transaction that wrote
/// the lesson, holding its row lock.
pub fn plan(
    conn: &mut PgConnection,
    lesson: &LessonRow,
    teacher_id: i64,
    now: DateTime<Utc>,
    past: Past,
) -> Result<bool, ApiError> {
    if queries::has_opened(conn, lesson.id, now)? {
        return Ok(false);
    }
    let mut changed = queries::unschedule(conn, lesson.id, now)?;
    if let (false, Some(auto), Some(starts_at)) = (lesson.cancelled, lesson.auto.get(), lesson.starts_at) {
        let (opened_at, closes_at) = auto.window(starts_at);
        if past == Past::Skipped && opened_at <= now {
            return Ok(changed);
        }
        let secret = new_secret()?;
        let window = NewWindow {
            lesson_id: lesson.id,
            course_id: lesson.course_id,
            secret: &secret,
            opened_at,
            closes_at,
            rotation_seconds: auto.settings.rotation_seconds,
            code_length: auto.settings.code_length,
            late_after_seconds: auto.settings.late_after_seconds,
            opened_by: teacher_id,
        };
        // No window is left (none has opened, and the planned one is gone): this cannot clash.
        queries::insert_window(conn, &window)?.ok_or(ApiError::CheckinAlreadyOpen)?;
        queries::mark_opened(conn, lesson.id, opened_at)?;
        changed = true;
    }
    Ok(changed)
}

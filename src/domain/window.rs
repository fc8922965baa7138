//! Check-in windows: one row per opening of check-in for a lesson. A window's state is
//! computed from the clock, so it closes itself at `closes_at` for every reader without
//! any job having run.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::code::{Frame, Schedule};
use crate::schema::checkin_windows;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = checkin_windows, check_for_backend(diesel::pg::Pg))]
pub struct Window {
    pub id: i64,
    pub lesson_id: i64,
    pub secret: Vec<u8>,
    pub opened_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rotation_seconds: i32,
    pub code_length: i32,
    pub late_after_seconds: Option<i32>,
}

impl Window {
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.closed_at.is_none() && self.opened_at <= now && now < self.closes_at
    }

    /// Whether the window has opened by `now`. A lesson's automatic window is stored ahead
    /// of time; until it opens, the lesson reads as never opened.
    pub fn has_opened(&self, now: DateTime<Utc>) -> bool {
        self.opened_at <= now
    }

    /// When the window stopped accepting codes (or will, if still open).
    pub fn ended_at(&self) -> DateTime<Utc> {
        self.closed_at.unwrap_or(self.closes_at)
    }

    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            secret: &self.secret,
            opened_at: self.opened_at,
            closes_at: self.closes_at,
            rotation_seconds: i64::from(self.rotation_seconds),
            code_length: self.code_length as u32,
        }
    }

    /// `late` if a late threshold is set and `at` is more than that after the opening.
    pub fn is_late(&self, at: DateTime<Utc>) -> bool {
        self.late_after_seconds
            .is_some_and(|late| (at - self.opened_at).num_milliseconds() > i64::from(late) * 1000)
    }
}

/// Where check-in stands: `not_started` (never opened), `open` (codes are accepted), or
/// `closed` (the latest window ended, closed by the teacher or by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    NotStarted,
    Open,
    Closed,
}

/// Where a lesson's check-in stands. The settings describe the latest window (open or
/// closed) and are `null` before check-in was ever opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CheckinState {
    pub state: Phase,
    /// When the latest window opened (RFC 3339, UTC); `null` before check-in was ever opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// When the window closes (or closed) by itself: `opened_at + duration_seconds`.
    pub closes_at: Option<DateTime<Utc>>,
    /// When the window actually closed: the teacher's close, or `closes_at`.
    pub closed_at: Option<DateTime<Utc>>,
    /// Seconds each code is shown.
    #[schema(example = 10)]
    pub rotation_seconds: Option<i32>,
    /// Digits per code.
    #[schema(example = 6)]
    pub code_length: Option<i32>,
    /// Check-ins more than this many seconds after `opened_at` count as `late`; `null` means
    /// nobody counts as late (or check-in was never opened).
    pub late_after_seconds: Option<i32>,
}

impl CheckinState {
    /// The state given a lesson's latest window (if any) at `now`.
    pub fn of(latest: Option<&Window>, now: DateTime<Utc>) -> Self {
        let Some(window) = latest.filter(|w| w.has_opened(now)) else {
            return Self {
                state: Phase::NotStarted,
                opened_at: None,
                closes_at: None,
                closed_at: None,
                rotation_seconds: None,
                code_length: None,
                late_after_seconds: None,
            };
        };
        let open = window.is_open(now);
        Self {
            state: if open { Phase::Open } else { Phase::Closed },
            opened_at: Some(window.opened_at),
            closes_at: Some(window.closes_at),
            closed_at: (!open).then(|| window.ended_at()),
            rotation_seconds: Some(window.rotation_seconds),
            code_length: Some(window.code_length),
            late_after_seconds: window.late_after_seconds,
        }
    }
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
    /// The server's check-in link (`ROLLCALL_CHECKIN_URL`) with this code filled in, for a QR
    /// code or a link to share; left out when no link is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "https://checkin.example.edu/c?code=042917")]
    pub checkin_url: Option<String>,
}

impl CodeFrame {
    pub fn new(window: &Window, frame: Frame, now: DateTime<Utc>, link: Option<&CheckinLink>) -> Self {
        Self {
            lesson_id: window.lesson_id,
            checkin_url: link.map(|link| link.for_code(&frame.code)),
            code: frame.code,
            valid_from: frame.valid_from,
            expires_at: frame.expires_at,
            server_time: now,
            rotation_seconds: window.rotation_seconds,
        }
    }

    /// The frame in force at `now` for an open window.
    pub fn current(window: &Window, now: DateTime<Utc>, link: Option<&CheckinLink>) -> Self {
        Self::new(window, window.schedule().frame(now), now, link)
    }
}

/// The check-in link students open (by QR code or link): a URL with `{code}` where the
/// current code goes, e.g. `https://checkin.example.edu/c?code={code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinLink(String);

impl CheckinLink {
    pub const PLACEHOLDER: &'static str = "{code}";

    /// An `http(s)` URL template holding `{code}` at least once.
    pub fn parse(template: &str) -> Result<Self, String> {
        let template = template.trim();
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return Err("must be an http:// or https:// URL".into());
        }
        if !template.contains(Self::PLACEHOLDER) {
            return Err(format!("must contain {} where the code goes", Self::PLACEHOLDER));
        }
        if template.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        Ok(Self(template.to_owned()))
    }

    /// The link for this code (codes are digits: nothing to escape).
    pub fn for_code(&self, code: &str) -> String {
        self.0.replace(Self::PLACEHOLDER, code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_check_in_link_needs_a_url_with_the_code_placeholder() {
        let link = CheckinLink::parse("https://checkin.example.edu/c?code={code}").unwrap();
        assert_eq!(link.for_code("042917"), "https://checkin.example.edu/c?code=042917");
        assert!(CheckinLink::parse("https://checkin.example.edu/c").is_err());
        assert!(CheckinLink::parse("javascript:alert({code})").is_err());
        assert!(CheckinLink::parse("https://x.edu/{code} y").is_err());
    }

    fn window(closed_at: Option<i64>) -> Window {
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        Window {
            id: 1,
            lesson_id: 1,
            secret: vec![0; 32],
            opened_at: at(1_000),
            closes_at: at(1_600),
            closed_at: closed_at.map(at),
            rotation_seconds: 10,
            code_length: 6,
            late_after_seconds: Some(60),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    #[test]
    fn a_lesson_without_windows_has_not_started() {
        let state = CheckinState::of(None, at(0));
        assert_eq!(state.state, Phase::NotStarted);
        assert_eq!((state.opened_at, state.rotation_seconds), (None, None));
    }

    #[test]
    fn a_window_closes_itself_exactly_at_closes_at() {
        let w = window(None);
        assert_eq!(CheckinState::of(Some(&w), at(1_599)).state, Phase::Open);
        let closed = CheckinState::of(Some(&w), at(1_600));
        assert_eq!((closed.state, closed.closed_at), (Phase::Closed, Some(at(1_600))));
    }

    #[test]
    fn a_teacher_close_ends_the_window_early() {
        let w = window(Some(1_200));
        let state = CheckinState::of(Some(&w), at(1_300));
        assert_eq!((state.state, state.closed_at), (Phase::Closed, Some(at(1_200))));
        assert!(!w.is_open(at(1_200)));
    }

    #[test]
    fn late_means_strictly_more_than_late_after_seconds_after_opening() {
        let w = window(None);
        assert!(!w.is_late(at(1_060)));
        assert!(w.is_late(at(1_060) + Duration::milliseconds(1)));
        assert!(!Window { late_after_seconds: None, ..w }.is_late(at(1_500)));
    }
}

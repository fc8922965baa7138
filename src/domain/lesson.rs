//! A lesson's fields as its teacher writes them, and the rules between them.

use chrono::{DateTime, Utc};

use super::settings::AutoCheckin;
use super::text::{FieldError, Invalid, check};

/// A lesson as written by its teacher (a new one, or one after an edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonFields {
    pub title: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub cancelled: bool,
    pub auto: Option<AutoCheckin>,
}

/// Which field a request named, so that an error points at what the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    /// The request set `starts_at` to `null`.
    StartsAt,
    /// Anything else.
    Nothing,
}

impl LessonFields {
    /// An end needs a start and must come after it; automatic check-in needs a start.
    /// Blames `starts_at` when the request cleared it, else the field that needs it.
    pub fn check(&self, cleared: Cleared) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        let blame = |field: &'static str| if cleared == Cleared::StartsAt { "starts_at" } else { field };
        match (self.starts_at, self.ends_at) {
            (None, Some(_)) => errors.push(FieldError::new(blame("ends_at"), "an end needs a start time")),
            (Some(start), Some(end)) if end <= start => {
                errors.push(FieldError::new("ends_at", "must be later than starts_at"));
            }
            _ => {}
        }
        if self.auto.is_some() && self.starts_at.is_none() {
            errors.push(FieldError::new(blame("auto_checkin"), "automatic check-in needs a start time"));
        }
        errors.dedup_by(|a, b| a.field == b.field);
        check(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::RawSettings;

    fn fields(starts: Option<&str>, ends: Option<&str>, auto: bool) -> LessonFields {
        LessonFields {
            title: "L".into(),
            starts_at: starts.map(|s| s.parse().unwrap()),
            ends_at: ends.map(|s| s.parse().unwrap()),
            cancelled: false,
            auto: auto.then(|| AutoCheckin::parse("auto_checkin", None, RawSettings::default()).unwrap()),
        }
    }

    fn blamed(fields: &LessonFields, cleared: Cleared) -> Vec<String> {
        fields
            .check(cleared)
            .err()
            .map(|Invalid(e)| e.into_iter().map(|e| e.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_end_must_follow_a_start() {
        let start = Some("2026-09-01T09:00:00Z");
        assert!(blamed(&fields(start, Some("2026-09-01T10:00:00Z"), true), Cleared::Nothing).is_empty());
        assert_eq!(blamed(&fields(start, start, false), Cleared::Nothing), ["ends_at"]);
        assert_eq!(blamed(&fields(None, start, false), Cleared::Nothing), ["ends_at"]);
    }

    #[test]
    fn automatic_check_in_needs_a_start_and_blames_what_the_request_cleared() {
        assert_eq!(blamed(&fields(None, None, true), Cleared::Nothing), ["auto_checkin"]);
        assert_eq!(blamed(&fields(None, None, true), Cleared::StartsAt), ["starts_at"]);
        assert_eq!(
            blamed(&fields(None, Some("2026-09-01T09:00:00Z"), true), Cleared::StartsAt),
            ["starts_at"]
        );
    }
}

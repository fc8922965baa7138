//! A check-in window's settings as a teacher chooses them: each in range, with defaults;
//! and a lesson's automatic check-in, which opens such a window at a time set by its start.

use chrono::{DateTime, Duration, Utc};

use super::text::{FieldError, Invalid, check};

/// Validated settings for a new check-in window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckinSettings {
    pub rotation_seconds: i32,
    pub code_length: i32,
    pub duration_seconds: i32,
    pub late_after_seconds: Option<i32>,
}

/// The settings as sent; `None` takes the default (late: nobody is late).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawSettings {
    pub rotation_seconds: Option<i64>,
    pub code_length: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub late_after_seconds: Option<i64>,
}

impl CheckinSettings {
    /// Seconds each code is shown: 5..=300, default 10.
    pub const ROTATION: (i64, i64, i64) = (5, 300, 10);
    /// Digits per code: 4..=10, default 6.
    pub const CODE_LENGTH: (i64, i64, i64) = (4, 10, 6);
    /// Seconds until the window closes by itself: 30..=14400, default 600.
    pub const DURATION: (i64, i64, i64) = (30, 14_400, 600);

    /// The longest a window can last, which the database also checks (so a window open at
    /// an instant opened less than this before it).
    pub fn longest() -> Duration {
        Duration::seconds(Self::DURATION.1)
    }

    /// Checks every setting, reporting all that are out of range at once.
    pub fn parse(raw: RawSettings) -> Result<Self, Invalid> {
        let mut errors = Vec::new();
        let mut ranged = |field: &str, value: Option<i64>, (min, max, default): (i64, i64, i64)| -> i32 {
            let value = value.unwrap_or(default);
            if !(min..=max).contains(&value) {
                errors.push(FieldError::new(field, format!("must be between {min} and {max}")));
            }
            value.clamp(min, max) as i32
        };
        let rotation_seconds = ranged("rotation_seconds", raw.rotation_seconds, Self::ROTATION);
        let code_length = ranged("code_length", raw.code_length, Self::CODE_LENGTH);
        let duration_seconds = ranged("duration_seconds", raw.duration_seconds, Self::DURATION);
        let late_after_seconds = raw
            .late_after_seconds
            .map(|late| ranged("late_after_seconds", Some(late), (0, i64::from(duration_seconds), 0)));
        check(errors)?;
        Ok(Self { rotation_seconds, code_length, duration_seconds, late_after_seconds })
    }
}

/// A lesson's automatic check-in: a window with `settings` that opens
/// `open_offset_minutes` after the lesson's start (before it, if negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoCheckin {
    pub open_offset_minutes: i32,
    pub settings: CheckinSettings,
}

impl AutoCheckin {
    /// Minutes from the lesson's start to the opening: -60..=60, default 0.
    pub const OFFSET: (i64, i64, i64) = (-60, 60, 0);

    /// Checks the offset and every setting, each error's field under `prefix` (e.g.
    /// `auto_checkin.code_length`).
    pub fn parse(prefix: &str, open_offset_minutes: Option<i64>, raw: RawSettings) -> Result<Self, Invalid> {
        let (min, max, default) = Self::OFFSET;
        let offset = open_offset_minutes.unwrap_or(default);
        let mut errors = Vec::new();
        if !(min..=max).contains(&offset) {
            errors.push(FieldError::new("open_offset_minutes", format!("must be between {min} and {max}")));
        }
        let settings = CheckinSettings::parse(raw);
        if let Err(Invalid(more)) = &settings {
            errors.extend(more.iter().cloned());
        }
        for error in &mut errors {
            error.field = format!("{prefix}.{}", error.field);
        }
        check(errors)?;
        Ok(Self { open_offset_minutes: offset as i32, settings: settings? })
    }

    /// When the automatic window opens and closes by itself, for a lesson starting at `starts_at`.
    pub fn window(&self, starts_at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let opens_at = starts_at + Duration::minutes(i64::from(self.open_offset_minutes));
        (opens_at, opens_at + Duration::seconds(i64::from(self.settings.duration_seconds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_body() {
        let settings = CheckinSettings::parse(RawSettings::default()).unwrap();
        assert_eq!(
            settings,
            CheckinSettings {
                rotation_seconds: 10,
                code_length: 6,
                duration_seconds: 600,
                late_after_seconds: None
            }
        );
    }

    #[test]
    fn every_setting_is_range_checked() {
        let bad = RawSettings {
            rotation_seconds: Some(4),
            code_length: Some(11),
            duration_seconds: Some(14_401),
            late_after_seconds: Some(-1),
        };
        let Invalid(errors) = CheckinSettings::parse(bad).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rotation_seconds", "code_length", "duration_seconds", "late_after_seconds"]);
    }

    #[test]
    fn late_after_may_not_exceed_the_duration() {
        let late = |late| RawSettings {
            duration_seconds: Some(60),
            late_after_seconds: Some(late),
            ..Default::default()
        };
        assert_eq!(CheckinSettings::parse(late(60)).unwrap().late_after_seconds, Some(60));
        assert!(CheckinSettings::parse(late(61)).is_err());
        let huge = RawSettings { rotation_seconds: Some(i64::MAX), ..Default::default() };
        assert!(CheckinSettings::parse(huge).is_err());
    }

    #[test]
    fn automatic_check_in_names_its_fields_and_opens_at_the_offset() {
        let Invalid(errors) = AutoCheckin::parse(
            "auto_checkin",
            Some(-61),
            RawSettings { code_length: Some(3), ..Default::default() },
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["auto_checkin.open_offset_minutes", "auto_checkin.code_length"]);
        let auto = AutoCheckin::parse("auto_checkin", Some(-10), RawSettings::default()).unwrap();
        let start: DateTime<Utc> = "2026-09-01T09:15:00Z".parse().unwrap();
        let (opens, closes) = auto.window(start);
        assert_eq!(opens, "2026-09-01T09:05:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(closes, "2026-09-01T09:15:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}

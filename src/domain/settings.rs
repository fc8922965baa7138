//! A check-in window's settings as a teacher chooses them: each in range, with defaults.

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
}

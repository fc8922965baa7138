//! A course's attendance policy and the rate it gives: how much a `late` is worth, what an
//! `excused` lesson counts as, and below which rate a student is flagged.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{FieldError, Invalid, check};
use super::text_enum;

text_enum! {
    /// What an `excused` lesson counts as: `absent` (v1's rule: it counts, unattended),
    /// `exclude` (it does not count at all) or `present`.
    pub enum ExcusedMode {
        Absent = "absent",
        Exclude = "exclude",
        Present = "present",
    }
}

/// A course's attendance rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// What a `late` counts for, 0..=1 (default 1: as present).
    #[schema(example = 0.5, minimum = 0.0, maximum = 1.0)]
    pub late_weight: f64,
    pub excused: ExcusedMode,
    /// Students whose rate is below this (0..=1) are flagged `below_threshold`; `null`: nobody.
    #[schema(example = 0.8, minimum = 0.0, maximum = 1.0, required = true)]
    pub warn_below: Option<f64>,
}

impl Default for Policy {
    /// v1's numbers: late counts as present, excused as absent, nobody flagged.
    fn default() -> Self {
        Self { late_weight: 1.0, excused: ExcusedMode::Absent, warn_below: None }
    }
}

/// A change to a policy: only the fields named change (`warn_below: null` clears it).
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyChange {
    pub late_weight: Option<f64>,
    pub excused: Option<ExcusedMode>,
    pub warn_below: Option<Option<f64>>,
}

/// One student's counts over the lessons that count for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub present: i64,
    pub late: i64,
    pub excused: i64,
    pub absent: i64,
    /// Lessons that count (including one still open, whose pending students are in no column).
    pub counted: i64,
}

impl Policy {
    /// The policy after `change`, each field range-checked (fields `policy.late_weight`, …).
    pub fn apply(self, change: PolicyChange) -> Result<Policy, Invalid> {
        let mut errors = Vec::new();
        let fraction = |errors: &mut Vec<FieldError>, field: &str, value: f64| {
            if !(0.0..=1.0).contains(&value) {
                errors.push(FieldError::new(field, "must be between 0 and 1"));
            }
        };
        if let Some(weight) = change.late_weight {
            fraction(&mut errors, "policy.late_weight", weight);
        }
        if let Some(Some(warn)) = change.warn_below {
            fraction(&mut errors, "policy.warn_below", warn);
        }
        check(errors)?;
        Ok(Policy {
            late_weight: change.late_weight.unwrap_or(self.late_weight),
            excused: change.excused.unwrap_or(self.excused),
            warn_below: change.warn_below.unwrap_or(self.warn_below),
        })
    }

    /// `(present + late_weight × late + [excused if "present"]) / (counted − [excused if
    /// "exclude"])`; `None` when nothing counts.
    pub fn rate(&self, tally: &Tally) -> Option<f64> {
        let excused = tally.excused as f64;
        let attended = tally.present as f64
            + self.late_weight * tally.late as f64
            + if self.excused == ExcusedMode::Present { excused } else { 0.0 };
        let counted = tally.counted as f64 - if self.excused == ExcusedMode::Exclude { excused } else { 0.0 };
        (counted > 0.0).then(|| attended / counted)
    }

    /// Whether the rate is below `warn_below`; never without a threshold or a rate.
    pub fn below_threshold(&self, rate: Option<f64>) -> bool {
        matches!((rate, self.warn_below), (Some(rate), Some(warn)) if rate < warn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(present: i64, late: i64, excused: i64, absent: i64) -> Tally {
        Tally { present, late, excused, absent, counted: present + late + excused + absent }
    }

    #[test]
    fn the_default_policy_is_v1s_rate() {
        let policy = Policy::default();
        assert_eq!(policy.rate(&tally(2, 1, 1, 0)), Some(0.75));
        assert_eq!(policy.rate(&tally(0, 0, 0, 0)), None, "no counted lesson: no rate");
        // An open lesson's pending student counts in the denominator, in no column.
        let open = Tally { present: 1, counted: 2, ..Tally::default() };
        assert_eq!(policy.rate(&open), Some(0.5));
        assert!(!policy.below_threshold(Some(0.0)));
    }

    #[test]
    fn late_weight_and_excused_modes_change_the_rate() {
        let t = tally(2, 2, 1, 1);
        let half = Policy { late_weight: 0.5, ..Policy::default() };
        assert_eq!(half.rate(&t), Some(3.0 / 6.0));
        let exclude = Policy { excused: ExcusedMode::Exclude, ..Policy::default() };
        assert_eq!(exclude.rate(&t), Some(4.0 / 5.0));
        let present = Policy { excused: ExcusedMode::Present, ..Policy::default() };
        assert_eq!(present.rate(&t), Some(5.0 / 6.0));
        assert_eq!(exclude.rate(&tally(0, 0, 2, 0)), None, "only excused lessons: nothing counts");
    }

    #[test]
    fn the_threshold_flags_only_a_rate_below_it() {
        let policy = Policy { warn_below: Some(0.8), ..Policy::default() };
        assert!(policy.below_threshold(Some(0.79)));
        assert!(!policy.below_threshold(Some(0.8)));
        assert!(!policy.below_threshold(None));
    }

    #[test]
    fn a_change_names_only_what_changes_and_is_range_checked() {
        let changed = Policy::default()
            .apply(PolicyChange { warn_below: Some(Some(0.5)), ..PolicyChange::default() })
            .unwrap();
        assert_eq!(changed, Policy { warn_below: Some(0.5), ..Policy::default() });
        let cleared =
            changed.apply(PolicyChange { warn_below: Some(None), ..PolicyChange::default() }).unwrap();
        assert_eq!(cleared.warn_below, None);
        let Invalid(errors) = Policy::default()
            .apply(PolicyChange {
                late_weight: Some(1.5),
                warn_below: Some(Some(-0.1)),
                ..PolicyChange::default()
            })
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["policy.late_weight", "policy.warn_below"]);
        assert!(
            Policy::default()
                .apply(PolicyChange { late_weight: Some(f64::NAN), ..PolicyChange::default() })
                .is_err()
        );
    }
}

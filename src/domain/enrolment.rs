//! Enrolment periods, and the rule that decides which lessons count for a student.
//!
//! A student's enrolment in a course is a list of periods: each starts when they are
//! enrolled and ends when they are removed (`left_at`), and enrolling again starts a new
//! one. A lesson **counts** for a student when its check-in was first opened during one of
//! their periods, or when they have a record for it (a check-in to a re-opened lesson, or
//! a teacher's mark, always counts). A lesson never opened counts for whoever is enrolled
//! now: they will be expected when it opens.

use chrono::{DateTime, Utc};

/// One stretch of enrolment: from `enrolled_at` until `left_at` (exclusive), or on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub enrolled_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

impl Period {
    /// Whether the student was enrolled at `at`.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.enrolled_at <= at && self.left_at.is_none_or(|left| at < left)
    }
}

/// Every period of one student in one course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolment {
    periods: Vec<Period>,
}

/// Never enrolled.
pub static NEVER: Enrolment = Enrolment { periods: Vec::new() };

impl Enrolment {
    pub fn new(periods: Vec<Period>) -> Self {
        Self { periods }
    }

    pub fn push(&mut self, period: Period) {
        self.periods.push(period);
    }

    /// Enrolled now (a period without an end).
    pub fn is_current(&self) -> bool {
        self.periods.iter().any(|p| p.left_at.is_none())
    }

    /// When the student left the course: the end of their last period, or `None` while
    /// they are enrolled (or never were).
    pub fn left_at(&self) -> Option<DateTime<Utc>> {
        if self.is_current() { None } else { self.periods.iter().filter_map(|p| p.left_at).max() }
    }

    /// Whether a lesson whose check-in was first opened at `first_opened_at` (`None`:
    /// never) counts for this student, given whether they have a record for it.
    pub fn counts(&self, first_opened_at: Option<DateTime<Utc>>, has_record: bool) -> bool {
        has_record
            || match first_opened_at {
                Some(at) => self.periods.iter().any(|p| p.covers(at)),
                None => self.is_current(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    fn period(from: i64, until: Option<i64>) -> Period {
        Period { enrolled_at: at(from), left_at: until.map(at) }
    }

    #[test]
    fn a_lesson_opened_before_enrolment_does_not_count() {
        let joined_late = Enrolment::new(vec![period(100, None)]);
        assert!(!joined_late.counts(Some(at(99)), false));
        assert!(joined_late.counts(Some(at(100)), false), "opened the instant they joined");
        assert!(joined_late.counts(Some(at(500)), false));
    }

    #[test]
    fn a_lesson_opened_after_leaving_does_not_count_and_leaving_is_exclusive() {
        let left = Enrolment::new(vec![period(100, Some(200))]);
        assert!(left.counts(Some(at(199)), false));
        assert!(!left.counts(Some(at(200)), false));
        assert!(!left.counts(None, false), "a lesson never opened waits for those enrolled now");
        assert_eq!(left.left_at(), Some(at(200)));
    }

    #[test]
    fn a_gap_between_periods_does_not_count() {
        let twice = Enrolment::new(vec![period(100, Some(200)), period(300, None)]);
        assert!(twice.counts(Some(at(150)), false));
        assert!(!twice.counts(Some(at(250)), false));
        assert!(twice.counts(Some(at(300)), false));
        assert!(twice.counts(None, false));
        assert!(twice.is_current());
        assert_eq!(twice.left_at(), None);
    }

    #[test]
    fn a_record_always_counts() {
        let joined_late = Enrolment::new(vec![period(100, None)]);
        assert!(joined_late.counts(Some(at(50)), true));
        assert!(Enrolment::default().counts(None, true));
        assert!(!Enrolment::default().counts(None, false));
    }
}

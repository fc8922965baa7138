//! A student's attendance status for a lesson: what a record says, or what the lesson's
//! check-in implies when there is no record.

use chrono::{DateTime, Utc};

use super::text_enum;
use super::window::Window;

text_enum! {
    /// A status a record can hold (set by a check-in or by the teacher).
    pub enum RecordStatus {
        Present = "present",
        Late = "late",
        Excused = "excused",
        Absent = "absent",
    }
}

text_enum! {
    /// A student's status for a lesson: `not_started` (check-in never opened), `pending`
    /// (open, not checked in yet), `present`, `late`, `excused`, or `absent` (check-in
    /// closed without a record, or marked absent by the teacher).
    pub enum Status {
        NotStarted = "not_started",
        Pending = "pending",
        Present = "present",
        Late = "late",
        Excused = "excused",
        Absent = "absent",
    }
}

text_enum! {
    /// How a record was made: by a code check-in, or by the teacher.
    pub enum Method {
        Code = "code",
        Manual = "manual",
    }
}

impl From<RecordStatus> for Status {
    fn from(status: RecordStatus) -> Self {
        match status {
            RecordStatus::Present => Status::Present,
            RecordStatus::Late => Status::Late,
            RecordStatus::Excused => Status::Excused,
            RecordStatus::Absent => Status::Absent,
        }
    }
}

/// The status of a student given their record (if any) and the lesson's latest window
/// (which may be an automatic one that has not opened yet).
pub fn status(record: Option<RecordStatus>, latest: Option<&Window>, now: DateTime<Utc>) -> Status {
    match (record, latest.filter(|w| w.has_opened(now))) {
        (Some(record), _) => record.into(),
        (None, None) => Status::NotStarted,
        (None, Some(window)) if window.is_open(now) => Status::Pending,
        (None, Some(_)) => Status::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window() -> Window {
        Window {
            id: 1,
            lesson_id: 1,
            secret: vec![1; 16],
            opened_at: Utc.timestamp_opt(100, 0).unwrap(),
            closes_at: Utc.timestamp_opt(200, 0).unwrap(),
            closed_at: None,
            rotation_seconds: 10,
            code_length: 6,
            late_after_seconds: None,
        }
    }

    #[test]
    fn without_a_record_the_status_follows_the_window() {
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        assert_eq!(status(None, None, at(150)), Status::NotStarted);
        assert_eq!(status(None, Some(&window()), at(150)), Status::Pending);
        assert_eq!(status(None, Some(&window()), at(200)), Status::Absent);
    }

    #[test]
    fn json_names_are_the_stored_names() {
        for status in Status::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for status in RecordStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for method in Method::ALL {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
    }

    #[test]
    fn a_record_always_wins() {
        let at = Utc.timestamp_opt(150, 0).unwrap();
        assert_eq!(status(Some(RecordStatus::Excused), None, at), Status::Excused);
        assert_eq!(status(Some(RecordStatus::Late), Some(&window()), at), Status::Late);
    }
}

//! What the server sends over the live WebSocket: JSON text frames tagged by `type`. Their
//! schemas are generated into the OpenAPI document (`ServerMessage`), which
//! `openapi/asyncapi.yaml` references for every message's payload.

use bytestring::ByteString;
use serde::Serialize;
use utoipa::ToSchema;

use crate::attendance::{AttendanceRecord, LessonAttendance, Summary};
use crate::domain::window::{CheckinState, CodeFrame};

/// A message of the live check-in stream (WebSocket text frame), told apart by `type`;
/// `openapi/asyncapi.yaml` describes when each is sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The lesson, its summary and every record: first after connecting (and again after
    /// the server lost its event feed and recovered, to resynchronise).
    Snapshot(LessonAttendance),
    /// The current code: after the snapshot while check-in is open, then at every rotation.
    Code(CodeFrame),
    /// A new check-in or a teacher's change.
    Checkin {
        /// The lesson the record belongs to.
        lesson_id: i64,
        /// The student's record as it is now.
        record: AttendanceRecord,
        /// The lesson's counts after the change.
        summary: Summary,
    },
    /// Check-in opened, closed, or closed itself.
    State {
        /// The lesson whose check-in changed.
        lesson_id: i64,
        /// Where its check-in stands now.
        checkin: CheckinState,
    },
}

impl ServerMessage {
    /// The JSON text of the message, serialised once and shared by every subscriber.
    pub fn to_text(&self) -> ByteString {
        // unwrap: these types serialise infallibly (no maps with non-string keys).
        ByteString::from(serde_json::to_string(self).expect("live messages serialise"))
    }
}

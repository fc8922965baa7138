//! What the server sends over the live WebSocket: JSON text frames tagged by `type`.

use bytestring::ByteString;
use serde::Serialize;
use utoipa::ToSchema;

use crate::attendance::{AttendanceRecord, LessonAttendance, Summary};
use crate::domain::window::{CheckinState, CodeFrame};

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The lesson, its summary and every record: first after connecting (and again after
    /// the server lost its event feed and recovered, to resynchronise).
    Snapshot(LessonAttendance),
    /// The current code: after the snapshot while check-in is open, then at every rotation.
    Code(CodeFrame),
    /// A new check-in or a teacher's change.
    Checkin { lesson_id: i64, record: AttendanceRecord, summary: Summary },
    /// Check-in opened, closed, or closed itself.
    State { lesson_id: i64, checkin: CheckinState },
}

impl ServerMessage {
    /// The JSON text of the message, serialised once and shared by every subscriber.
    pub fn to_text(&self) -> ByteString {
        // unwrap: these types serialise infallibly (no maps with non-string keys).
        ByteString::from(serde_json::to_string(self).expect("live messages serialise"))
    }
}

//! `POST /lessons/{id}/attendance/bulk`: a teacher marks many students at once — everyone
//! the lesson counts for, or a list — without overwriting a record unless asked.

use std::collections::{BTreeSet, HashMap};

use actix_web::{post, web};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::records::{self, Change, RecordRow};
use super::{AttendanceRecord, record};
use crate::auth::extract::Authenticated;
use crate::clock::Clock;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::status::{self, RecordStatus};
use crate::domain::text::{FieldError, Invalid, Note, check, parse_field};
use crate::domain::user::UserRef;
use crate::error::{ApiError, problems};
use crate::events::{self, Event};
use crate::lessons::queries as lessons;
use crate::rejections::JsonObject;

/// The most students one bulk change may name.
const MAX_STUDENTS: usize = 1000;

/// One status for many students.
#[derive(Deserialize, ToSchema)]
pub struct BulkMark {
    pub status: RecordStatus,
    /// The students to mark; left out: everyone the lesson counts for (for a lesson never
    /// opened: everyone enrolled now). At most 1000.
    #[schema(example = json!([4, 5]))]
    pub student_ids: Option<Vec<i64>>,
    /// Also change students who already have a record (default false: they are skipped).
    #[serde(default)]
    pub overwrite: bool,
    /// Why (at most 1000 characters), kept with each change in the audit trail.
    #[schema(example = "field trip")]
    pub note: Option<String>,
}

/// What a bulk change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// The records changed, one per student.
    pub changed: Vec<AttendanceRecord>,
    /// Targeted students left as they were (they had a record, and `overwrite` was false).
    pub skipped: i64,
}

problems!(MarkManyProblems {
    ApiError::BadRequest(String::new()) => "Malformed body or unknown status",
    ApiError::Forbidden("") => "Not the course's teacher",
    ApiError::NotFound("") => "No such lesson",
    ApiError::Validation(Vec::new()) => "An empty or too long list, a student who is neither enrolled nor has a record, or a note too long",
});

/// Mark many students at once (the course's teacher).
///
/// Sets `status` for the listed students, or for everyone the lesson counts for. Without
/// `overwrite`, only students with no record are changed and the others are counted in
/// `skipped`. Each change is audited like a single `PUT` (it shows in the record's history)
/// and reaches connected dashboards as one `checkin` event per changed record. An empty
/// list, or a student who is neither enrolled now nor has a record for the lesson, is 422
/// and changes nothing.
#[utoipa::path(
    tag = "attendance",
    params(("lesson_id" = i64, Path, description = "Lesson id")),
    request_body(content = BulkMark, example = json!({"status": "excused", "note": "field trip"})),
    responses(
        (status = 200, description = "What changed", body = BulkResult),
        MarkManyProblems,
    )
)]
#[post("/lessons/{lesson_id}/attendance/bulk")]
pub async fn mark_many(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    path: web::Path<i64>,
    body: JsonObject<BulkMark>,
) -> Result<web::Json<BulkResult>, ApiError> {
    let BulkMark { status, student_ids, overwrite, note } = body.into_inner();
    let mut errors = Vec::new();
    let note = parse_field(&mut errors, "note", note.as_deref(), Note::parse).flatten().map(Note::into_inner);
    match &student_ids {
        Some(ids) if ids.is_empty() => {
            errors.push(FieldError::new("student_ids", "name at least one student"))
        }
        Some(ids) if ids.len() > MAX_STUDENTS => {
            errors
                .push(FieldError::new("student_ids", format!("at most {MAX_STUDENTS} students per request")));
        }
        _ => {}
    }
    check(errors)?;
    let (lesson_id, user, now) = (path.into_inner(), caller.user, clock.now());
    let result = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let (course_id, _) = access::check_lesson(conn, lesson_id, &user, access::TEACHER)?;
        conn.transaction(|conn| {
            let lesson = lessons::get_for_update(conn, lesson_id)?;
            let latest = lessons::latest_window(conn, lesson_id)?;
            // Who the lesson lists, and (for a named list) who else may be marked: anyone
            // enrolled now, since a mark makes the lesson count for them.
            let mut candidates: HashMap<i64, (UserRef, Option<RecordRow>)> =
                records::roster_with_records(conn, course_id, lesson_id, lesson.first_opened_at)?
                    .into_iter()
                    .map(|(student, _, record)| (student.id, (student, record)))
                    .collect();
            let targets: BTreeSet<i64> = match &student_ids {
                None => candidates.keys().copied().collect(),
                Some(ids) => {
                    let mut enrolled = std::collections::HashSet::new();
                    for student in courses::roster(conn, course_id)? {
                        enrolled.insert(student.id);
                        candidates.entry(student.id).or_insert_with(|| (UserRef::from(student), None));
                    }
                    let allowed = |id: &i64| {
                        enrolled.contains(id)
                            || candidates.get(id).is_some_and(|(_, record)| record.is_some())
                    };
                    let refused: Vec<String> =
                        ids.iter().filter(|id| !allowed(id)).map(ToString::to_string).collect();
                    if !refused.is_empty() {
                        return Err(Invalid::field(
                            "student_ids",
                            format!(
                                "neither enrolled nor with a record for this lesson: {}",
                                refused.join(", ")
                            ),
                        )
                        .into());
                    }
                    ids.iter().copied().collect()
                }
            };
            let shared = records::shared_devices(conn, lesson_id)?;
            let (mut changed, mut skipped, mut events) = (Vec::new(), 0, Vec::new());
            for student_id in targets {
                let Some((student, before)) = candidates.remove(&student_id) else { continue };
                if before.is_some() && !overwrite {
                    skipped += 1;
                    continue;
                }
                let change = Change {
                    lesson_id,
                    student_id,
                    status,
                    note: note.as_deref(),
                    by: user.id,
                    at: now,
                    old_status: status::status(before.map(|r| r.status), latest.as_ref(), now),
                };
                // Without `overwrite`, a record that appeared since the read above (a code
                // check-in committing meanwhile) stays as it is.
                let row = if overwrite {
                    Some(records::apply_change(conn, &change)?)
                } else {
                    records::add_mark(conn, &change)?
                };
                let Some(row) = row else {
                    skipped += 1;
                    continue;
                };
                events.push(Event::Record { lesson_id, student_id });
                changed.push(record(student, Some(row), latest.as_ref(), &shared, now));
            }
            events::publish_all(conn, &events)?;
            Ok(BulkResult { changed, skipped })
        })
    })
    .await?;
    Ok(web::Json(result))
}

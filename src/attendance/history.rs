//! `GET /lessons/{id}/attendance/{student_id}/history`: how one student's record in one
//! lesson came to be — the code check-in and every teacher change, oldest first, from the
//! record itself and the audit trail.

use std::collections::HashMap;

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::records;
use crate::auth::extract::Authenticated;
use crate::courses::{access, queries as courses};
use crate::db::{self, DbPool};
use crate::domain::enrolment;
use crate::domain::page::Page;
use crate::domain::status::{Method, Status};
use crate::domain::user::UserRef;
use crate::error::{ApiError, problems};
use crate::lessons::queries as lessons;
use crate::schema::{attendance_audit, users};

/// One change to a student's status for a lesson.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// When it happened (RFC 3339, UTC).
    pub at: DateTime<Utc>,
    /// Who did it: the student for their code check-in, else the teacher.
    pub by: UserRef,
    /// The status before (`pending` for a code check-in).
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// `code` for the student's check-in, `manual` for a teacher's change (bulk ones too).
    pub method: Method,
    /// The teacher's note with the change.
    #[schema(required = true)]
    pub note: Option<String>,
}

/// An audit row: when, by whom, from, to, note.
type AuditRow = (DateTime<Utc>, i64, String, String, Option<String>);

problems!(GetRecordHistoryProblems {
    ApiError::Forbidden("") => "Not the course's teacher or an admin",
    ApiError::NotFound("") => "No such lesson, or the lesson does not list this student",
    ApiError::Validation(Vec::new()) => "`limit` or `offset` out of range",
});

/// A student's record history for a lesson (the course's teacher, admin).
///
/// Oldest first: the code check-in (by the student, from `pending`, method `code`) and every
/// teacher change, bulk ones included (by the teacher, from the status before, method
/// `manual`), even one that kept the status. A student the lesson's results do not list is 404.
#[utoipa::path(
    tag = "attendance",
    params(
        ("lesson_id" = i64, Path, description = "Lesson id"),
        ("student_id" = i64, Path, description = "The student's user id"),
        Page,
    ),
    responses(
        (status = 200, description = "The history, oldest first", body = Vec<HistoryEntry>),
        GetRecordHistoryProblems,
    )
)]
#[get("/lessons/{lesson_id}/attendance/{student_id}/history")]
pub async fn get_record_history(
    pool: web::Data<DbPool>,
    caller: Authenticated,
    path: web::Path<(i64, i64)>,
    page: web::Query<Page>,
) -> Result<web::Json<Vec<HistoryEntry>>, ApiError> {
    let (limit, offset) = page.into_inner().parse()?;
    let ((lesson_id, student_id), user) = (path.into_inner(), caller.user);
    let history = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let (course_id, _) = access::check_lesson(conn, lesson_id, &user, access::STAFF)?;
        let lesson = lessons::get(conn, lesson_id)?;
        let record = records::find(conn, lesson_id, student_id)?;
        let enrolments = courses::enrolments_of(conn, student_id, &[course_id])?;
        let enrolment = enrolments.get(&course_id).unwrap_or(&enrolment::NEVER);
        if !enrolment.counts(lesson.first_opened_at, record.is_some()) {
            return Err(ApiError::NotFound("the lesson does not list this student"));
        }
        let changes: Vec<AuditRow> = attendance_audit::table
            .filter(attendance_audit::lesson_id.eq(lesson_id))
            .filter(attendance_audit::student_id.eq(student_id))
            .order((attendance_audit::changed_at.asc(), attendance_audit::id.asc()))
            .select((
                attendance_audit::changed_at,
                attendance_audit::changed_by,
                attendance_audit::old_status,
                attendance_audit::new_status,
                attendance_audit::note,
            ))
            .load(conn)?;
        let mut ids: Vec<i64> = changes.iter().map(|c| c.1).collect();
        ids.push(student_id);
        let people: HashMap<i64, UserRef> = users::table
            .filter(users::id.eq_any(ids))
            .select(UserRef::as_select())
            .load::<UserRef>(conn)?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let person = |id: i64| people.get(&id).cloned().ok_or(ApiError::NotFound("no such user"));
        let status =
            |text: &str| text.parse::<Status>().map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)));
        let mut entries = Vec::with_capacity(changes.len() + 1);
        // A code check-in is always a record's first event: it never overwrites a record.
        if let Some(record) = record.as_ref().filter(|r| r.checked_in_at.is_some()) {
            let to = match changes.first() {
                Some((_, _, before, _, _)) => status(before)?,
                None => record.status.into(),
            };
            entries.push(HistoryEntry {
                at: record.checked_in_at.unwrap_or_default(),
                by: person(student_id)?,
                from: Status::Pending,
                to,
                method: Method::Code,
                note: None,
            });
        }
        for (at, by, from, to, note) in changes {
            entries.push(HistoryEntry {
                at,
                by: person(by)?,
                from: status(&from)?,
                to: status(&to)?,
                method: Method::Manual,
                note,
            });
        }
        Ok(entries.into_iter().skip(offset as usize).take(limit as usize).collect())
    })
    .await?;
    Ok(web::Json(history))
}

//! `GET /me/attendance`: a student's own attendance history, newest lesson first.

use std::collections::HashMap;

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::{Authenticated, StudentOnly};
use crate::clock::Clock;
use crate::db::{self, DbPool};
use crate::domain::page::Page;
use crate::domain::status::Status;
use crate::error::{ApiError, problems};
use crate::lessons::queries::LessonRow;
use crate::lessons::{self, Lesson};
use crate::schema::{attendance, courses, enrollments, lessons as lessons_table};

/// A course, by id and title.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseRef {
    /// The course's id.
    pub id: i64,
    /// The course's title.
    pub title: String,
}

/// One lesson of the student's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyAttendance {
    pub lesson: Lesson,
    pub course: CourseRef,
    pub status: Status,
    /// When I checked in with a code (RFC 3339, UTC); `null` if I did not, even when the
    /// teacher has set my status.
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CourseFilter {
    /// Only lessons of this course.
    pub course_id: Option<i64>,
}

problems!(ListMyAttendanceProblems {
    ApiError::BadRequest(String::new()) => "Malformed query",
    ApiError::Forbidden("") => "Caller is not a student",
    ApiError::Validation(Vec::new()) => "`limit` or `offset` out of range",
});

/// My attendance (student).
///
/// Every lesson that counts for me, newest first (by `starts_at`, or creation time for
/// unscheduled lessons): those whose check-in was first opened while I was enrolled (in a
/// course I left, too), those not opened yet of courses I am enrolled in now, and any with a
/// record of mine. A lesson held before I joined is not in my history, nor is a cancelled one.
#[utoipa::path(
    tag = "check-in",
    params(CourseFilter, Page),
    responses(
        (status = 200, description = "My lessons and statuses", body = Vec<MyAttendance>),
        ListMyAttendanceProblems,
    )
)]
#[get("/me/attendance")]
pub async fn list_my_attendance(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    student: Authenticated<StudentOnly>,
    filter: web::Query<CourseFilter>,
    page: web::Query<Page>,
) -> Result<web::Json<Vec<MyAttendance>>, ApiError> {
    let (limit, offset) = page.into_inner().parse()?;
    let (student_id, course_id, now) = (student.id, filter.course_id, clock.now());
    let history = db::run(&pool, move |conn| {
        Ok::<_, ApiError>(history(conn, student_id, course_id, limit, offset, now)?)
    })
    .await?;
    Ok(web::Json(history))
}

fn history(
    conn: &mut PgConnection,
    student_id: i64,
    course_id: Option<i64>,
    limit: i64,
    offset: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<MyAttendance>> {
    let mine =
        enrollments::table.filter(enrollments::student_id.eq(student_id)).select(enrollments::course_id);
    let recorded =
        attendance::table.filter(attendance::student_id.eq(student_id)).select(attendance::lesson_id);
    // `domain::enrolment::Enrolment::counts`, in SQL so that pages stay whole.
    let counts =
        sql::<Bool>("(EXISTS (SELECT 1 FROM attendance a WHERE a.lesson_id = lessons.id AND a.student_id = ")
            .bind::<BigInt, _>(student_id)
            .sql(
                ") OR EXISTS (SELECT 1 FROM enrollments e WHERE e.course_id = lessons.course_id \
         AND e.student_id = ",
            )
            .bind::<BigInt, _>(student_id)
            .sql(
                " AND CASE WHEN lessons.first_opened_at IS NULL THEN e.left_at IS NULL \
         ELSE e.enrolled_at <= lessons.first_opened_at \
         AND (e.left_at IS NULL OR lessons.first_opened_at < e.left_at) END))",
            );
    let mut query = lessons_table::table
        .inner_join(courses::table)
        .filter(lessons_table::course_id.eq_any(mine).or(lessons_table::id.eq_any(recorded)))
        .filter(lessons_table::cancelled.eq(false))
        .filter(counts)
        .select((LessonRow::as_select(), courses::title))
        .order((
            diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                "COALESCE(lessons.starts_at, lessons.created_at)",
            )
            .desc(),
            lessons_table::id.desc(),
        ))
        .limit(limit)
        .offset(offset)
        .into_boxed();
    if let Some(course_id) = course_id {
        query = query.filter(lessons_table::course_id.eq(course_id));
    }
    let rows: Vec<(LessonRow, String)> = query.load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|(l, _)| l.id).collect();
    let checked_in: HashMap<i64, Option<DateTime<Utc>>> = attendance::table
        .filter(attendance::student_id.eq(student_id))
        .filter(attendance::lesson_id.eq_any(&ids))
        .select((attendance::lesson_id, attendance::checked_in_at))
        .load(conn)?
        .into_iter()
        .collect();
    let titles: Vec<String> = rows.iter().map(|(_, title)| title.clone()).collect();
    let lessons = lessons::assemble(conn, rows.into_iter().map(|(l, _)| l).collect(), Some(student_id), now)?;
    Ok(lessons
        .into_iter()
        .zip(titles)
        .map(|(mut lesson, title)| {
            let status = lesson.my_status.take().flatten().unwrap_or(Status::NotStarted);
            MyAttendance {
                course: CourseRef { id: lesson.course_id, title },
                checked_in_at: checked_in.get(&lesson.id).copied().flatten(),
                status,
                lesson,
            }
        })
        .collect())
}

//! `GET /me/courses/attendance`: a student's own totals and rate in each course they are or
//! were enrolled in, as the course report counts them.

use actix_web::{get, web};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::mine::CourseRef;
use super::report::Held;
use crate::auth::extract::{Authenticated, StudentOnly};
use crate::clock::Clock;
use crate::db::{self, DbPool};
use crate::domain::user::UserRef;
use crate::error::{ApiError, problems};
use crate::schema::{courses, enrollments, users};

/// My totals in one course, by its policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyCourseAttendance {
    pub course: CourseRef,
    /// Lessons where I am `present`.
    pub present: i64,
    /// Lessons where I am `late`.
    pub late: i64,
    /// Lessons where I am `excused`.
    pub excused: i64,
    /// Lessons where I am `absent`.
    pub absent: i64,
    /// Lessons that count for me (opened while I was enrolled, or with a record of mine).
    pub lessons_counted: i64,
    /// By the course's policy, in 0..=1; `null` when no lesson counts.
    #[schema(example = 0.9, required = true)]
    pub attendance_rate: Option<f64>,
    /// My rate is below the course's `warn_below`.
    pub below_threshold: bool,
}

problems!(ListMyCoursesAttendanceProblems {
    ApiError::Forbidden("") => "Caller is not a student",
});

/// My attendance per course (student).
///
/// One entry per course I am or was enrolled in, by course id, with the totals and rate the
/// course report shows for me.
#[utoipa::path(
    tag = "check-in",
    responses(
        (status = 200, description = "My totals per course", body = Vec<MyCourseAttendance>),
        ListMyCoursesAttendanceProblems,
    )
)]
#[get("/me/courses/attendance")]
pub async fn list_my_courses_attendance(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    student: Authenticated<StudentOnly>,
) -> Result<web::Json<Vec<MyCourseAttendance>>, ApiError> {
    let (student_id, now) = (student.id, clock.now());
    let mine = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let me: UserRef = users::table.find(student_id).select(UserRef::as_select()).first(conn)?;
        let courses: Vec<(i64, String)> = courses::table
            .filter(
                courses::id.eq_any(
                    enrollments::table
                        .filter(enrollments::student_id.eq(student_id))
                        .select(enrollments::course_id),
                ),
            )
            .select((courses::id, courses::title))
            .order(courses::id)
            .load(conn)?;
        let mut mine = Vec::with_capacity(courses.len());
        for (id, title) in courses {
            let row = Held::load(conn, id, now)?.row(me.clone(), now);
            mine.push(MyCourseAttendance {
                course: CourseRef { id, title },
                present: row.present,
                late: row.late,
                excused: row.excused,
                absent: row.absent,
                lessons_counted: row.lessons_counted,
                attendance_rate: row.attendance_rate,
                below_threshold: row.below_threshold,
            });
        }
        Ok(mine)
    })
    .await?;
    Ok(web::Json(mine))
}

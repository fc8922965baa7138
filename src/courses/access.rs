//! Who may do what with a course (and so with its lessons, roster and attendance).
//!
//! The rule, everywhere: a course (or lesson) that does not exist is 404; one that exists
//! but the caller has no business with is 403 (ids are sequential, so hiding existence
//! would protect nothing).

use diesel::prelude::*;

use crate::domain::user::{Role, User};
use crate::error::ApiError;
use crate::schema::{courses, enrollments, lessons};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Teaches the course.
    Teacher,
    /// Is enrolled in it now (a student who left is a stranger to it; their history
    /// stays theirs in `/me/attendance`).
    Student,
    /// An administrator (reads everything, changes nothing of a course).
    Admin,
    /// None of the above.
    Stranger,
}

/// The teacher of the course, enrolled students and admins.
pub const MEMBERS: &[Relation] = &[Relation::Teacher, Relation::Student, Relation::Admin];
/// The teacher of the course and admins.
pub const STAFF: &[Relation] = &[Relation::Teacher, Relation::Admin];
/// The teacher of the course only.
pub const TEACHER: &[Relation] = &[Relation::Teacher];

/// How `user` relates to course `course_id`; `None` if there is no such course.
pub fn course(conn: &mut PgConnection, course_id: i64, user: &User) -> QueryResult<Option<Relation>> {
    let found: Option<(i64, bool)> = courses::table
        .find(course_id)
        .select((
            courses::teacher_id,
            diesel::dsl::exists(
                enrollments::table
                    .filter(enrollments::course_id.eq(course_id))
                    .filter(enrollments::student_id.eq(user.id))
                    .filter(enrollments::left_at.is_null()),
            ),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(teacher_id, enrolled)| relation(user, teacher_id, enrolled)))
}

/// How `user` relates to the course of lesson `lesson_id`, and that course's id.
pub fn lesson(conn: &mut PgConnection, lesson_id: i64, user: &User) -> QueryResult<Option<(i64, Relation)>> {
    let found: Option<(i64, i64, bool)> = lessons::table
        .inner_join(courses::table)
        .filter(lessons::id.eq(lesson_id))
        .select((
            courses::id,
            courses::teacher_id,
            diesel::dsl::exists(
                enrollments::table
                    .filter(enrollments::course_id.eq(courses::id))
                    .filter(enrollments::student_id.eq(user.id))
                    .filter(enrollments::left_at.is_null()),
            ),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(course_id, teacher_id, enrolled)| (course_id, relation(user, teacher_id, enrolled))))
}

fn relation(user: &User, teacher_id: i64, enrolled: bool) -> Relation {
    match user.role {
        Role::Admin => Relation::Admin,
        Role::Teacher if user.id == teacher_id => Relation::Teacher,
        Role::Student if enrolled => Relation::Student,
        _ => Relation::Stranger,
    }
}

/// 404 for a missing resource, 403 for a relation not in `allowed`.
pub fn allow<T>(
    found: Option<T>,
    relation: impl Fn(&T) -> Relation,
    allowed: &[Relation],
    what: &'static str,
) -> Result<T, ApiError> {
    let found = found.ok_or(ApiError::NotFound(what))?;
    if allowed.contains(&relation(&found)) {
        Ok(found)
    } else {
        Err(ApiError::Forbidden("you have no access to this course, or may not do this in it"))
    }
}

/// Checks the caller's access to a course.
pub fn check_course(
    conn: &mut PgConnection,
    course_id: i64,
    user: &User,
    allowed: &[Relation],
) -> Result<Relation, ApiError> {
    allow(course(conn, course_id, user)?, |r| *r, allowed, "no such course")
}

/// Checks the caller's access to a lesson; returns (course id, relation).
pub fn check_lesson(
    conn: &mut PgConnection,
    lesson_id: i64,
    user: &User,
    allowed: &[Relation],
) -> Result<(i64, Relation), ApiError> {
    allow(lesson(conn, lesson_id, user)?, |(_, r)| *r, allowed, "no such lesson")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn user(id: i64, role: Role) -> User {
        User {
            id,
            username: "u".into(),
            role,
            real_name: "U".into(),
            student_number: None,
            created_at: Utc::now(),
            disabled: false,
            activation_pending: false,
        }
    }

    #[test]
    fn relations_follow_role_ownership_and_enrolment() {
        assert_eq!(relation(&user(1, Role::Teacher), 1, false), Relation::Teacher);
        assert_eq!(relation(&user(2, Role::Teacher), 1, false), Relation::Stranger);
        assert_eq!(relation(&user(3, Role::Student), 1, true), Relation::Student);
        assert_eq!(relation(&user(3, Role::Student), 1, false), Relation::Stranger);
        assert_eq!(relation(&user(4, Role::Admin), 1, false), Relation::Admin);
    }

    #[test]
    fn missing_is_404_and_unrelated_is_403() {
        let missing = allow(None::<Relation>, |r| *r, MEMBERS, "no such course").unwrap_err();
        assert_eq!(missing.code(), "not_found");
        let stranger = allow(Some(Relation::Stranger), |r| *r, MEMBERS, "x").unwrap_err();
        assert_eq!(stranger.code(), "forbidden");
        assert!(allow(Some(Relation::Admin), |r| *r, TEACHER, "x").is_err());
        assert!(allow(Some(Relation::Admin), |r| *r, STAFF, "x").is_ok());
    }
}

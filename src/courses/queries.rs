//! Course and roster queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};

use super::Course;
use crate::db::lower;
use crate::domain::enrolment::{Enrolment, Period};
use crate::domain::policy::{ExcusedMode, Policy};
use crate::domain::user::{Role, User, UserRef};
use crate::domain::zone::Zone;
use crate::schema::{courses, enrollments, users};

#[derive(Queryable, Selectable)]
#[diesel(table_name = courses, check_for_backend(diesel::pg::Pg))]
struct CourseRow {
    id: i64,
    title: String,
    code: Option<String>,
    time_zone: String,
    created_at: DateTime<Utc>,
    #[diesel(embed)]
    policy: PolicyColumns,
}

/// A course's attendance policy as stored.
#[derive(Debug, Clone, Copy, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = courses, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
struct PolicyColumns {
    late_weight: f64,
    excused_mode: ExcusedMode,
    warn_below: Option<f64>,
}

impl From<PolicyColumns> for Policy {
    fn from(row: PolicyColumns) -> Self {
        Policy { late_weight: row.late_weight, excused: row.excused_mode, warn_below: row.warn_below }
    }
}

impl From<Policy> for PolicyColumns {
    fn from(policy: Policy) -> Self {
        PolicyColumns {
            late_weight: policy.late_weight,
            excused_mode: policy.excused,
            warn_below: policy.warn_below,
        }
    }
}

type CourseColumns = (
    diesel::dsl::AsSelect<CourseRow, diesel::pg::Pg>,
    diesel::dsl::AsSelect<UserRef, diesel::pg::Pg>,
    diesel::expression::SqlLiteral<BigInt>,
);

fn course_columns() -> CourseColumns {
    (
        CourseRow::as_select(),
        UserRef::as_select(),
        sql::<BigInt>(
            "(SELECT count(*) FROM enrollments e WHERE e.course_id = courses.id AND e.left_at IS NULL)",
        ),
    )
}

fn into_course((row, teacher, student_count): (CourseRow, UserRef, i64)) -> Course {
    Course {
        id: row.id,
        title: row.title,
        code: row.code,
        // Written only from a parsed `Zone`; a name this build's tz database lost reads as UTC.
        time_zone: Zone::parse(&row.time_zone).unwrap_or(Zone::UTC),
        policy: row.policy.into(),
        teacher,
        student_count,
        created_at: row.created_at,
    }
}

pub fn insert(
    conn: &mut PgConnection,
    title: &str,
    code: Option<&str>,
    time_zone: Zone,
    teacher_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Course> {
    let id: i64 = diesel::insert_into(courses::table)
        .values((
            courses::title.eq(title),
            courses::code.eq(code),
            courses::time_zone.eq(time_zone.name()),
            courses::teacher_id.eq(teacher_id),
            courses::created_at.eq(now),
        ))
        .returning(courses::id)
        .get_result(conn)?;
    get(conn, id)
}

/// Writes a course's title, code, time zone and policy.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    title: &str,
    code: Option<&str>,
    time_zone: Zone,
    policy: Policy,
) -> QueryResult<Course> {
    diesel::update(courses::table.find(id))
        .set((
            courses::title.eq(title),
            courses::code.eq(code),
            courses::time_zone.eq(time_zone.name()),
            PolicyColumns::from(policy),
        ))
        .execute(conn)?;
    get(conn, id)
}

/// The course's attendance policy.
pub fn policy(conn: &mut PgConnection, id: i64) -> QueryResult<Policy> {
    courses::table.find(id).select(PolicyColumns::as_select()).first(conn).map(Policy::from)
}

/// The course, locked for this transaction.
pub fn get_for_update(conn: &mut PgConnection, id: i64) -> QueryResult<Course> {
    courses::table.find(id).select(courses::id).for_update().first::<i64>(conn)?;
    get(conn, id)
}

/// The course's time zone.
pub fn time_zone(conn: &mut PgConnection, id: i64) -> QueryResult<Zone> {
    let name: String = courses::table.find(id).select(courses::time_zone).first(conn)?;
    Ok(Zone::parse(&name).unwrap_or(Zone::UTC))
}

pub fn get(conn: &mut PgConnection, id: i64) -> QueryResult<Course> {
    courses::table
        .inner_join(users::table)
        .filter(courses::id.eq(id))
        .select(course_columns())
        .first(conn)
        .map(into_course)
}

/// The running enrolments, as a filter on `enrollments`.
fn current() -> diesel::dsl::IsNull<enrollments::left_at> {
    enrollments::left_at.is_null()
}

/// The courses a user sees: a teacher's own, the ones a student is enrolled in now, or all
/// for admins.
pub fn list_for(conn: &mut PgConnection, user: &User) -> QueryResult<Vec<Course>> {
    let mut query =
        courses::table.inner_join(users::table).select(course_columns()).order(courses::id).into_boxed();
    query = match user.role {
        Role::Admin => query,
        Role::Teacher => query.filter(courses::teacher_id.eq(user.id)),
        Role::Student => query.filter(
            courses::id.eq_any(
                enrollments::table
                    .filter(enrollments::student_id.eq(user.id))
                    .filter(current())
                    .select(enrollments::course_id),
            ),
        ),
    };
    Ok(query.load(conn)?.into_iter().map(into_course).collect())
}

/// The students enrolled now, ordered by student number, then username.
pub fn roster(conn: &mut PgConnection, course_id: i64) -> QueryResult<Vec<User>> {
    enrollments::table
        .inner_join(users::table)
        .filter(enrollments::course_id.eq(course_id))
        .filter(current())
        .select(User::as_select())
        .order((users::student_number.asc().nulls_last(), users::username.asc()))
        .load(conn)
}

/// Users named by any of the usernames (case-insensitive) or student numbers.
pub fn find_by_names(
    conn: &mut PgConnection,
    usernames: &[String],
    numbers: &[String],
) -> QueryResult<Vec<User>> {
    let lowered: Vec<String> = usernames.iter().map(|u| u.to_lowercase()).collect();
    users::table
        .filter(lower(users::username).eq_any(lowered).or(users::student_number.eq_any(numbers)))
        .select(User::as_select())
        .load(conn)
}

/// Every student who is or was enrolled in the course, with all their periods.
pub fn enrolments_in(conn: &mut PgConnection, course_id: i64) -> QueryResult<HashMap<i64, Enrolment>> {
    let rows = enrollments::table
        .filter(enrollments::course_id.eq(course_id))
        .select((enrollments::student_id, enrollments::enrolled_at, enrollments::left_at))
        .load(conn)?;
    Ok(group(rows))
}

/// The student's periods in each of these courses they are or were enrolled in.
pub fn enrolments_of(
    conn: &mut PgConnection,
    student_id: i64,
    course_ids: &[i64],
) -> QueryResult<HashMap<i64, Enrolment>> {
    let rows = enrollments::table
        .filter(enrollments::student_id.eq(student_id))
        .filter(enrollments::course_id.eq_any(course_ids))
        .select((enrollments::course_id, enrollments::enrolled_at, enrollments::left_at))
        .load(conn)?;
    Ok(group(rows))
}

fn group(rows: Vec<(i64, DateTime<Utc>, Option<DateTime<Utc>>)>) -> HashMap<i64, Enrolment> {
    let mut grouped: HashMap<i64, Enrolment> = HashMap::new();
    for (key, enrolled_at, left_at) in rows {
        grouped.entry(key).or_default().push(Period { enrolled_at, left_at });
    }
    grouped
}

/// Enrols the students who are not enrolled now, each starting a new period; returns
/// their ids.
pub fn enroll(
    conn: &mut PgConnection,
    course_id: i64,
    student_ids: &[i64],
    now: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    let rows: Vec<_> = student_ids
        .iter()
        .map(|id| {
            (
                enrollments::course_id.eq(course_id),
                enrollments::student_id.eq(*id),
                enrollments::enrolled_at.eq(now),
            )
        })
        .collect();
    // The only unique index a new row can hit is the one running period per student.
    diesel::insert_into(enrollments::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .returning(enrollments::student_id)
        .get_results(conn)
}

/// Ends the student's running period (their records stay); returns whether there was one.
pub fn unenroll(
    conn: &mut PgConnection,
    course_id: i64,
    student_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    // A period cannot end before it began, even if this instance's clock is behind the one
    // that enrolled them.
    let left_at = sql::<Nullable<Timestamptz>>("GREATEST(enrolled_at, ").bind::<Timestamptz, _>(now).sql(")");
    diesel::update(
        enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::student_id.eq(student_id))
            .filter(current()),
    )
    .set(enrollments::left_at.eq(left_at))
    .execute(conn)
    .map(|n| n > 0)
}

/// Enrolled now.
pub fn is_enrolled(conn: &mut PgConnection, course_id: i64, student_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::student_id.eq(student_id))
            .filter(current()),
    ))
    .get_result(conn)
}

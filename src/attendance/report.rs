//! A course's attendance report: each student's totals over the course's lessons whose
//! check-in has opened and that count for them, rated by the course's policy.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::courses::queries as courses;
use crate::domain::enrolment::{self, Enrolment};
use crate::domain::policy::{Policy, Tally};
use crate::domain::status::{RecordStatus, Status, status};
use crate::domain::user::UserRef;
use crate::domain::window::Window;
use crate::lessons::queries as lessons;
use crate::schema::{attendance, lessons as lessons_table, users};

/// One student's totals over the lessons that count for them: those whose check-in has been
/// opened, first while the student was enrolled, and any for which they have a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseAttendanceRow {
    pub student: UserRef,
    /// How many of the course's opened lessons count for the student (a lesson still open
    /// counts, while its `pending` students are in no column until it closes).
    pub lessons_counted: i64,
    /// When the student left the course; `null` while they are enrolled.
    #[schema(required = true)]
    pub left_at: Option<DateTime<Utc>>,
    /// Lessons where the student is `present`.
    pub present: i64,
    /// Lessons where the student is `late`.
    pub late: i64,
    /// Lessons where the student is `excused`.
    pub excused: i64,
    /// Lessons where the student is `absent` (check-in closed without a record, or marked
    /// absent).
    pub absent: i64,
    /// By the course's policy: `(present + late_weight × late + [excused if "present"]) /
    /// (lessons_counted − [excused if "exclude"])`, in 0..=1; `null` when that is 0 / 0. The
    /// default policy gives v1's `(present + late) / lessons_counted`.
    #[schema(example = 0.75, required = true)]
    pub attendance_rate: Option<f64>,
    /// The rate is below the policy's `warn_below` (false without one, or without a rate).
    pub below_threshold: bool,
    /// When the student last checked in (or, for a teacher's `present`/`late` without a
    /// check-in, when that lesson's check-in opened).
    #[schema(required = true)]
    pub last_attended_at: Option<DateTime<Utc>>,
}

/// The lessons a report counts and the records in them.
pub struct Held {
    /// Not cancelled, and opened by now or with someone's record (a teacher's mark before
    /// any opening counts for that student), by start time then id.
    pub lessons: Vec<lessons::LessonRow>,
    pub windows: HashMap<i64, Window>,
    /// Keyed by (student, lesson).
    pub records: HashMap<(i64, i64), crate::attendance::records::RecordRow>,
    pub enrolments: HashMap<i64, Enrolment>,
    pub policy: Policy,
}

impl Held {
    /// The course's held lessons, its enrolments and records, and its policy, in five
    /// queries however many students and lessons.
    pub fn load(conn: &mut PgConnection, course_id: i64, now: DateTime<Utc>) -> QueryResult<Self> {
        let enrolments = courses::enrolments_in(conn, course_id)?;
        let marked = attendance::table.select(attendance::lesson_id);
        let rows: Vec<lessons::LessonRow> = lessons_table::table
            .filter(lessons_table::course_id.eq(course_id))
            .filter(lessons_table::first_opened_at.le(now).or(lessons_table::id.eq_any(marked)))
            .filter(lessons_table::cancelled.eq(false))
            .select(lessons::LessonRow::as_select())
            .order((lessons_table::starts_at.asc().nulls_last(), lessons_table::id.asc()))
            .load(conn)?;
        let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
        let windows = lessons::latest_windows(conn, &ids)?;
        let records = attendance::table
            .filter(attendance::lesson_id.eq_any(&ids))
            .select(crate::attendance::records::RecordRow::as_select())
            .load::<crate::attendance::records::RecordRow>(conn)?
            .into_iter()
            .map(|row| ((row.student_id, row.lesson_id), row))
            .collect();
        Ok(Self { lessons: rows, windows, records, enrolments, policy: courses::policy(conn, course_id)? })
    }

    /// Everyone with a period in the course, and (should one ever lack it) anyone with a
    /// record, ordered by student number then username.
    pub fn students(&self, conn: &mut PgConnection) -> QueryResult<Vec<UserRef>> {
        let ids: HashSet<i64> =
            self.enrolments.keys().copied().chain(self.records.keys().map(|(student, _)| *student)).collect();
        users::table
            .filter(users::id.eq_any(ids))
            .select(UserRef::as_select())
            .order((users::student_number.asc().nulls_last(), users::username.asc()))
            .load(conn)
    }

    /// The lessons that count for the student, each with its window (if it was opened) and
    /// the student's status in it. A lesson not opened yet counts only for a student with a
    /// record in it.
    pub fn counted<'a>(
        &'a self,
        student_id: i64,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&'a lessons::LessonRow, Option<&'a Window>, Status)> + 'a {
        let enrolment = self.enrolments.get(&student_id).unwrap_or(&enrolment::NEVER);
        self.lessons.iter().filter_map(move |lesson| {
            let window = self.windows.get(&lesson.id).filter(|w| w.has_opened(now));
            let record = self.records.get(&(student_id, lesson.id));
            let counts = match window {
                Some(_) => enrolment.counts(lesson.first_opened_at, record.is_some()),
                None => record.is_some(),
            };
            counts.then(|| (lesson, window, status(record.map(|r| r.status), window, now)))
        })
    }

    /// The student's row of the report.
    pub fn row(&self, student: UserRef, now: DateTime<Utc>) -> CourseAttendanceRow {
        let mut tally = Tally::default();
        let mut last_attended_at = None;
        for (lesson, window, status) in self.counted(student.id, now) {
            tally.counted += 1;
            match status {
                Status::Present => tally.present += 1,
                Status::Late => tally.late += 1,
                Status::Excused => tally.excused += 1,
                Status::Absent => tally.absent += 1,
                Status::Pending | Status::NotStarted => continue,
            }
            if let Some(record) = self.records.get(&(student.id, lesson.id))
                && matches!(record.status, RecordStatus::Present | RecordStatus::Late)
            {
                let attended = record.checked_in_at.or(window.map(|w| w.opened_at));
                last_attended_at = last_attended_at.max(attended);
            }
        }
        let rate = self.policy.rate(&tally);
        CourseAttendanceRow {
            left_at: self.enrolments.get(&student.id).and_then(Enrolment::left_at),
            student,
            lessons_counted: tally.counted,
            present: tally.present,
            late: tally.late,
            excused: tally.excused,
            absent: tally.absent,
            attendance_rate: rate,
            below_threshold: self.policy.below_threshold(rate),
            last_attended_at,
        }
    }
}

/// The course's report, one row per student who is or was enrolled.
pub fn course_report(
    conn: &mut PgConnection,
    course_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<CourseAttendanceRow>> {
    let held = Held::load(conn, course_id, now)?;
    Ok(held.students(conn)?.into_iter().map(|student| held.row(student, now)).collect())
}

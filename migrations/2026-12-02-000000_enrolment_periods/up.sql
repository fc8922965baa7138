-- Enrolment periods: leaving a course stamps `left_at` instead of deleting the row, and
-- enrolling again starts a new row. A lesson counts for a student when its check-in was
-- first opened while one of their periods was running, so a student who joins in week 5
-- is not absent for weeks 1-4, and one who leaves keeps the weeks they were there.
ALTER TABLE enrollments DROP CONSTRAINT enrollments_pkey;
ALTER TABLE enrollments ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE enrollments ADD COLUMN left_at TIMESTAMPTZ;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_period_check
    CHECK (left_at IS NULL OR left_at >= enrolled_at);
-- At most one running period per student and course.
CREATE UNIQUE INDEX enrollments_current_key ON enrollments (course_id, student_id)
    WHERE left_at IS NULL;
-- Every period of a course (reports), and of a student (their history, their check-ins).
CREATE INDEX enrollments_course_idx ON enrollments (course_id, student_id, enrolled_at);
DROP INDEX enrollments_student_id_idx;
CREATE INDEX enrollments_student_idx ON enrollments (student_id, course_id);

-- When the lesson's check-in was first opened: the instant that decides for whom it counts.
-- Written once, by the first open; existing lessons take their earliest window.
ALTER TABLE lessons ADD COLUMN first_opened_at TIMESTAMPTZ;
UPDATE lessons l SET first_opened_at = (
    SELECT min(w.opened_at) FROM checkin_windows w WHERE w.lesson_id = l.id
);

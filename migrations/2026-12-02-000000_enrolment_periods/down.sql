ALTER TABLE lessons DROP COLUMN first_opened_at;
-- Back to one row per (course, student): the running periods stay, and
-- a former student is dropped, as v1 would have after their removal.
DELETE FROM enrollments WHERE left_at IS NOT NULL;
DROP INDEX enrollments_student_idx;
DROP INDEX enrollments_course_idx;
DROP INDEX enrollments_current_key;
ALTER TABLE enrollments DROP COLUMN left_at;
ALTER TABLE enrollments DROP COLUMN id;
ALTER TABLE enrollments ADD PRIMARY KEY (course_id, student_id);
CREATE INDEX enrollments_student_id_idx ON enrollments (student_id);

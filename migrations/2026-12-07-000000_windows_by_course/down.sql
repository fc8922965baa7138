DROP INDEX checkin_windows_course_open_idx;
ALTER TABLE checkin_windows
    DROP CONSTRAINT checkin_windows_at_most_4_hours,
    DROP CONSTRAINT checkin_windows_lesson_course_fkey,
    DROP COLUMN course_id;
ALTER TABLE lessons DROP CONSTRAINT lessons_id_course_key;

-- The check-in lookup finds a course's windows that can be open at an instant without
-- visiting each of the course's lessons. Over a term every lesson keeps a window that has
-- not been finalised (one that closed by itself and was never stamped, or one planned by
-- automatic check-in), and going through all of them made the lookup twenty times slower
-- with 30 lessons a course (benches/RESULTS.md).
ALTER TABLE lessons ADD CONSTRAINT lessons_id_course_key UNIQUE (id, course_id);

ALTER TABLE checkin_windows ADD COLUMN course_id BIGINT;
UPDATE checkin_windows w SET course_id = l.course_id FROM lessons l WHERE l.id = w.lesson_id;
ALTER TABLE checkin_windows
    ALTER COLUMN course_id SET NOT NULL,
    -- Always the lesson's course (a lesson never changes course).
    ADD CONSTRAINT checkin_windows_lesson_course_fkey FOREIGN KEY (lesson_id, course_id)
        REFERENCES lessons (id, course_id) ON DELETE CASCADE,
    -- Check-in lasts at most 4 hours (duration_seconds 30..=14400), so a window open at an
    -- instant opened less than 4 hours before it: the bound the lookup's index range uses.
    ADD CONSTRAINT checkin_windows_at_most_4_hours CHECK (closes_at <= opened_at + interval '4 hours');

CREATE INDEX checkin_windows_course_open_idx ON checkin_windows (course_id, opened_at)
    WHERE closed_at IS NULL;

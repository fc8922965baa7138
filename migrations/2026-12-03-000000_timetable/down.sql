-- Scheduled windows that have not opened yet belong to the automatic check-in going away.
UPDATE lessons SET first_opened_at = NULL WHERE first_opened_at > now();
DELETE FROM checkin_windows WHERE opened_at > now();
ALTER TABLE lessons
    DROP CONSTRAINT lessons_auto_checkin_needs_start,
    DROP CONSTRAINT lessons_auto_checkin_whole,
    DROP CONSTRAINT lessons_ends_after_start,
    DROP COLUMN auto_late_after_seconds,
    DROP COLUMN auto_duration_seconds,
    DROP COLUMN auto_code_length,
    DROP COLUMN auto_rotation_seconds,
    DROP COLUMN auto_open_offset_minutes,
    DROP COLUMN cancelled,
    DROP COLUMN ends_at;
ALTER TABLE courses DROP COLUMN time_zone;

-- A term's timetable: each course keeps its IANA time zone (instants stay UTC; the zone is
-- for planning series and writing exports), and lessons gain an end, a cancelled flag and
-- optional automatic check-in settings.
ALTER TABLE courses ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC'
    CHECK (char_length(time_zone) BETWEEN 1 AND 64);

ALTER TABLE lessons
    ADD COLUMN ends_at TIMESTAMPTZ,
    ADD COLUMN cancelled BOOLEAN NOT NULL DEFAULT false,
    -- Automatic check-in: set together (late may stay null), only for a lesson with a start.
    -- The window itself is a checkin_windows row with its opened_at ahead, written when the
    -- lesson is created or edited, so every reader sees it open from that instant.
    ADD COLUMN auto_open_offset_minutes INTEGER CHECK (auto_open_offset_minutes BETWEEN -60 AND 60),
    ADD COLUMN auto_rotation_seconds INTEGER CHECK (auto_rotation_seconds BETWEEN 5 AND 300),
    ADD COLUMN auto_code_length INTEGER CHECK (auto_code_length BETWEEN 4 AND 10),
    ADD COLUMN auto_duration_seconds INTEGER CHECK (auto_duration_seconds BETWEEN 30 AND 14400),
    ADD COLUMN auto_late_after_seconds INTEGER
        CHECK (auto_late_after_seconds BETWEEN 0 AND auto_duration_seconds),
    ADD CONSTRAINT lessons_ends_after_start CHECK (ends_at IS NULL OR ends_at > starts_at),
    ADD CONSTRAINT lessons_auto_checkin_whole CHECK (
        (auto_open_offset_minutes IS NULL) = (auto_rotation_seconds IS NULL)
        AND (auto_open_offset_minutes IS NULL) = (auto_code_length IS NULL)
        AND (auto_open_offset_minutes IS NULL) = (auto_duration_seconds IS NULL)
        AND (auto_open_offset_minutes IS NOT NULL OR auto_late_after_seconds IS NULL)
    ),
    ADD CONSTRAINT lessons_auto_checkin_needs_start CHECK (
        auto_open_offset_minutes IS NULL OR starts_at IS NOT NULL
    );

-- A course's attendance policy (the defaults reproduce v1's rate), and the flag a code
-- check-in gets when it used the previous step's code in its grace period.
ALTER TABLE courses
    ADD COLUMN late_weight DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (late_weight BETWEEN 0 AND 1),
    ADD COLUMN excused_mode TEXT NOT NULL DEFAULT 'absent'
        CHECK (excused_mode IN ('absent', 'exclude', 'present')),
    ADD COLUMN warn_below DOUBLE PRECISION CHECK (warn_below BETWEEN 0 AND 1);

ALTER TABLE attendance ADD COLUMN stale_code BOOLEAN NOT NULL DEFAULT false;

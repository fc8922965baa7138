-- Check-ins settled by one statement (src/checkins/codes.rs): each instance reads every
-- window open now or opening soon, by its opening time.
CREATE INDEX checkin_windows_open_idx ON checkin_windows (opened_at) WHERE closed_at IS NULL;

-- Until when a student is locked out by the wrong-code throttle: written with the failure
-- that reaches the limit (in the transaction that records it, under the student's throttle
-- lock) and by an attempt found throttled, and read by the insert of a check-in settled by one statement, which joins the
-- student's row anyway. The failures themselves stay in checkin_failures, which the full
-- path counts; a cached plan of a statement reading that table, small between bursts of
-- wrong codes and large during one, would keep scanning all of it.
ALTER TABLE users ADD COLUMN checkin_throttled_until TIMESTAMPTZ;

-- Students locked out at the time of the migration.
UPDATE users u SET checkin_throttled_until = f.until
FROM (SELECT student_id, min(failed_at) + interval '60 seconds' AS until
      FROM checkin_failures WHERE failed_at > now() - interval '60 seconds'
      GROUP BY student_id HAVING count(*) >= 10) AS f
WHERE u.id = f.student_id;

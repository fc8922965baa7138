ALTER TABLE users DROP COLUMN checkin_throttled_until;
DROP INDEX checkin_windows_open_idx;

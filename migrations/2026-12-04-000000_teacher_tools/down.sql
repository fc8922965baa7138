ALTER TABLE attendance DROP COLUMN stale_code;
ALTER TABLE courses DROP COLUMN warn_below, DROP COLUMN excused_mode, DROP COLUMN late_weight;

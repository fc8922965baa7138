ALTER TABLE login_failures DROP COLUMN pending;
ALTER TABLE ws_tickets DROP COLUMN session_id;
DROP TABLE activation_codes;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN disabled;
UPDATE users SET password_hash = '!' WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;

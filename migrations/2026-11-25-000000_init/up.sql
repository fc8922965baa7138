-- The whole v1 contract in one schema. Constraints make bad states unrepresentable;
-- the application still validates first so clients get a precise 422.

CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        TEXT NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,64}$'),
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    real_name       TEXT NOT NULL CHECK (char_length(real_name) <= 200),
    student_number  TEXT CHECK (char_length(student_number) BETWEEN 1 AND 32),
    created_at      TIMESTAMPTZ NOT NULL,
    -- Only students carry a student number.
    CHECK (student_number IS NULL OR role = 'student')
);
-- "Alice" and "alice" are the same person to a teacher typing a roster.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_student_number_key ON users (student_number);

CREATE TABLE courses (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    code        TEXT CHECK (char_length(code) BETWEEN 1 AND 32),
    teacher_id  BIGINT NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX courses_teacher_id_idx ON courses (teacher_id);

CREATE TABLE enrollments (
    course_id    BIGINT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    student_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enrolled_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (course_id, student_id)
);
CREATE INDEX enrollments_student_id_idx ON enrollments (student_id);

CREATE TABLE lessons (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id   BIGINT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    title       TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    starts_at   TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX lessons_course_id_idx ON lessons (course_id, starts_at, id);

-- One row per time check-in was opened for a lesson. A window is open while
-- closed_at IS NULL and now() < closes_at; it closes itself at closes_at without
-- anything having to run, so readers compute the state from the clock.
CREATE TABLE checkin_windows (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lesson_id           BIGINT NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    secret              BYTEA NOT NULL CHECK (octet_length(secret) >= 16),
    opened_at           TIMESTAMPTZ NOT NULL,
    closes_at           TIMESTAMPTZ NOT NULL,
    closed_at           TIMESTAMPTZ,
    rotation_seconds    INTEGER NOT NULL CHECK (rotation_seconds BETWEEN 5 AND 300),
    code_length         INTEGER NOT NULL CHECK (code_length BETWEEN 4 AND 10),
    late_after_seconds  INTEGER CHECK (late_after_seconds >= 0),
    opened_by           BIGINT NOT NULL REFERENCES users (id),
    CHECK (closes_at > opened_at),
    CHECK (closed_at IS NULL OR closed_at BETWEEN opened_at AND closes_at),
    CHECK (late_after_seconds IS NULL
           OR opened_at + make_interval(secs => late_after_seconds) <= closes_at)
);
-- At most one window per lesson that has not been finalised. Re-opening after an
-- automatic close first stamps the old window's closed_at, in the same transaction.
CREATE UNIQUE INDEX checkin_windows_one_open_per_lesson
    ON checkin_windows (lesson_id) WHERE closed_at IS NULL;
CREATE INDEX checkin_windows_lesson_idx ON checkin_windows (lesson_id, opened_at DESC);

-- One row per (lesson, student) at most: a check-in or a teacher's decision.
CREATE TABLE attendance (
    lesson_id      BIGINT NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    student_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status         TEXT NOT NULL CHECK (status IN ('present', 'late', 'excused', 'absent')),
    method         TEXT NOT NULL CHECK (method IN ('code', 'manual')),
    checked_in_at  TIMESTAMPTZ,
    window_id      BIGINT REFERENCES checkin_windows (id) ON DELETE SET NULL,
    client_ip      TEXT CHECK (char_length(client_ip) <= 64),
    user_agent     TEXT CHECK (char_length(user_agent) <= 512),
    device_id      TEXT CHECK (char_length(device_id) BETWEEN 1 AND 128),
    note           TEXT CHECK (char_length(note) <= 1000),
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (lesson_id, student_id),
    CHECK (method <> 'code' OR checked_in_at IS NOT NULL)
);
CREATE INDEX attendance_student_id_idx ON attendance (student_id);
CREATE INDEX attendance_device_idx ON attendance (lesson_id, device_id) WHERE device_id IS NOT NULL;

-- Every teacher change to an attendance record: who, when, from what, to what, why.
CREATE TABLE attendance_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lesson_id   BIGINT NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    student_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    changed_by  BIGINT NOT NULL REFERENCES users (id),
    changed_at  TIMESTAMPTZ NOT NULL,
    old_status  TEXT NOT NULL CHECK (old_status IN
                    ('not_started', 'pending', 'present', 'late', 'excused', 'absent')),
    new_status  TEXT NOT NULL CHECK (new_status IN ('present', 'late', 'excused', 'absent')),
    note        TEXT CHECK (char_length(note) <= 1000)
);
CREATE INDEX attendance_audit_lesson_idx ON attendance_audit (lesson_id, student_id, changed_at);

-- Rejected check-in codes, for the per-student throttle shared by every instance.
CREATE TABLE checkin_failures (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    student_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    failed_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX checkin_failures_student_idx ON checkin_failures (student_id, failed_at);

-- Failed logins per (lower-cased) username, known or not, for the login throttle.
CREATE TABLE login_failures (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username   TEXT NOT NULL,
    failed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_username_idx ON login_failures (username, failed_at);

-- Single-use WebSocket tickets. Only a SHA-256 of the ticket is stored.
CREATE TABLE ws_tickets (
    ticket_hash  BYTEA PRIMARY KEY CHECK (octet_length(ticket_hash) = 32),
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lesson_id    BIGINT NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires_at);

// @generated automatically by Diesel CLI.

diesel::table! {
    activation_codes (user_id) {
        user_id -> Int8,
        code_hash -> Bytea,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    attendance (lesson_id, student_id) {
        lesson_id -> Int8,
        student_id -> Int8,
        status -> Text,
        method -> Text,
        checked_in_at -> Nullable<Timestamptz>,
        window_id -> Nullable<Int8>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        device_id -> Nullable<Text>,
        note -> Nullable<Text>,
        updated_at -> Timestamptz,
        stale_code -> Bool,
    }
}

diesel::table! {
    attendance_audit (id) {
        id -> Int8,
        lesson_id -> Int8,
        student_id -> Int8,
        changed_by -> Int8,
        changed_at -> Timestamptz,
        old_status -> Text,
        new_status -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    checkin_failures (id) {
        id -> Int8,
        student_id -> Int8,
        failed_at -> Timestamptz,
    }
}

diesel::table! {
    checkin_windows (id) {
        id -> Int8,
        lesson_id -> Int8,
        secret -> Bytea,
        opened_at -> Timestamptz,
        closes_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        rotation_seconds -> Int4,
        code_length -> Int4,
        late_after_seconds -> Nullable<Int4>,
        opened_by -> Int8,
        course_id -> Int8,
    }
}

diesel::table! {
    courses (id) {
        id -> Int8,
        title -> Text,
        code -> Nullable<Text>,
        teacher_id -> Int8,
        created_at -> Timestamptz,
        time_zone -> Text,
        late_weight -> Float8,
        excused_mode -> Text,
        warn_below -> Nullable<Float8>,
    }
}

diesel::table! {
    enrollments (id) {
        course_id -> Int8,
        student_id -> Int8,
        enrolled_at -> Timestamptz,
        id -> Int8,
        left_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    lessons (id) {
        id -> Int8,
        course_id -> Int8,
        title -> Text,
        starts_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        first_opened_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
        cancelled -> Bool,
        auto_open_offset_minutes -> Nullable<Int4>,
        auto_rotation_seconds -> Nullable<Int4>,
        auto_code_length -> Nullable<Int4>,
        auto_duration_seconds -> Nullable<Int4>,
        auto_late_after_seconds -> Nullable<Int4>,
    }
}

diesel::table! {
    login_codes (code_hash) {
        code_hash -> Bytea,
        user_id -> Int8,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        username -> Text,
        failed_at -> Timestamptz,
        pending -> Bool,
    }
}

diesel::table! {
    oidc_identities (provider, subject) {
        provider -> Text,
        subject -> Text,
        user_id -> Int8,
        created_at -> Timestamptz,
        last_login_at -> Timestamptz,
    }
}

diesel::table! {
    oidc_states (state_hash) {
        state_hash -> Bytea,
        provider -> Text,
        browser_hash -> Bytea,
        nonce -> Text,
        pkce_verifier -> Text,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Int8,
        issued_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        real_name -> Text,
        student_number -> Nullable<Text>,
        created_at -> Timestamptz,
        disabled -> Bool,
        sso_only -> Bool,
        checkin_throttled_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    ws_tickets (ticket_hash) {
        ticket_hash -> Bytea,
        user_id -> Int8,
        lesson_id -> Int8,
        expires_at -> Timestamptz,
        session_id -> Nullable<Int8>,
    }
}

diesel::joinable!(activation_codes -> users (user_id));
diesel::joinable!(attendance -> checkin_windows (window_id));
diesel::joinable!(attendance -> lessons (lesson_id));
diesel::joinable!(attendance -> users (student_id));
diesel::joinable!(attendance_audit -> lessons (lesson_id));
diesel::joinable!(checkin_failures -> users (student_id));
diesel::joinable!(checkin_windows -> users (opened_by));
diesel::joinable!(courses -> users (teacher_id));
diesel::joinable!(enrollments -> courses (course_id));
diesel::joinable!(enrollments -> users (student_id));
diesel::joinable!(lessons -> courses (course_id));
diesel::joinable!(login_codes -> users (user_id));
diesel::joinable!(oidc_identities -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(ws_tickets -> lessons (lesson_id));
diesel::joinable!(ws_tickets -> sessions (session_id));
diesel::joinable!(ws_tickets -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    activation_codes,
    attendance,
    attendance_audit,
    checkin_failures,
    checkin_windows,
    courses,
    enrollments,
    lessons,
    login_codes,
    login_failures,
    oidc_identities,
    oidc_states,
    refresh_tokens,
    sessions,
    users,
    ws_tickets,
);

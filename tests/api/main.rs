//! Black-box tests of the HTTP API: a real server on port 0, a fresh PostgreSQL database
//! per test, and a real HTTP client.

mod abuse;
mod accounts;
mod asyncapi;
mod attendance;
mod auth;
mod authorization;
mod checkin_control;
mod checkins;
mod courses;
mod enrolment;
mod errors;
mod health;
mod helpers;
mod import;
mod lessons;
mod limits;
mod live;
mod openapi;
mod operations;
mod sso;
mod story;
mod teacher_tools;
mod timetable;
mod tokens;
mod users;

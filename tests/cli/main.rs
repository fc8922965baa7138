//! The real `rollcall` binary, started as a user would start it: the embedded database's
//! whole life, configuration, several instances, logs, shutdown and database faults. Each
//! module holds one of those; this file holds what they share.

mod burst;
mod config;
mod embedded_database;
mod faults;
mod instances;
mod logs;
mod shutdown;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

#[path = "../support/binary.rs"]
mod binary;
#[path = "../support/database.rs"]
mod database;

fn rollcall(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROLLCALL_DATA_DIR", data_dir)
        .env("ROLLCALL_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .current_dir(data_dir.parent().unwrap());
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run rollcall")
}

async fn login(base: &str, username: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new().request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Running, as opposed to gone or a zombie nobody reaped (PID 1 in a container may not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(')').next().map(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn fresh_dir(label: &str) -> PathBuf {
    database::test_dir(label).join("data")
}

//! The embedded database's whole life: created on first use, shared with one-shot commands,
//! refusing a second server, stopped on SIGTERM, persisting between runs, never run as root.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::unistd::{User, geteuid};
use serde_json::{Value, json};

use crate::binary::Server;
use crate::{alive, database, fresh_dir, login, rollcall, run};

fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_runs_a_private_database_that_persists_and_stops_with_the_server() {
    let data = fresh_dir("serve");
    let mut command = rollcall(&data);
    command.args(["serve", "--demo"]);
    let server = Server::start(command);
    server.stdout_containing("demo.teacher / demo-teacher-pw");

    let (status, body) = login(&server.base, "demo.teacher", "demo-teacher-pw").await;
    assert_eq!(status, 200, "{body}");
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("demo.teacher"), Some("teacher")));

    // The cluster listens on a socket in its own directory only, as an unprivileged user.
    let cluster = data.join("postgres");
    assert!(cluster.join(".s.PGSQL.5432").exists());
    let conf = std::fs::read_to_string(cluster.join("postgresql.conf")).unwrap();
    assert!(conf.contains("listen_addresses = ''"));
    let owner = std::fs::metadata(&cluster).unwrap().uid();
    if geteuid().is_root() {
        assert_ne!(owner, 0, "PostgreSQL must not run as root");
        assert_eq!(Some(owner), User::from_name("postgres").unwrap().map(|u| u.uid.as_raw()));
    } else {
        assert_eq!(owner, geteuid().as_raw());
    }

    // A second server on the same directory is refused with a clear message.
    let mut second = rollcall(&data);
    let refused = run(second.arg("serve"));
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("already running on data directory"), "{message}");

    // One-shot commands use the running cluster and leave it running.
    let pid = postmaster_pid(&data).expect("cluster is running");
    assert!(run(rollcall(&data).arg("migrate")).status.success());
    let added = run(rollcall(&data).args([
        "user",
        "add",
        "--username",
        "late.joiner",
        "--password",
        "joiner-pw-1",
        "--role",
        "student",
        "--student-number",
        "LJ1",
    ]));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert_eq!(postmaster_pid(&data), Some(pid));
    assert_eq!(login(&server.base, "late.joiner", "joiner-pw-1").await.0, 200);

    // An operator resets a password from the command line: the printed code, not the old
    // password, lets the user in again (here choosing the same password anew).
    let reset = run(rollcall(&data).args(["user", "activation", "--username", "late.joiner"]));
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let printed = String::from_utf8_lossy(&reset.stdout).into_owned();
    let code = printed
        .split("activation code for `late.joiner`: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next());
    let code = code.unwrap_or_else(|| panic!("no activation code in {printed:?}")).to_owned();
    assert_eq!(login(&server.base, "late.joiner", "joiner-pw-1").await.0, 401);
    let activated = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/activate", server.base))
        .json(&json!({"username": "late.joiner", "activation_code": code, "new_password": "joiner-pw-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
    assert_eq!(login(&server.base, "late.joiner", "joiner-pw-1").await.0, 200);
    let unknown = run(rollcall(&data).args(["user", "activation", "--username", "nobody.here"]));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user is called `nobody.here`"));

    // SIGTERM closes live dashboards with 1001, stops the server, then the cluster:
    // nothing is left running.
    let teacher = login(&server.base, "demo.teacher", "demo-teacher-pw").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/api/v1/lessons/1/checkin/live", server.base.replace("http://", "ws://")),
    )
    .unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {teacher}").parse().unwrap());
    let (mut dashboard, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let close_code = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(frame)) = dashboard.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    });
    assert!(server.terminate().success());
    assert_eq!(close_code.await.unwrap(), Some(1001), "dashboards hear the server go away");
    assert!(!alive(pid), "postgres {pid} outlived the server");
    assert_eq!(postmaster_pid(&data), None);

    // The data persists into the next run.
    let again = Server::start({
        let mut c = rollcall(&data);
        c.arg("serve");
        c
    });
    assert_eq!(login(&again.base, "late.joiner", "joiner-pw-1").await.0, 200);
    assert!(again.terminate().success());
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

#[test]
fn one_shot_commands_start_and_stop_the_cluster_themselves_and_demo_is_idempotent() {
    let data = fresh_dir("oneshot");
    let migrated = run(rollcall(&data).arg("migrate"));
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(data.join("postgres/PG_VERSION").exists());
    assert_eq!(postmaster_pid(&data), None, "migrate left the cluster running");

    let first = run(rollcall(&data).arg("demo"));
    let second = run(rollcall(&data).arg("demo"));
    assert!(first.status.success() && second.status.success());
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(first.contains("demo.teacher / demo-teacher-pw") && first.contains("demo.student30"), "{first}");
    assert_eq!(first, String::from_utf8_lossy(&second.stdout), "a second demo run creates nothing new");
    let duplicate = run(rollcall(&data).args([
        "user",
        "add",
        "--username",
        "demo.teacher",
        "--password",
        "whatever-1",
        "--role",
        "teacher",
    ]));
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already taken"));
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

#[test]
fn as_an_unprivileged_user_the_cluster_runs_as_that_user() {
    let dir = database::test_dir("unprivileged");
    let data = dir.join("data");
    let mut command = rollcall(&data);
    let expected_owner = if geteuid().is_root() {
        // Exercise the non-root path too: run the binary itself as `nobody`.
        let nobody = User::from_name("nobody").unwrap().expect("a `nobody` user exists");
        nix::unistd::chown(&dir, Some(nobody.uid), Some(nobody.gid)).unwrap();
        command.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
        nobody.uid.as_raw()
    } else {
        geteuid().as_raw()
    };
    let output = run(command.arg("migrate"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::metadata(data.join("postgres")).unwrap().uid(), expected_owner);
    let _ = std::fs::remove_dir_all(&dir);
}

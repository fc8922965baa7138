//! The real `rollcall` binary as a child process, shared by `tests/cli` and the benchmarks:
//! it binds port 0, its address is read from its own log, its output is kept, and it never
//! outlives the test or benchmark that started it.

// Each test or benchmark crate that includes this file uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What the server logs (at info, from `rollcall::cli`) once it accepts connections; the
/// address follows it. A `RUST_LOG` that hides that line (e.g. plain `warn`) must let it
/// through, e.g. `warn,rollcall::cli=info`.
const LISTENING: &str = "rollcall is listening on ";

/// How long a dropped server gets to stop on SIGTERM (stopping its embedded PostgreSQL
/// too) before it is killed outright.
const GRACE: Duration = Duration::from_secs(10);

/// A running `rollcall serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`, as the server announced it.
    pub base: String,
    /// Everything the server has written to standard error (its log) so far.
    pub logs: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `command` (a `rollcall serve` with its environment) on 127.0.0.1 port 0 and
    /// waits until it says where it listens. The kernel picks the port while the server
    /// binds it, so no other process can take it in between.
    pub fn start(command: Command) -> Self {
        Self::spawn(command, false)
    }

    /// Like `start`, and also copies each log line to our standard error as it arrives, for
    /// a benchmark whose reader should see the server's warnings during the run.
    pub fn start_echoing_logs(command: Command) -> Self {
        Self::spawn(command, true)
    }

    fn spawn(mut command: Command, echo: bool) -> Self {
        let mut child = command
            .env("ROLLCALL_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rollcall serve");
        let (logs, stdout) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        let (address_tx, address_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        collect_lines(stderr, logs.clone(), move |line| {
            if echo {
                eprintln!("{line}");
            }
            if let Some(rest) = line.split(LISTENING).nth(1) {
                let _ = address_tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        });
        collect_lines(child.stdout.take().unwrap(), stdout.clone(), |_| {});
        // From here on, a panic drops (and so stops) the server.
        let mut server = Self { child, base: String::new(), logs, stdout };
        // The channel closes without an address if the server exits first (a bad
        // configuration, a taken data directory).
        match address_rx.recv_timeout(Duration::from_secs(90)) {
            Ok(base) => server.base = base,
            Err(_) => panic!(
                "the server never logged {LISTENING:?} (exited: {:?}; does RUST_LOG let that info \
                 line through?); its log:\n{}",
                server.child.try_wait(),
                server.logs.lock().unwrap()
            ),
        }
        server
    }

    /// Waits (up to 10 s) until standard output contains `needle`; returns all of it.
    pub fn stdout_containing(&self, needle: &str) -> String {
        for _ in 0..100 {
            let text = self.stdout.lock().unwrap().clone();
            if text.contains(needle) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("standard output never contained {needle:?}: {}", self.stdout.lock().unwrap())
    }

    /// Sends SIGTERM and waits for the server to exit, however long its shutdown takes.
    pub fn terminate(self) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.terminate_wait()
    }

    /// Waits for a server that has already been signalled.
    pub fn terminate_wait(mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// Resident memory of the server process, in KiB (0 once it has gone).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

/// Resident memory of process `pid`, in KiB (0 once it has gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A server a failing test leaves behind is stopped, not left running: SIGTERM first, so
/// an embedded PostgreSQL is stopped with it, then SIGKILL if it does not exit in time.
impl Drop for Server {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        for _ in 0..GRACE.as_millis() / 50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends each line `from` yields to `into` (after handing it to `each`), on a thread of
/// its own, until the stream closes.
fn collect_lines(
    from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    mut each: impl FnMut(&str) + Send + 'static,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            each(&line);
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

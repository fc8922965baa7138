//! A real OpenID provider for the single sign-on tests: `tests/oidc-provider/provider.mjs`
//! (panva's certified `oidc-provider` on Node.js), one process per test so that accounts,
//! test hooks and counters never cross tests. Its npm packages are installed once per
//! source version under the target directory. Needs Node.js ≥ 20.18 and npm
//! (`ROLLCALL_TEST_NODE` names another `node`); without them the tests fail, never skip.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

const SOURCES: [&str; 3] = ["package.json", "package-lock.json", "provider.mjs"];

/// The client rollcall is registered as.
pub const CLIENT_ID: &str = "rollcall";
pub const CLIENT_SECRET: &str = "rollcall-test-secret";

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

fn node() -> String {
    std::env::var("ROLLCALL_TEST_NODE").unwrap_or_else(|_| "node".into())
}

/// The provider's directory with its packages installed (once per test process, and
/// once per version of the sources across processes).
fn installed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let version = Command::new(node()).arg("--version").output().ok().filter(|out| out.status.success());
        let version =
            version.map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned()).unwrap_or_default();
        let numbers: Vec<u32> =
            version.trim_start_matches('v').split('.').filter_map(|part| part.parse().ok()).collect();
        assert!(
            matches!(numbers.as_slice(), [major, minor, ..] if *major > 20 || (*major == 20 && *minor >= 18)),
            "the single sign-on tests need Node.js >= 20.18 and npm (found `{version}`); \
             .ci/run shows how to install them, or set ROLLCALL_TEST_NODE"
        );
        let mut hash = Sha256::new();
        for name in SOURCES {
            hash.update(fs::read(source_dir().join(name)).expect("read the test provider's sources"));
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("oidc-provider-{}", &hex::encode(hash.finalize())[..16]));
        fs::create_dir_all(&dir).unwrap();
        // Test binaries may run at once (cargo nextest); one installs, the others wait.
        let lock = File::create(dir.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        if !dir.join(".installed").exists() {
            for name in SOURCES {
                fs::copy(source_dir().join(name), dir.join(name)).unwrap();
            }
            let npm = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .expect("run npm (install Node.js >= 20.18 with npm; see .ci/run)");
            assert!(
                npm.status.success(),
                "npm ci for the test OpenID provider failed:\n{}",
                String::from_utf8_lossy(&npm.stderr)
            );
            File::create(dir.join(".installed")).unwrap();
        }
        dir
    })
}

/// A running test provider; stopped when dropped.
pub struct TestProvider {
    /// `http://127.0.0.1:<port>`: the issuer and base of every endpoint.
    pub issuer: String,
    child: Child,
    // Closing it stops the provider even if this process is killed.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl TestProvider {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts one with extra environment, e.g. `("CLAIMS_IN_ID_TOKEN", "0")`.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        tokio::task::spawn_blocking(move || Self::spawn(&env)).await.unwrap()
    }

    fn spawn(env: &[(String, String)]) -> Self {
        let dir = installed();
        let mut child = Command::new(node())
            .arg(dir.join("provider.mjs"))
            .current_dir(dir)
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            // Any loopback port matches, so the rollcall test server needs no registration.
            .env("REDIRECT_URIS", "http://127.0.0.1:1/api/v1/auth/oidc/uni/callback,http://127.0.0.1:1/api/v1/auth/oidc/other/callback")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the test OpenID provider");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(issuer) = line.trim().strip_prefix("ISSUER=") else {
            let _ = child.kill();
            panic!("the test OpenID provider did not start:\n{}", stderr.lock().unwrap());
        };
        let stdin = child.stdin.take().unwrap();
        Self { issuer: issuer.to_owned(), child, _stdin: stdin, stderr, http: reqwest::Client::new() }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response
    }

    /// Adds (or replaces, by `sub`) an account: `{sub, password, preferred_username, ...}`.
    pub async fn account(&self, account: Value) {
        self.admin(reqwest::Method::POST, "/__test/accounts", Some(account)).await;
    }

    /// The next ID token(s) the token endpoint hands out are re-signed with these changes
    /// (`aud`, `nonce`, `exp_offset`, `iat_offset`, `key: "unknown"`, ...).
    pub async fn tamper(&self, overrides: Value) {
        self.admin(reqwest::Method::POST, "/__test/id-token", Some(overrides)).await;
    }

    /// A new signing key, served first in the JWKS; its kid.
    pub async fn rotate_key(&self) -> String {
        let answer: Value =
            self.admin(reqwest::Method::POST, "/__test/rotate-key", None).await.json().await.unwrap();
        answer["kid"].as_str().unwrap().to_owned()
    }

    /// Makes an endpoint fail: `{"endpoint": "token", "mode": "error" | "hang"}`.
    pub async fn fail(&self, how: Value) {
        self.admin(reqwest::Method::POST, "/__test/fail", Some(how)).await;
    }

    /// Requests counted so far: `jwks_fetches`, `token_requests`, ...
    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/__test/stats", None).await.json().await.unwrap()
    }

    /// What the provider logged, for failure messages.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

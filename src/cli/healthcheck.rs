//! `rollcall healthcheck`: a tiny HTTP client for container health checks (no curl needed).

use crate::config::Settings;

/// Exits cleanly if the server (at `url`, or at `ROLLCALL_BIND`) answers `/readyz` with 2xx.
pub fn check(url: Option<String>) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None => {
            let bind = Settings::from_env()?.bind;
            // A server bound to every interface is reached through loopback.
            let host =
                if bind.ip().is_unspecified() { "127.0.0.1".to_owned() } else { bind.ip().to_string() };
            format!("http://{host}:{}", bind.port())
        }
    };
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    actix_web::rt::System::new().block_on(async move {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
        let status = client.get(&url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    })
}

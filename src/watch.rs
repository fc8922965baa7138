//! `rollcall watch`: follow a lesson's live stream from a terminal, one JSON message per
//! line — the quickest way to see what a dashboard sees.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub struct Watch {
    pub server: String,
    pub lesson: i64,
    pub username: String,
    pub password: String,
}

impl Watch {
    /// Logs in, gets a ticket, and prints every message until the server closes.
    pub async fn run(self) -> anyhow::Result<()> {
        let server = self.server.trim_end_matches('/');
        let client = reqwest::Client::new();
        let login: Value = post(
            &client,
            &format!("{server}/api/v1/auth/login"),
            None,
            json!({
                "username": self.username, "password": self.password,
            }),
        )
        .await?;
        let token = login["access_token"].as_str().context("the login answer has no access_token")?;
        let ticket: Value = post(
            &client,
            &format!("{server}/api/v1/ws-tickets"),
            Some(token),
            json!({"lesson_id": self.lesson}),
        )
        .await?;
        let ticket = ticket["ticket"].as_str().context("the ticket answer has no ticket")?;
        let ws = server.replacen("http", "ws", 1);
        let url = format!("{ws}/api/v1/lessons/{}/checkin/live?ticket={ticket}", self.lesson);
        let (mut socket, _) =
            tokio_tungstenite::connect_async(url.as_str()).await.context("cannot open the live stream")?;
        eprintln!("watching lesson {} (Ctrl-C to stop)", self.lesson);
        while let Some(frame) = socket.next().await {
            match frame.context("the live stream failed")? {
                Message::Text(text) => println!("{text}"),
                Message::Close(frame) => {
                    eprintln!(
                        "closed by the server: {}",
                        frame.map_or_else(|| "no reason".into(), |f| format!("{} {}", f.code, f.reason))
                    );
                    break;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {}", body["detail"].as_str().unwrap_or("no detail"));
    }
    Ok(body)
}

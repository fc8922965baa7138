//! The live stream over a real WebSocket client: connecting, refusals, and reading frames.

use serde_json::Value;

use super::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens the live stream of a lesson with these extra request headers and query.
    pub async fn connect_live(
        &self,
        lesson_id: i64,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "{}/api/v1/lessons/{lesson_id}/checkin/live{query}",
            self.address.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
    }

    /// The live stream, authenticated by bearer token.
    pub async fn watch(&self, lesson_id: i64, token: &str) -> Socket {
        let auth = format!("Bearer {token}");
        self.connect_live(lesson_id, "", &[("authorization", &auth)]).await.expect("the live stream opens")
    }

    /// The HTTP status a refused live-stream request got.
    pub async fn live_refusal(&self, lesson_id: i64, query: &str, headers: &[(&str, &str)]) -> u16 {
        match self.connect_live(lesson_id, query, headers).await {
            Ok(_) => panic!("the live stream opened"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

/// The next JSON text message (answering pings on the way), within 5 s.
pub async fn next_message(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the stream is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON text"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; returns the close code (None if it just went away).
pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

//! One dashboard connection: sends the initial messages, then forwards the lesson's
//! messages while answering pings, pinging the client, and watching for floods, silence,
//! slowness and server shutdown. Everything it holds is dropped when it returns.

use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use futures_util::FutureExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::Heartbeat;
use super::hub::{SessionWatch, Subscription};
use super::limits::Permit;

/// Client messages allowed per `FLOOD_WINDOW` before the connection is closed with 1008.
const FLOOD_LIMIT: u32 = 20;
const FLOOD_WINDOW: Duration = Duration::from_secs(10);

pub struct Connection {
    pub session: Session,
    pub stream: MessageStream,
    pub subscription: Subscription,
    pub initial: Vec<ByteString>,
    pub heartbeat: Heartbeat,
    pub shutdown: watch::Receiver<bool>,
    /// Closes the stream when its session is revoked.
    pub revoked: SessionWatch,
    /// This connection's place under the connection caps (and in the count of connections).
    pub permit: Permit,
}

impl Connection {
    pub async fn run(self) {
        let Connection {
            mut session,
            mut stream,
            mut subscription,
            initial,
            heartbeat,
            mut shutdown,
            mut revoked,
            permit,
        } = self;
        let mut live = Live { session: &mut session, stream: &mut stream, heartbeat };
        let reason =
            live.serve(initial, &mut subscription.messages, &mut shutdown, &mut revoked.revoked).await;
        if let Some(reason) = reason {
            // A client that stopped reading must not hold us here either.
            let _ = tokio::time::timeout(Duration::from_secs(1), session.close(Some(reason))).await;
        }
        drop(subscription);
        drop(revoked);
        drop(permit);
    }
}

struct Live<'a> {
    session: &'a mut Session,
    stream: &'a mut MessageStream,
    heartbeat: Heartbeat,
}

impl Live<'_> {
    /// Returns why to close, or `None` when the connection is already gone.
    async fn serve(
        &mut self,
        initial: Vec<ByteString>,
        messages: &mut broadcast::Receiver<ByteString>,
        shutdown: &mut watch::Receiver<bool>,
        revoked: &mut watch::Receiver<bool>,
    ) -> Option<CloseReason> {
        for text in initial {
            if !self.send(text).await {
                return None;
            }
        }
        let mut heartbeat = tokio::time::interval(self.heartbeat.ping_every);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let mut flood = (Instant::now(), 0u32);
        // Made once, not per message: every connection waits on the one shutdown channel,
        // and re-registering 10,000 waiters on it at each code step is a contended lock.
        // Fused: a branch that finished without ending the loop (a dropped sender) stays
        // pending instead of being polled again.
        let mut shutting_down = std::pin::pin!(shutdown.wait_for(|stopping| *stopping).fuse());
        let mut session_revoked = std::pin::pin!(revoked.wait_for(|revoked| *revoked).fuse());
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(text) => {
                        if !self.send(text).await {
                            return Some(reason(CloseCode::Policy, "too slow to keep up"));
                        }
                    }
                    Err(RecvError::Lagged(_)) => return Some(reason(CloseCode::Policy, "too slow to keep up")),
                    Err(RecvError::Closed) => return Some(reason(CloseCode::Away, "lesson stream ended")),
                },
                frame = self.stream.recv() => match frame {
                    Some(Ok(Message::Ping(bytes))) => {
                        last_heard = Instant::now();
                        // Boxed, like a send that has to wait: kept out of the connection's
                        // state for the rare frame.
                        if Box::pin(self.session.pong(&bytes)).await.is_err() {
                            return None;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Continuation(_))) => {
                        // Client messages carry no meaning in v1 and are ignored, but a
                        // client that sends too many is cut off.
                        last_heard = Instant::now();
                        if flood.0.elapsed() > FLOOD_WINDOW {
                            flood = (Instant::now(), 0);
                        }
                        flood.1 += 1;
                        if flood.1 > FLOOD_LIMIT {
                            return Some(reason(CloseCode::Policy, "too many messages"));
                        }
                    }
                    Some(Ok(Message::Close(_))) => return Some(reason(CloseCode::Normal, "bye")),
                    Some(Ok(Message::Nop)) => {}
                    Some(Err(ProtocolError::Overflow)) => return Some(reason(CloseCode::Size, "frame too large")),
                    Some(Err(_)) => return Some(reason(CloseCode::Protocol, "protocol error")),
                    None => return None,
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= self.heartbeat.drop_after {
                        return Some(reason(CloseCode::Policy, "no answer to pings"));
                    }
                    if Box::pin(self.session.ping(b"")).await.is_err() {
                        return None;
                    }
                }
                _ = &mut shutting_down => {
                    return Some(reason(CloseCode::Away, "server shutting down"));
                }
                Ok(_) = &mut session_revoked => {
                    return Some(reason(CloseCode::Policy, "session revoked"));
                }
            }
        }
    }

    /// Sends a message; false if the client is gone or has not taken it within the send
    /// timeout. A message that can be handed over at once is sent by a future polled once,
    /// here, so neither it nor a timer is part of the connection's state, which lives as long
    /// as the dashboard; only when the client is behind is the wait (with its timer) boxed.
    /// A burst of code frames to thousands of dashboards sets no timers.
    async fn send(&mut self, text: ByteString) -> bool {
        // Dropping a send that did not complete sends nothing (and keeps the session's
        // claim on the queue for the next one).
        if let Some(sent) = self.session.text(text.clone()).now_or_never() {
            return sent.is_ok();
        }
        let waiting = Box::pin(tokio::time::timeout(self.heartbeat.send_timeout, self.session.text(text)));
        matches!(waiting.await, Ok(Ok(())))
    }
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason { code, description: Some(description.to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::FromRequest;
    use actix_web::test::TestRequest;

    /// A real session and stream whose client never reads (the response body is never
    /// polled) and never hangs up (its request body stays open and silent).
    async fn unread_socket() -> (actix_web::HttpResponse, Session, MessageStream) {
        let (req, _) = TestRequest::get()
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "upgrade"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .to_http_parts();
        let silent =
            futures_util::stream::pending::<Result<actix_web::web::Bytes, actix_web::error::PayloadError>>();
        let mut payload: actix_web::dev::Payload =
            actix_web::dev::Payload::Stream { payload: Box::pin(silent) };
        let body = actix_web::web::Payload::from_request(&req, &mut payload).await.unwrap();
        actix_ws::handle(&req, body).unwrap()
    }

    #[actix_web::test]
    async fn a_client_that_stops_reading_is_dropped_instead_of_buffering() {
        let (_response, mut session, mut stream) = unread_socket().await;
        let timing = Heartbeat { send_timeout: Duration::from_millis(100), ..Heartbeat::default() };
        let (tx, mut messages) = broadcast::channel(64);
        let (_stop, mut shutdown) = watch::channel(false);
        let (_revoke, mut revoked) = watch::channel(false);
        let serve = actix_web::rt::spawn(async move {
            let mut live = Live { session: &mut session, stream: &mut stream, heartbeat: timing };
            live.serve(Vec::new(), &mut messages, &mut shutdown, &mut revoked)
                .await
                .map(|r| (r.code, r.description))
        });
        // Far more than the session's queue (32) and the lesson's buffer (64) hold.
        for n in 0..500 {
            let _ = tx.send(ByteString::from(format!("{{\"type\":\"code\",\"n\":{n}}}")));
            tokio::task::yield_now().await;
        }
        let closed =
            tokio::time::timeout(Duration::from_secs(5), serve).await.expect("dropped in time").unwrap();
        assert_eq!(closed, Some((CloseCode::Policy, Some("too slow to keep up".to_owned()))));
    }
}

//! The live benchmark's dashboards: a WebSocket client made to cost as little CPU per frame
//! as it can, because it shares the machine's two cores with the server it measures.
//!
//! Connecting is asynchronous (tokio): an HTTP upgrade written by hand, with the teacher's
//! bearer token. After the `101` answer the socket goes to one reader thread that waits on
//! all of them with level-triggered epoll and reads each ready socket once: one `read` per
//! frame, where a tokio task per connection (tokio-tungstenite) woke a task, read until the
//! socket said "would block" (two reads per frame), and copied each frame into a message.
//! Frames are parsed by tungstenite's `FrameHeader`; the server's are unfragmented. The
//! reader answers pings, as a browser does, so the server's heartbeat keeps the connections.
//!
//! Each message comes with two times: when the reader read it, and when it reached the
//! dashboard's socket (the kernel's receive timestamp, `SO_TIMESTAMPNS`). On loopback the
//! second is when the server's `send` delivered it: the server's own latency, whatever the
//! reader's share of the two cores. A read that takes several messages gives them the
//! timestamp of the last segment it took.
//!
//! So the reader runs at `SCHED_IDLE`: with the times taken by the kernel, it no longer needs
//! to read promptly, and it should not take the cores from the server during a burst, as
//! remote browsers would not. It reads in the gaps, and whenever the server is idle.

use std::io::{self, Cursor, IoSliceMut, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Opens a dashboard: connects to `host` (`host:port`), upgrades `path` to a WebSocket as
/// `token`'s bearer, and returns the socket (non-blocking) with whatever the server sent
/// after its `101` answer.
pub async fn connect(host: &str, path: &str, token: &str) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(io::Error::other("no end to the upgrade answer's head"));
        }
    };
    if !head.starts_with(b"HTTP/1.1 101") {
        let status = head.split(|b| *b == b'\r').next().unwrap_or_default();
        return Err(io::Error::other(format!("upgrade refused: {}", String::from_utf8_lossy(status))));
    }
    let rest = head.split_off(end);
    // Still non-blocking, and no longer registered with tokio.
    let stream = stream.into_std()?;
    setsockopt(&stream, sockopt::ReceiveTimestampns, &true)?;
    Ok((stream, rest))
}

/// When a message reached the dashboard: `arrived` at its socket (the kernel's timestamp),
/// and `read` by the reader.
#[derive(Clone, Copy)]
pub struct Received {
    pub arrived: DateTime<Utc>,
    pub read: DateTime<Utc>,
}

/// A dashboard handed to the reader: its socket, bytes already read, and what the caller
/// wants back with each of its messages.
pub struct Dashboard<T> {
    pub stream: TcpStream,
    pub received: Vec<u8>,
    pub tag: T,
}

/// Starts the reader thread. `on_text` gets every text message with its dashboard's tag and
/// when it was received (for the bytes that came with the upgrade's answer, both times are
/// when the reader took them); `on_closed` is called once for each dashboard the server closed or
/// dropped. Send dashboards to the returned channel once they are connected.
pub fn start_reader<T: Send + 'static>(
    mut on_text: impl FnMut(&T, &str, Received) + Send + 'static,
    mut on_closed: impl FnMut(&T) + Send + 'static,
) -> mpsc::Sender<Dashboard<T>> {
    let (sender, added) = mpsc::channel::<Dashboard<T>>();
    std::thread::Builder::new()
        .name("dashboards".into())
        .spawn(move || {
            let idle = nix::libc::sched_param { sched_priority: 0 };
            // SAFETY: plain system call on this thread, with a valid parameter.
            if unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &idle) } != 0 {
                eprintln!("dashboards' reader: SCHED_IDLE refused: {}", io::Error::last_os_error());
            }
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
            // By file descriptor.
            let mut dashboards: Vec<Option<Dashboard<T>>> = Vec::new();
            let mut events = vec![EpollEvent::empty(); 1024];
            let mut buffer = vec![0u8; 64 * 1024];
            let mut control = nix::cmsg_space!(TimeSpec);
            loop {
                while let Ok(mut dashboard) = added.try_recv() {
                    let fd = dashboard.stream.as_raw_fd() as usize;
                    let received = std::mem::take(&mut dashboard.received);
                    let now = Utc::now();
                    let now = Received { arrived: now, read: now };
                    if !received.is_empty() && !take_frames(&mut dashboard, &received, now, &mut on_text) {
                        on_closed(&dashboard.tag);
                        continue;
                    }
                    epoll
                        .add(&dashboard.stream, EpollEvent::new(EpollFlags::EPOLLIN, fd as u64))
                        .expect("epoll add");
                    if dashboards.len() <= fd {
                        dashboards.resize_with(fd + 1, || None);
                    }
                    dashboards[fd] = Some(dashboard);
                }
                let ready = match epoll.wait(&mut events, 50u16) {
                    Ok(ready) => ready,
                    Err(nix::errno::Errno::EINTR) => 0,
                    Err(err) => panic!("epoll_wait: {err}"),
                };
                for event in &events[..ready] {
                    let fd = event.data() as usize;
                    let Some(dashboard) = dashboards[fd].as_mut() else { continue };
                    // Level-triggered: whatever one read leaves is reported again.
                    let open = match receive(&dashboard.stream, &mut buffer, &mut control) {
                        Ok((0, _)) => false,
                        Ok((read, arrived)) => {
                            let now = Utc::now();
                            let now = Received { arrived: arrived.unwrap_or(now), read: now };
                            if dashboard.received.is_empty() {
                                take_frames(dashboard, &buffer[..read], now, &mut on_text)
                            } else {
                                let mut received = std::mem::take(&mut dashboard.received);
                                received.extend_from_slice(&buffer[..read]);
                                take_frames(dashboard, &received, now, &mut on_text)
                            }
                        }
                        Err(err) => err == nix::errno::Errno::EAGAIN,
                    };
                    if !open {
                        let dashboard = dashboards[fd].take().expect("present");
                        let _ = epoll.delete(&dashboard.stream);
                        on_closed(&dashboard.tag);
                    }
                }
            }
        })
        .expect("reader thread");
    sender
}

/// One read from `stream` into `buffer`: how many bytes, and when the last of them reached
/// the socket.
fn receive(
    stream: &TcpStream,
    buffer: &mut [u8],
    control: &mut Vec<u8>,
) -> nix::Result<(usize, Option<DateTime<Utc>>)> {
    let mut slices = [IoSliceMut::new(buffer)];
    let message = recvmsg::<()>(stream.as_raw_fd(), &mut slices, Some(control), MsgFlags::MSG_DONTWAIT)?;
    let arrived = message.cmsgs()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::ScmTimestampns(at) => DateTime::from_timestamp(at.tv_sec(), at.tv_nsec() as u32),
        _ => None,
    });
    Ok((message.bytes, arrived))
}

/// Handles the whole frames in `data` and keeps the rest for the next read; false when the
/// server closed the connection or broke the protocol.
fn take_frames<T>(
    dashboard: &mut Dashboard<T>,
    data: &[u8],
    now: Received,
    on_text: &mut impl FnMut(&T, &str, Received),
) -> bool {
    let mut frames = Cursor::new(data);
    loop {
        let start = frames.position() as usize;
        let (header, length) = match FrameHeader::parse(&mut frames) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => break,
            Err(_) => return false,
        };
        let payload = frames.position() as usize..frames.position() as usize + length as usize;
        let Some(payload) = data.get(payload) else {
            frames.set_position(start as u64);
            break;
        };
        frames.set_position(frames.position() + length);
        match header.opcode {
            // The server sends every message in one frame.
            _ if !header.is_final => return false,
            OpCode::Data(Data::Text) => match std::str::from_utf8(payload) {
                Ok(text) => on_text(&dashboard.tag, text, now),
                Err(_) => return false,
            },
            OpCode::Control(Control::Close) => return false,
            OpCode::Control(Control::Ping) => {
                let mut pong = Frame::pong(payload.to_vec());
                // A client's frame is masked; a zero mask leaves the payload as it is.
                pong.header_mut().mask = Some([0; 4]);
                let mut bytes = Vec::with_capacity(pong.len());
                if pong.format(&mut bytes).is_ok() {
                    let _ = (&dashboard.stream).write_all(&bytes);
                }
            }
            _ => {}
        }
    }
    dashboard.received.extend_from_slice(&data[frames.position() as usize..]);
    true
}

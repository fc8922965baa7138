//! What we record about the client making a request (a check-in, a login): its IP address
//! (believing `X-Forwarded-For` only from configured proxies), user agent, and device id.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::ApiError;

pub const DEVICE_ID: &str = "x-device-id";

/// Peers whose `X-Forwarded-For` we believe (`ROLLCALL_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpAddr>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
}

impl ClientInfo {
    /// The client's address, user agent and (checked) `X-Device-Id`: a malformed device id
    /// is a 400.
    pub fn from_request(req: &HttpRequest, trusted: &TrustedProxies) -> Result<Self, ApiError> {
        let device_id = match req.headers().get(DEVICE_ID) {
            None => None,
            Some(value) => Some(value.to_str().ok().and_then(parse_device_id).ok_or_else(|| {
                ApiError::BadRequest("X-Device-Id must be 1–128 printable ASCII characters".into())
            })?),
        };
        Ok(Self { device_id, ..Self::describe(req, trusted) })
    }

    /// The client's address and user agent (no device id), for a new session.
    pub fn describe(req: &HttpRequest, trusted: &TrustedProxies) -> Self {
        let peer = req.peer_addr().map(|addr| addr.ip());
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(512).collect());
        Self {
            ip: client_ip(peer, forwarded, &trusted.0).map(|ip| ip.to_string()),
            user_agent,
            device_id: None,
        }
    }
}

fn parse_device_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    ((1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())).then(|| raw.to_owned())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else { return Some(peer) };
    let mut last = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => last = ip,
            Ok(ip) => return Some(ip),
            // A malformed entry: stop believing the chain here.
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &[]), Some(ip("203.0.113.9")));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("6.6.6.6, 198.51.100.7, 10.0.0.2"), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client_ip(Some(ip("10.0.0.1")), None, &trusted), Some(ip("10.0.0.1")));
        assert_eq!(client_ip(Some(ip("10.0.0.1")), Some("junk, 10.0.0.2"), &trusted), Some(ip("10.0.0.2")));
    }

    #[test]
    fn device_ids_are_short_printable_ascii() {
        assert_eq!(parse_device_id(" 3f2a-device "), Some("3f2a-device".into()));
        assert_eq!(parse_device_id(""), None);
        assert_eq!(parse_device_id("has space"), None);
        assert_eq!(parse_device_id(&"d".repeat(129)), None);
    }
}

//! The rotating check-in code: HMAC-SHA256 over a window's secret and the time step,
//! shortened by RFC 4226 dynamic truncation. Pure: the caller passes the time.
//!
//! Step `n` covers `[opened_at + n·rotation, opened_at + (n+1)·rotation)`. A submitted code
//! is accepted if it is the current step's code, or the previous step's code during the
//! first `min(5 s, rotation / 2)` of the current step (the grace period, half-open: at
//! exactly its end the previous code has expired). The code of any other earlier step
//! is "expired"; anything else is "invalid".

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The inputs that determine a window's codes.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    pub secret: &'a [u8],
    pub opened_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub rotation_seconds: i64,
    pub code_length: u32,
}

/// One step's code and when it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub step: i64,
    pub code: String,
    pub valid_from: DateTime<Utc>,
    /// The end of the step, but never later than the window's close.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The current step's code.
    Accepted,
    /// The previous step's code, within the grace period: accepted, and flagged
    /// `stale_code` (a hint that the code was relayed, never a verdict).
    Stale,
    /// The code of an earlier step of this window.
    Expired,
    Invalid,
}

impl Schedule<'_> {
    fn rotation(&self) -> Duration {
        Duration::seconds(self.rotation_seconds)
    }

    /// The step in force at `now` (which must not be before `opened_at`).
    pub fn step_at(&self, now: DateTime<Utc>) -> i64 {
        let elapsed = (now - self.opened_at).num_microseconds().unwrap_or(i64::MAX).max(0);
        elapsed / (self.rotation_seconds * 1_000_000)
    }

    pub fn step_start(&self, step: i64) -> DateTime<Utc> {
        self.opened_at + Duration::seconds(self.rotation_seconds * step)
    }

    /// The first step boundary strictly after `now`.
    pub fn next_boundary(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.step_start(self.step_at(now) + 1)
    }

    /// How long the previous code stays valid into a new step.
    pub fn grace(&self) -> Duration {
        Duration::milliseconds((self.rotation_seconds * 500).min(5_000))
    }

    pub fn code(&self, step: i64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret).expect("unwrap: HMAC accepts keys of any length");
        mac.update(&(step as u64).to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let value = u64::from(dynamic_truncate(&digest)) % 10u64.pow(self.code_length);
        format!("{value:0width$}", width = self.code_length as usize)
    }

    pub fn frame(&self, now: DateTime<Utc>) -> Frame {
        let step = self.step_at(now);
        let valid_from = self.step_start(step);
        Frame {
            step,
            code: self.code(step),
            valid_from,
            expires_at: (valid_from + self.rotation()).min(self.closes_at),
        }
    }

    /// Judges a submitted code at `now`, assuming the window is open then.
    pub fn verify(&self, submitted: &str, now: DateTime<Utc>) -> Verdict {
        let matches =
            |step: i64| -> bool { bool::from(self.code(step).as_bytes().ct_eq(submitted.as_bytes())) };
        let current = self.step_at(now);
        if matches(current) {
            return Verdict::Accepted;
        }
        if current > 0 && matches(current - 1) {
            let into_step = now - self.step_start(current);
            return if into_step < self.grace() { Verdict::Stale } else { Verdict::Expired };
        }
        if (0..current.saturating_sub(1)).rev().any(matches) { Verdict::Expired } else { Verdict::Invalid }
    }
}

/// RFC 4226 §5.3 dynamic truncation: 31 bits taken at the offset named by the low nibble
/// of the last byte.
pub fn dynamic_truncate(digest: &[u8]) -> u32 {
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// RFC 4226 Appendix D: HMAC-SHA-1 values for counters 0..=9 with secret
    /// "12345678901234567890", their truncation, and the 6-digit HOTP.
    const APPENDIX_D: [(&str, u32, u32); 10] = [
        ("cc93cf18508d94934c64b65d8ba7667fb7cde4b0", 1284755224, 755224),
        ("75a48a19d4cbe100644e8ac1397eea747a2d33ab", 1094287082, 287082),
        ("0bacb7fa082fef30782211938bc1c5e70416ff44", 137359152, 359152),
        ("66c28227d03a2d5529262ff016a1e6ef76557ece", 1726969429, 969429),
        ("a904c900a64b35909874b33e61c5938a8e15ed1c", 1640338314, 338314),
        ("a37e783d7b7233c083d4f62926c7a25f238d0316", 868254676, 254676),
        ("bc9cd28561042c83f219324d3c607256c03272ae", 1918287922, 287922),
        ("a4fb960c0bc06e1eabb804e5b397cdc4b45596fa", 82162583, 162583),
        ("1b3c89f65e6c9e883012052823443f048b4332db", 673399871, 399871),
        ("1637409809a679dc698207310c8c7fc07290d9e5", 645520489, 520489),
    ];

    #[test]
    fn truncation_matches_rfc_4226_appendix_d() {
        for (hmac_hex, truncated, hotp) in APPENDIX_D {
            let digest = hex::decode(hmac_hex).unwrap();
            assert_eq!(dynamic_truncate(&digest), truncated, "{hmac_hex}");
            assert_eq!(dynamic_truncate(&digest) % 1_000_000, hotp);
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    #[test]
    fn codes_match_rfc_6238_sha256_vectors() {
        // RFC 6238 Appendix B, SHA-256 column, 8 digits, 30 s steps from the epoch.
        let secret = b"12345678901234567890123456789012";
        let schedule = Schedule {
            secret,
            opened_at: at(0),
            closes_at: at(i64::from(i32::MAX)),
            rotation_seconds: 30,
            code_length: 8,
        };
        for (time, expected) in [(59, "46119246"), (1111111109, "68084774"), (1234567890, "91819424")] {
            assert_eq!(schedule.code(schedule.step_at(at(time))), expected, "T = {time}");
        }
    }

    fn schedule(rotation_seconds: i64) -> Schedule<'static> {
        Schedule {
            secret: b"a window secret of sixteen+ bytes",
            opened_at: at(1_000),
            closes_at: at(1_600),
            rotation_seconds,
            code_length: 6,
        }
    }

    #[test]
    fn codes_have_the_configured_number_of_zero_padded_digits() {
        for digits in 4..=10 {
            let s = Schedule { code_length: digits, ..schedule(10) };
            for step in 0..50 {
                let code = s.code(step);
                assert_eq!(code.len(), digits as usize);
                assert!(code.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn steps_count_from_the_window_opening() {
        let s = schedule(10);
        assert_eq!(s.step_at(at(1_000)), 0);
        assert_eq!(s.step_at(at(1_009)), 0);
        assert_eq!(s.step_at(at(1_010)), 1);
        assert_eq!(s.next_boundary(at(1_010)), at(1_020));
        assert_ne!(s.code(0), s.code(1));
    }

    #[test]
    fn a_frame_expires_at_the_step_end_but_never_after_the_close() {
        let s = schedule(7);
        let frame = s.frame(at(1_015));
        assert_eq!((frame.step, frame.valid_from, frame.expires_at), (2, at(1_014), at(1_021)));
        // 600 s window with 7 s steps: the last step is cut short by the close.
        let last = s.frame(at(1_599));
        assert_eq!(last.valid_from, at(1_595));
        assert_eq!(last.expires_at, at(1_600));
    }

    #[test]
    fn the_current_code_is_accepted() {
        let s = schedule(10);
        assert_eq!(s.verify(&s.code(3), at(1_035)), Verdict::Accepted);
    }

    #[test]
    fn the_previous_code_is_accepted_until_the_grace_period_ends() {
        // rotation 10 s → grace min(5, 5) = 5 s.
        let s = schedule(10);
        let previous = s.code(2);
        assert_eq!(s.verify(&previous, at(1_030)), Verdict::Stale);
        assert_eq!(s.verify(&previous, at(1_034) + Duration::milliseconds(999)), Verdict::Stale);
        assert_eq!(s.verify(&previous, at(1_035)), Verdict::Expired);
    }

    #[test]
    fn the_grace_period_is_half_a_short_rotation_and_at_most_five_seconds() {
        assert_eq!(schedule(5).grace(), Duration::milliseconds(2_500));
        assert_eq!(schedule(7).grace(), Duration::milliseconds(3_500));
        assert_eq!(schedule(300).grace(), Duration::seconds(5));
        let s = schedule(5);
        let previous = s.code(0);
        assert_eq!(s.verify(&previous, at(1_007) + Duration::milliseconds(499)), Verdict::Stale);
        assert_eq!(s.verify(&previous, at(1_007) + Duration::milliseconds(500)), Verdict::Expired);
    }

    #[test]
    fn older_codes_of_the_window_are_expired_and_others_invalid() {
        let s = schedule(10);
        assert_eq!(s.verify(&s.code(0), at(1_055)), Verdict::Expired);
        assert_eq!(s.verify(&s.code(7), at(1_055)), Verdict::Invalid, "a future code is not valid");
        let wrong =
            (0..10).map(|d| d.to_string().repeat(6)).find(|c| (0..=6).all(|n| &s.code(n) != c)).unwrap();
        assert_eq!(s.verify(&wrong, at(1_055)), Verdict::Invalid);
        assert_eq!(s.verify("12345", at(1_055)), Verdict::Invalid);
        assert_eq!(s.verify("", at(1_055)), Verdict::Invalid);
    }

    #[test]
    fn another_secret_gives_other_codes() {
        let a = schedule(10);
        let b = Schedule { secret: b"another window secret, 16+ bytes", ..a };
        let same = (0..20).filter(|n| a.code(*n) == b.code(*n)).count();
        assert!(same <= 1, "{same} of 20 codes collide");
    }
}

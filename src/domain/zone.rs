//! A course's time zone, by its IANA name, and how a local date and wall-clock time there
//! becomes one instant across daylight-saving changes.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IANA time zone such as `Europe/Vienna`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(Tz);

/// The instant a local wall-clock time names, and what was changed to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub at: DateTime<Utc>,
    /// Set when the wall-clock time did not exist and was moved forward; names the date.
    pub warning: Option<String>,
}

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// An IANA name, spelled exactly (names are case-sensitive: `Europe/Vienna`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.parse::<Tz>()
            .map(Self)
            .map_err(|_| format!("`{raw}` is not a known IANA time zone name, such as `Europe/Vienna`"))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    /// The instant at which the wall clock in this zone shows `time` on `date`.
    ///
    /// A time that does not exist (clocks go forward past it) is moved forward by the gap,
    /// e.g. 02:30 becomes 03:30, with a warning; a time that occurs twice (clocks go back)
    /// takes the earlier instant. `None` only beyond the years chrono can represent.
    pub fn resolve(self, date: NaiveDate, time: NaiveTime) -> Option<Resolved> {
        let local = date.and_time(time);
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(at) => Some(Resolved { at: at.to_utc(), warning: None }),
            LocalResult::Ambiguous(first, second) => {
                Some(Resolved { at: first.min(second).to_utc(), warning: None })
            }
            LocalResult::None => {
                // Read the time with the offset in force before the gap: that lands as far past
                // the gap's end as the time was past its start. A day back is well before any
                // gap, since no zone changes its offset twice in a day.
                let day_before = local.checked_sub_signed(TimeDelta::days(1))?;
                let before = self.0.offset_from_utc_datetime(&day_before).fix();
                let at = local.checked_sub_offset(before)?.and_utc();
                let moved = at.with_timezone(&self.0).naive_local();
                // Not a gap at all but the end of chrono's range: refuse rather than guess.
                if moved <= local || moved - local > TimeDelta::days(1) {
                    return None;
                }
                let warning = format!(
                    "{date}: {} does not exist in {} (the clocks go forward); moved to {}",
                    time.format("%H:%M"),
                    self.name(),
                    moved.format("%H:%M"),
                );
                Some(Resolved { at, warning: Some(warning) })
            }
        }
    }
}

impl Zone {
    /// An instant as RFC 3339 on this zone's wall clock with its offset
    /// (`2026-10-27T09:15:00+01:00`); in UTC with `Z`, as JSON writes it.
    pub fn format(self, at: DateTime<Utc>) -> String {
        if self == Self::UTC {
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        } else {
            at.with_timezone(&self.0).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        }
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        let name = String::deserialize(input)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    fn at(date: &str, time: &str, zone: Zone) -> Resolved {
        zone.resolve(date.parse().unwrap(), time.parse().unwrap()).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn names_are_iana_and_exact() {
        assert_eq!(zone("Europe/Vienna").name(), "Europe/Vienna");
        assert_eq!(zone("America/New_York").to_string(), "America/New_York");
        for bad in ["Europe/Viena", "europe/vienna", "", " Europe/Vienna", "CEST+2"] {
            assert!(Zone::parse(bad).unwrap_err().contains("not a known IANA time zone"), "{bad:?}");
        }
    }

    #[test]
    fn instants_are_written_on_the_local_clock_with_their_offset() {
        let at = utc("2026-10-27T08:15:00Z");
        assert_eq!(zone("Europe/Vienna").format(at), "2026-10-27T09:15:00+01:00");
        assert_eq!(zone("Europe/Vienna").format(utc("2026-10-24T07:15:00Z")), "2026-10-24T09:15:00+02:00");
        assert_eq!(zone("America/New_York").format(at), "2026-10-27T04:15:00-04:00");
        assert_eq!(Zone::UTC.format(at), "2026-10-27T08:15:00Z");
    }

    #[test]
    fn serde_uses_the_name() {
        let vienna = zone("Europe/Vienna");
        assert_eq!(serde_json::to_string(&vienna).unwrap(), r#""Europe/Vienna""#);
        assert_eq!(serde_json::from_str::<Zone>(r#""Europe/Vienna""#).unwrap(), vienna);
        assert!(serde_json::from_str::<Zone>(r#""Mars/Olympus""#).is_err());
    }

    #[test]
    fn the_wall_clock_is_kept_across_a_change() {
        let vienna = zone("Europe/Vienna");
        assert_eq!(at("2026-03-28", "09:15", vienna).at, utc("2026-03-28T08:15:00Z"));
        assert_eq!(at("2026-03-30", "09:15", vienna).at, utc("2026-03-30T07:15:00Z"));
        assert_eq!(at("2026-10-24", "09:15", vienna).at, utc("2026-10-24T07:15:00Z"));
        assert_eq!(at("2026-10-26", "09:15", vienna).at, utc("2026-10-26T08:15:00Z"));
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_with_a_warning() {
        let vienna = at("2026-03-29", "02:30", zone("Europe/Vienna"));
        assert_eq!(vienna.at, utc("2026-03-29T01:30:00Z"));
        assert_eq!(
            vienna.warning.as_deref(),
            Some("2026-03-29: 02:30 does not exist in Europe/Vienna (the clocks go forward); moved to 03:30")
        );
        let new_york = at("2026-03-08", "02:00", zone("America/New_York"));
        assert_eq!(new_york.at, utc("2026-03-08T07:00:00Z"));
        assert!(new_york.warning.unwrap().starts_with("2026-03-08: 02:00 does not exist"));
        // The minute before and the first minute after the gap exist.
        assert_eq!(at("2026-03-08", "01:59", zone("America/New_York")).warning, None);
        assert_eq!(at("2026-03-08", "03:00", zone("America/New_York")).at, utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn a_time_that_occurs_twice_takes_the_earlier_instant() {
        let vienna = at("2026-10-25", "02:30", zone("Europe/Vienna"));
        assert_eq!(vienna, Resolved { at: utc("2026-10-25T00:30:00Z"), warning: None });
        let new_york = at("2026-11-01", "01:30", zone("America/New_York"));
        assert_eq!(new_york, Resolved { at: utc("2026-11-01T05:30:00Z"), warning: None });
    }

    #[test]
    fn the_ends_of_the_calendar_do_not_panic() {
        // Both local mean times are hours off UTC, towards the edge of the calendar.
        let tokyo = zone("Asia/Tokyo");
        assert!(tokyo.resolve(NaiveDate::MIN, NaiveTime::MIN).is_none());
        let honolulu = zone("Pacific/Honolulu");
        assert!(honolulu.resolve(NaiveDate::MAX, "23:59".parse().unwrap()).is_none());
    }
}

//! A lesson series planned from its rule: one lesson per matching local date in the course's
//! time zone, numbered from 1, at the same wall-clock time across daylight-saving changes.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};

use super::text::{FieldError, Invalid, Title, check};
use super::zone::{Resolved, Zone};

/// The most lessons one series may create.
pub const MAX_LESSONS: usize = 200;
/// `every_weeks`: 1..=4, default 1.
pub const EVERY_WEEKS: (i64, i64, i64) = (1, 4, 1);
/// `duration_minutes`: 1..=1440.
pub const DURATION_MINUTES: (i64, i64) = (1, 1440);

/// A series as sent, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSpec {
    /// Each lesson's title, `{n}` replaced by its number.
    pub title: String,
    pub first_date: NaiveDate,
    /// The last date that may hold a lesson (inclusive).
    pub until: NaiveDate,
    /// `mon` … `sun`; a day named twice counts once.
    pub weekdays: Vec<String>,
    /// Every how many ISO weeks, counted from the week of `first_date`; `None` is 1.
    pub every_weeks: Option<i64>,
    /// Local wall-clock time, `HH:MM`.
    pub start_time: String,
    pub duration_minutes: i64,
    /// Dates that hold no lesson and take no number; a date that would hold none anyway is
    /// ignored.
    pub skip_dates: Vec<NaiveDate>,
}

/// One lesson of a planned series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLesson {
    /// 1 for the first lesson, counting only lessons held.
    pub number: u32,
    /// A valid [`Title`], trimmed.
    pub title: String,
    pub starts_at: DateTime<Utc>,
    /// `starts_at` plus the duration in elapsed time, even across a clock change.
    pub ends_at: DateTime<Utc>,
}

/// The lessons of a series in date order, and what had to be adjusted to place them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lessons: Vec<PlannedLesson>,
    /// One per lesson whose start time did not exist that day, each beginning with its date.
    pub warnings: Vec<String>,
}

/// Checks every field, then lays the lessons out in `zone`; all field errors come together.
pub fn plan(spec: &SeriesSpec, zone: Zone) -> Result<Plan, Invalid> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| errors.push(FieldError::new(field, message));
    // Checked here as well as per lesson so a series with no dates still hears about it.
    if let Err(message) = lesson_title(&spec.title, 1) {
        error("title", message);
    }
    if spec.until < spec.first_date {
        error("until", "must not be before first_date".into());
    }
    let weekdays = parse_weekdays(&spec.weekdays).unwrap_or_else(|message| {
        error("weekdays", message);
        [false; 7]
    });
    let (min, max, default) = EVERY_WEEKS;
    let every_weeks = spec.every_weeks.unwrap_or(default);
    if !(min..=max).contains(&every_weeks) {
        error("every_weeks", format!("must be between {min} and {max}"));
    }
    let start_time = parse_start_time(&spec.start_time).unwrap_or_else(|message| {
        error("start_time", message);
        NaiveTime::MIN
    });
    let (min, max) = DURATION_MINUTES;
    if !(min..=max).contains(&spec.duration_minutes) {
        error("duration_minutes", format!("must be between {min} and {max}"));
    }
    check(errors)?;
    lay_out(spec, zone, Recurrence { weekdays, every_weeks, start_time })
}

/// The validated parts of the rule that decide which dates hold a lesson, and when.
struct Recurrence {
    weekdays: [bool; 7],
    every_weeks: i64,
    start_time: NaiveTime,
}

fn lay_out(spec: &SeriesSpec, zone: Zone, rule: Recurrence) -> Result<Plan, Invalid> {
    let skip: BTreeSet<NaiveDate> = spec.skip_dates.iter().copied().collect();
    let first_week = spec.first_date.week(Weekday::Mon).first_day();
    let duration = TimeDelta::minutes(spec.duration_minutes);
    let (mut lessons, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let (mut skipped, mut title_ok) = (false, true);
    // Stops at the 201st lesson, so a far-off `until` costs no more than a short one: every
    // valid recurrence holds a lesson at least once in four weeks. (Not `iter_days`, which
    // never yields the calendar's last day.)
    let dates = std::iter::successors(Some(spec.first_date), |date| date.succ_opt());
    for date in dates.take_while(|date| *date <= spec.until) {
        let weeks = (date - first_week).num_days() / 7;
        if !rule.weekdays[date.weekday().num_days_from_monday() as usize] || weeks % rule.every_weeks != 0 {
            continue;
        }
        if skip.contains(&date) {
            skipped = true;
            continue;
        }
        if lessons.len() == MAX_LESSONS {
            let message = format!("the series would hold more than {MAX_LESSONS} lessons; end it sooner");
            errors.push(FieldError::new("until", message));
            break;
        }
        let number = lessons.len() as u32 + 1;
        let title = lesson_title(&spec.title, number).unwrap_or_else(|message| {
            if title_ok {
                errors.push(FieldError::new("title", message));
                title_ok = false;
            }
            String::new()
        });
        let instants = zone
            .resolve(date, rule.start_time)
            .and_then(|resolved| resolved.at.checked_add_signed(duration).map(|ends_at| (resolved, ends_at)));
        let Some((Resolved { at: starts_at, warning }, ends_at)) = instants else {
            errors.push(FieldError::new("first_date", "the series lies beyond the dates supported"));
            break;
        };
        warnings.extend(warning);
        lessons.push(PlannedLesson { number, title, starts_at, ends_at });
    }
    if lessons.is_empty() && errors.is_empty() {
        errors.push(if skipped {
            FieldError::new("skip_dates", "leave no date of the series to hold a lesson")
        } else {
            let every = if rule.every_weeks > 1 {
                format!(" every {} weeks", rule.every_weeks)
            } else {
                String::new()
            };
            FieldError::new(
                "weekdays",
                format!("no date from first_date to until falls on these weekdays{every}"),
            )
        });
    }
    check(errors)?;
    Ok(Plan { lessons, warnings })
}

/// The title with `{n}` numbered, checked as a [`Title`].
fn lesson_title(template: &str, number: u32) -> Result<String, String> {
    let title = template.replace("{n}", &number.to_string());
    match Title::parse(&title) {
        Ok(title) => Ok(title.into_inner()),
        Err(message) if template.contains("{n}") => Err(format!("{message} (as lesson {number}'s title)")),
        Err(message) => Err(message),
    }
}

/// The days named, by `num_days_from_monday`.
fn parse_weekdays(names: &[String]) -> Result<[bool; 7], String> {
    if names.is_empty() {
        return Err("must name at least one day".into());
    }
    let mut days = [false; 7];
    let mut unknown = Vec::new();
    for name in names {
        match parse_weekday(name) {
            Some(day) => days[day.num_days_from_monday() as usize] = true,
            None => unknown.push(format!("`{name}`")),
        }
    }
    match unknown.as_slice() {
        [] => Ok(days),
        [one] => Err(format!("{one} is not a day; use mon, tue, wed, thu, fri, sat or sun")),
        many => Err(format!("{} are not days; use mon, tue, wed, thu, fri, sat or sun", many.join(", "))),
    }
}

fn parse_weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// Exactly `HH:MM`, 00:00 to 23:59.
fn parse_start_time(raw: &str) -> Result<NaiveTime, String> {
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    raw.split_once(':')
        .and_then(|(hour, minute)| NaiveTime::from_hms_opt(two_digits(hour)?, two_digits(minute)?, 0))
        .ok_or_else(|| "must be a time of day as HH:MM, e.g. 09:15".into())
}

#[cfg(test)]
mod tests;

//! The series rules on real 2026 clock changes in Vienna and New York, with exact instants.

use super::*;

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap()
}

fn vienna() -> Zone {
    zone("Europe/Vienna")
}

/// The winter term's Tuesday lecture, as the API spec's example has it.
fn spec() -> SeriesSpec {
    SeriesSpec {
        title: "Lecture {n}".into(),
        first_date: date("2026-09-01"),
        until: date("2026-12-18"),
        weekdays: vec!["tue".into()],
        every_weeks: None,
        start_time: "09:15".into(),
        duration_minutes: 90,
        skip_dates: Vec::new(),
    }
}

fn between(first: &str, until: &str, weekdays: &[&str], start_time: &str) -> SeriesSpec {
    SeriesSpec {
        first_date: date(first),
        until: date(until),
        weekdays: weekdays.iter().map(|day| day.to_string()).collect(),
        start_time: start_time.into(),
        ..spec()
    }
}

fn starts(plan: &Plan) -> Vec<DateTime<Utc>> {
    plan.lessons.iter().map(|lesson| lesson.starts_at).collect()
}

/// The fields an invalid series is refused on, in order.
fn refused(spec: &SeriesSpec) -> Vec<String> {
    let Invalid(errors) = plan(spec, vienna()).unwrap_err();
    errors.into_iter().map(|error| error.field).collect()
}

#[test]
fn the_example_series_holds_every_tuesday_of_the_term() {
    let plan = plan(&spec(), vienna()).unwrap();
    assert_eq!(plan.lessons.len(), 16);
    let first = &plan.lessons[0];
    assert_eq!(
        *first,
        PlannedLesson {
            number: 1,
            title: "Lecture 1".into(),
            starts_at: utc("2026-09-01T07:15:00Z"),
            ends_at: utc("2026-09-01T08:45:00Z"),
        }
    );
    let last = &plan.lessons[15];
    assert_eq!((last.number, last.title.as_str()), (16, "Lecture 16"));
    assert_eq!(last.starts_at, utc("2026-12-15T08:15:00Z"));
    assert!(plan.warnings.is_empty());
}

#[test]
fn the_wall_clock_time_is_kept_across_both_changes_in_vienna() {
    let spring = plan(&between("2026-03-23", "2026-04-06", &["mon"], "09:15"), vienna()).unwrap();
    let expected = ["2026-03-23T08:15:00Z", "2026-03-30T07:15:00Z", "2026-04-06T07:15:00Z"];
    assert_eq!(starts(&spring), expected.map(utc));
    let autumn = plan(&between("2026-10-19", "2026-10-26", &["mon"], "09:15"), vienna()).unwrap();
    assert_eq!(starts(&autumn), ["2026-10-19T07:15:00Z", "2026-10-26T08:15:00Z"].map(utc));
}

#[test]
fn the_wall_clock_time_is_kept_across_both_changes_in_new_york() {
    let new_york = zone("America/New_York");
    let spring = plan(&between("2026-03-02", "2026-03-09", &["mon"], "09:15"), new_york).unwrap();
    assert_eq!(starts(&spring), ["2026-03-02T14:15:00Z", "2026-03-09T13:15:00Z"].map(utc));
    let autumn = plan(&between("2026-10-26", "2026-11-02", &["mon"], "09:15"), new_york).unwrap();
    assert_eq!(starts(&autumn), ["2026-10-26T13:15:00Z", "2026-11-02T14:15:00Z"].map(utc));
}

#[test]
fn a_start_that_does_not_exist_moves_forward_and_is_named_in_a_warning() {
    let plan = plan(&between("2026-03-22", "2026-04-05", &["sun"], "02:30"), vienna()).unwrap();
    let expected = ["2026-03-22T01:30:00Z", "2026-03-29T01:30:00Z", "2026-04-05T00:30:00Z"];
    assert_eq!(starts(&plan), expected.map(utc));
    assert_eq!(plan.lessons[1].ends_at, utc("2026-03-29T03:00:00Z"));
    assert_eq!(
        plan.warnings,
        ["2026-03-29: 02:30 does not exist in Europe/Vienna (the clocks go forward); moved to 03:30"]
    );

    let new_york = zone("America/New_York");
    let plan = super::plan(&between("2026-03-01", "2026-03-08", &["sun"], "02:15"), new_york).unwrap();
    assert_eq!(starts(&plan), ["2026-03-01T07:15:00Z", "2026-03-08T07:15:00Z"].map(utc));
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].starts_with("2026-03-08: 02:15 does not exist in America/New_York"));
}

#[test]
fn an_ambiguous_start_takes_the_earlier_instant_and_lasts_its_elapsed_duration() {
    let plan = plan(&between("2026-10-25", "2026-10-25", &["sun"], "02:30"), vienna()).unwrap();
    assert_eq!(plan.lessons[0].starts_at, utc("2026-10-25T00:30:00Z"));
    assert_eq!(plan.lessons[0].ends_at, utc("2026-10-25T02:00:00Z"));
    assert!(plan.warnings.is_empty());

    let new_york = zone("America/New_York");
    let plan = super::plan(&between("2026-11-01", "2026-11-01", &["sun"], "01:30"), new_york).unwrap();
    assert_eq!(plan.lessons[0].starts_at, utc("2026-11-01T05:30:00Z"));
    assert_eq!(plan.lessons[0].ends_at, utc("2026-11-01T07:00:00Z"));
}

#[test]
fn every_other_week_counts_iso_weeks_from_the_week_of_the_first_date() {
    // 2026-09-02 is a Wednesday; its week began on Monday 2026-08-31, which is too early.
    let series = SeriesSpec {
        every_weeks: Some(2),
        ..between("2026-09-02", "2026-09-28", &["mon", "wed", "mon"], "09:15")
    };
    let plan = plan(&series, vienna()).unwrap();
    let dates: Vec<String> =
        plan.lessons.iter().map(|lesson| lesson.starts_at.date_naive().to_string()).collect();
    assert_eq!(dates, ["2026-09-02", "2026-09-14", "2026-09-16", "2026-09-28"]);
}

#[test]
fn skipped_dates_take_no_number_and_until_is_inclusive() {
    let series = SeriesSpec {
        skip_dates: vec![date("2026-10-06"), date("2026-10-04"), date("2026-10-06")],
        ..between("2026-09-29", "2026-10-13", &["tue"], "09:15")
    };
    let plan = plan(&series, vienna()).unwrap();
    let numbered: Vec<(u32, &str, DateTime<Utc>)> =
        plan.lessons.iter().map(|l| (l.number, l.title.as_str(), l.starts_at)).collect();
    assert_eq!(
        numbered,
        [(1, "Lecture 1", utc("2026-09-29T07:15:00Z")), (2, "Lecture 2", utc("2026-10-13T07:15:00Z"))]
    );
}

#[test]
fn a_series_holds_at_most_200_lessons() {
    let daily = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let exactly = between("2026-01-01", "2026-07-19", &daily, "09:15");
    assert_eq!(plan(&exactly, vienna()).unwrap().lessons.len(), 200);
    let one_more = SeriesSpec { until: date("2026-07-20"), ..exactly.clone() };
    assert_eq!(refused(&one_more), ["until"]);
    // A skipped date is no lesson, so skipping one makes room for the 201st date.
    let skipping = SeriesSpec { skip_dates: vec![date("2026-03-01")], ..one_more };
    assert_eq!(plan(&skipping, vienna()).unwrap().lessons.len(), 200);
    // Stops counting at the 201st, however far off `until` is.
    let century = SeriesSpec { until: date("2126-12-31"), ..exactly };
    assert_eq!(refused(&century), ["until"]);
}

#[test]
fn the_dates_must_be_in_order_and_hold_a_lesson() {
    assert_eq!(refused(&between("2026-09-02", "2026-09-01", &["tue"], "09:15")), ["until"]);
    assert_eq!(refused(&between("2026-09-01", "2026-09-06", &["mon"], "09:15")), ["weekdays"]);
    let all_skipped = SeriesSpec {
        skip_dates: vec![date("2026-09-01")],
        ..between("2026-09-01", "2026-09-06", &["tue"], "09:15")
    };
    assert_eq!(refused(&all_skipped), ["skip_dates"]);
}

#[test]
fn weekdays_are_lowercase_three_letter_names() {
    assert_eq!(refused(&SeriesSpec { weekdays: Vec::new(), ..spec() }), ["weekdays"]);
    let Invalid(errors) =
        plan(&SeriesSpec { weekdays: vec!["tue".into(), "Mon".into()], ..spec() }, vienna()).unwrap_err();
    assert_eq!(
        errors,
        [FieldError::new("weekdays", "`Mon` is not a day; use mon, tue, wed, thu, fri, sat or sun")]
    );
    let two = SeriesSpec { weekdays: vec!["tu".into(), "sunday".into()], ..spec() };
    let Invalid(errors) = plan(&two, vienna()).unwrap_err();
    assert!(errors[0].message.starts_with("`tu`, `sunday` are not days"), "{errors:?}");
}

#[test]
fn duration_every_weeks_and_start_time_are_bounded() {
    for minutes in [1, 1440] {
        assert!(plan(&SeriesSpec { duration_minutes: minutes, ..spec() }, vienna()).is_ok());
    }
    for minutes in [0, 1441, -90] {
        assert_eq!(refused(&SeriesSpec { duration_minutes: minutes, ..spec() }), ["duration_minutes"]);
    }
    let whole_day = plan(&SeriesSpec { duration_minutes: 1440, ..spec() }, vienna()).unwrap();
    assert_eq!(whole_day.lessons[0].ends_at, utc("2026-09-02T07:15:00Z"));
    for weeks in [0, 5, -1] {
        assert_eq!(refused(&SeriesSpec { every_weeks: Some(weeks), ..spec() }), ["every_weeks"]);
    }
    assert!(plan(&SeriesSpec { every_weeks: Some(4), ..spec() }, vienna()).is_ok());
    for time in ["9:15", "24:00", "09:60", "09:15:00", "0915", "+9:15", ""] {
        assert_eq!(refused(&SeriesSpec { start_time: time.into(), ..spec() }), ["start_time"], "{time}");
    }
    assert!(plan(&SeriesSpec { start_time: "23:59".into(), ..spec() }, vienna()).is_ok());
}

#[test]
fn titles_are_numbered_and_must_stay_valid() {
    let trimmed = plan(&SeriesSpec { title: "  {n}. Vorlesung ".into(), ..spec() }, vienna()).unwrap();
    assert_eq!(trimmed.lessons[1].title, "2. Vorlesung");
    assert_eq!(refused(&SeriesSpec { title: "  ".into(), ..spec() }), ["title"]);
    // 199 characters and one digit fit; lesson 10's two digits do not, reported once.
    let long = SeriesSpec { title: format!("{}{{n}}", "x".repeat(199)), ..spec() };
    let Invalid(errors) = plan(&long, vienna()).unwrap_err();
    assert_eq!(
        errors,
        [FieldError::new("title", "must be at most 200 characters long (as lesson 10's title)")]
    );
}

#[test]
fn every_invalid_field_is_reported_at_once() {
    let series = SeriesSpec {
        title: String::new(),
        first_date: date("2026-09-02"),
        until: date("2026-09-01"),
        weekdays: Vec::new(),
        every_weeks: Some(0),
        start_time: "noon".into(),
        duration_minutes: 0,
        skip_dates: Vec::new(),
    };
    assert_eq!(
        refused(&series),
        ["title", "until", "weekdays", "every_weeks", "start_time", "duration_minutes"]
    );
}

#[test]
fn a_series_beyond_the_calendar_is_refused_not_a_panic() {
    let series = SeriesSpec {
        first_date: NaiveDate::MAX,
        until: NaiveDate::MAX,
        weekdays: vec![NaiveDate::MAX.weekday().to_string().to_lowercase()],
        start_time: "23:59".into(),
        ..spec()
    };
    assert_eq!(refused(&series), ["first_date"]);
}

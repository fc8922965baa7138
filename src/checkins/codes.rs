//! This instance's index of the codes in force: for every window open now (or opening
//! soon), its current code and the previous one, so a submitted code leads straight to the
//! windows it could belong to without reading the student's enrolments first.
//!
//! The index is a hint, never a verdict. A check-in it finds a window for is stored by an
//! insert that confirms everything the full path reads — the window still open, the student
//! enrolled in its course, a student account that is not disabled and not locked out by the
//! wrong-code throttle — and stores nothing when any of that fails; the attempt is then
//! settled the full way. So the index needs no guarantee of being complete or current: a
//! window it lacks (opened a moment ago on another instance) or still holds (closed a
//! moment ago) costs speed, not correctness — with one exception too rare to pay a read
//! for: if a window the index lacks has the submitted code as its current code and another
//! window of the same student has it as its previous one (two of one student's codes
//! colliding, about once in 10^code_length), the attempt is stored for the latter, where
//! the full path would prefer the former. It is reloaded from the database when the
//! change-event feed announces a window's change, after the feed was down, and at least
//! every [`REFRESH`] of the clock (automatic windows open by the clock, without an event).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::queries::OpenWindow;

/// The longest the index goes without a reload, in the clock's time.
pub const REFRESH: Duration = Duration::seconds(15);

/// How far ahead of its load the index holds windows that have not opened yet, so
/// automatic windows opening before the next reload are in it. More than [`REFRESH`].
pub const HORIZON: Duration = Duration::seconds(60);

#[derive(Default)]
pub struct OpenCodes {
    index: Mutex<Index>,
    /// A window changed since the last load (or events may have been missed).
    stale: AtomicBool,
}

#[derive(Default)]
struct Index {
    /// The clock's time the windows were read for; `None` before the first load.
    loaded_for: Option<DateTime<Utc>>,
    entries: Vec<Entry>,
    /// Code → the entries (indices into `entries`) for which it is the current or the
    /// previous step's code.
    by_code: HashMap<String, Vec<usize>>,
}

struct Entry {
    open: Arc<OpenWindow>,
    /// The step `codes` were made for, while the window is open.
    step: Option<i64>,
    /// The codes of `step` and of the step before it (none before the first).
    codes: Vec<String>,
}

impl OpenCodes {
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // Every change leaves the index consistent, so a poisoned lock is still usable.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A window opened, closed or was planned anew somewhere, or events may have been
    /// missed: the next batch reloads the index.
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Whether the index must be read again before it serves attempts made at `now`:
    /// invalidated, never loaded, or loaded for a time more than [`REFRESH`] away.
    /// Clears the invalidation, so one made while the reload reads counts for the next.
    pub fn take_reload(&self, now: DateTime<Utc>) -> bool {
        let stale = self.stale.swap(false, Ordering::SeqCst);
        stale
            || match self.index().loaded_for {
                None => true,
                Some(loaded) => now < loaded || now >= loaded + REFRESH,
            }
    }

    /// Replaces the index with these windows, read for `now`: the unfinished ones that
    /// open by `now + HORIZON` and close after `now`. A window it held already keeps the
    /// codes made for it (a window's secret and schedule never change), so a reload costs
    /// HMACs only for the windows that are new.
    pub fn reload(&self, windows: Vec<OpenWindow>, now: DateTime<Utc>) {
        let mut index = self.index();
        let mut known: HashMap<i64, Entry> =
            index.entries.drain(..).map(|entry| (entry.open.window.id, entry)).collect();
        index.loaded_for = Some(now);
        index.by_code.clear();
        let Index { entries, by_code, .. } = &mut *index;
        for open in windows {
            let entry = match known.remove(&open.window.id) {
                Some(entry) => entry,
                None => Entry { open: Arc::new(open), step: None, codes: Vec::new() },
            };
            for code in &entry.codes {
                by_code.entry(code.clone()).or_default().push(entries.len());
            }
            entries.push(entry);
        }
    }

    /// For each code, the windows for which it is the current or the previous step's code
    /// at `now`, by window id (the order the full path judges a student's windows in).
    pub fn candidates<'c>(
        &self,
        codes: impl IntoIterator<Item = &'c str>,
        now: DateTime<Utc>,
    ) -> Vec<Vec<Arc<OpenWindow>>> {
        let mut index = self.index();
        index.advance(now);
        codes
            .into_iter()
            .map(|code| {
                let mut found: Vec<Arc<OpenWindow>> = index
                    .by_code
                    .get(code)
                    .map(|entries| entries.iter().map(|&i| index.entries[i].open.clone()).collect())
                    .unwrap_or_default();
                found.sort_by_key(|open| open.window.id);
                found
            })
            .collect()
    }
}

impl Index {
    /// Brings every entry's codes to the step in force at `now`: one HMAC per window and
    /// step, made by the first batch that needs it.
    fn advance(&mut self, now: DateTime<Utc>) {
        let Self { entries, by_code, .. } = self;
        for (i, entry) in entries.iter_mut().enumerate() {
            let window = &entry.open.window;
            let step = window.is_open(now).then(|| window.schedule().step_at(now));
            if step == entry.step {
                continue;
            }
            // The code of the step that was current, if it is the previous one now.
            let kept = entry.step.filter(|s| step == Some(s + 1)).and(entry.codes.last().cloned());
            for code in entry.codes.drain(..) {
                if let Some(list) = by_code.get_mut(&code) {
                    list.retain(|&j| j != i);
                    if list.is_empty() {
                        by_code.remove(&code);
                    }
                }
            }
            entry.step = step;
            if let Some(step) = step {
                let schedule = window.schedule();
                let previous = (step > 0).then(|| kept.unwrap_or_else(|| schedule.code(step - 1)));
                entry.codes = previous.into_iter().chain([schedule.code(step)]).collect();
                entry.codes.dedup();
                for code in &entry.codes {
                    by_code.entry(code.clone()).or_default().push(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::window::Window;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn window(id: i64, opened: i64, closes: i64) -> OpenWindow {
        OpenWindow {
            window: Window {
                id,
                lesson_id: id * 10,
                secret: vec![id as u8; 32],
                opened_at: at(opened),
                closes_at: at(closes),
                closed_at: None,
                rotation_seconds: 10,
                code_length: 6,
                late_after_seconds: None,
            },
            course_id: id,
        }
    }

    /// The ids of the windows `code` is found for at `now`.
    fn found(codes: &OpenCodes, code: &str, now: DateTime<Utc>) -> Vec<i64> {
        codes.candidates([code], now).remove(0).iter().map(|o| o.window.id).collect()
    }

    #[test]
    fn a_code_finds_its_window_in_its_step_and_the_next_only() {
        let codes = OpenCodes::new();
        let (first, second) = (window(1, 0, 600), window(2, 0, 600));
        let (code, other) = (first.window.schedule().code(3), second.window.schedule().code(3));
        codes.reload(vec![first, second], at(0));
        assert_eq!(found(&codes, &code, at(35)), vec![1], "the current step's code");
        assert_eq!(found(&codes, &other, at(35)), vec![2]);
        assert_eq!(found(&codes, &code, at(41)), vec![1], "the previous step's code");
        assert!(found(&codes, &code, at(50)).is_empty(), "two steps later");
        assert!(found(&codes, &code, at(29)).is_empty(), "before its step (the clock went back)");
    }

    #[test]
    fn windows_count_only_while_open() {
        let codes = OpenCodes::new();
        let planned = window(1, 100, 200);
        let (first, last) = (planned.window.schedule().code(0), planned.window.schedule().code(9));
        codes.reload(vec![planned], at(0));
        assert!(found(&codes, &first, at(99)).is_empty(), "not open yet");
        assert_eq!(found(&codes, &first, at(100)), vec![1], "opened by the clock");
        assert_eq!(found(&codes, &last, at(199)), vec![1]);
        assert!(found(&codes, &last, at(200)).is_empty(), "closed by the clock");
    }

    #[test]
    fn windows_sharing_a_code_are_found_by_id_and_a_reload_replaces_them() {
        let codes = OpenCodes::new();
        // Windows with the same secret and opening share their codes.
        let mut twin = window(1, 0, 600);
        twin.window.id = 9;
        let code = twin.window.schedule().code(0);
        codes.reload(vec![twin, window(1, 0, 600)], at(0));
        assert_eq!(found(&codes, &code, at(5)), vec![1, 9]);
        codes.reload(vec![window(2, 0, 600)], at(5));
        assert!(found(&codes, &code, at(5)).is_empty(), "the old windows are gone");
    }

    #[test]
    fn a_reload_keeps_the_codes_of_the_windows_it_still_holds() {
        let codes = OpenCodes::new();
        let (first, second) = (window(1, 0, 600), window(2, 0, 600));
        let (code, other) = (first.window.schedule().code(0), second.window.schedule().code(0));
        codes.reload(vec![first], at(0));
        assert_eq!(found(&codes, &code, at(5)), vec![1]);
        // Reloaded with a second window: both are found, the first by its kept codes.
        codes.reload(vec![window(2, 0, 600), window(1, 0, 600)], at(5));
        assert_eq!(codes.index().entries.iter().filter(|e| e.step.is_some()).count(), 1, "kept");
        assert_eq!(found(&codes, &code, at(6)), vec![1]);
        assert_eq!(found(&codes, &other, at(6)), vec![2]);
        // A window closed by the clock after the reload is dropped from the codes all the same.
        assert!(found(&codes, &code, at(600)).is_empty());
    }

    #[test]
    fn a_reload_is_due_when_invalidated_or_when_the_clock_moved_on() {
        let codes = OpenCodes::new();
        assert!(codes.take_reload(at(0)), "never loaded");
        codes.reload(Vec::new(), at(0));
        assert!(!codes.take_reload(at(14)));
        assert!(codes.take_reload(at(15)), "REFRESH later");
        assert!(codes.take_reload(at(-1)), "the clock went back");
        codes.invalidate();
        assert!(codes.take_reload(at(1)), "a window changed");
        assert!(!codes.take_reload(at(1)), "once");
    }
}

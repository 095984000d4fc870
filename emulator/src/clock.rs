//! The emulator's clock: real time that a test can freeze and step forward, so it can compare
//! task progress without racing the wall clock. Every time the emulator shows (task start
//! times, progress, the 31-day window) comes from here, at millisecond precision.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// Real time, shifted by every `advance`, optionally frozen.
#[derive(Debug)]
pub struct Clock {
    inner: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    /// Added to the wall clock while running.
    offset: TimeDelta,
    /// The instant shown while frozen.
    frozen: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock showing real time, frozen at once if `frozen`.
    pub fn new(frozen: bool) -> Clock {
        let clock = Clock {
            inner: Mutex::new(ClockState {
                offset: TimeDelta::zero(),
                frozen: None,
            }),
        };
        clock.set_frozen(frozen);
        clock
    }

    /// The emulator's now, truncated to milliseconds.
    pub fn now(&self) -> DateTime<Utc> {
        let state = self.inner.lock().expect("clock lock");
        state.now()
    }

    /// Whether the clock is frozen.
    pub fn is_frozen(&self) -> bool {
        self.inner.lock().expect("clock lock").frozen.is_some()
    }

    /// Freezes the clock at its current instant, or lets it run on from the frozen instant.
    pub fn set_frozen(&self, frozen: bool) {
        let mut state = self.inner.lock().expect("clock lock");
        match (frozen, state.frozen) {
            (true, None) => state.frozen = Some(state.now()),
            (false, Some(at)) => {
                state.offset = at - Utc::now();
                state.frozen = None;
            }
            _ => {}
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: TimeDelta) {
        let mut state = self.inner.lock().expect("clock lock");
        match state.frozen.as_mut() {
            Some(at) => *at += by,
            None => state.offset += by,
        }
    }
}

impl ClockState {
    fn now(&self) -> DateTime<Utc> {
        let now = self.frozen.unwrap_or_else(|| Utc::now() + self.offset);
        truncate_to_millis(now)
    }
}

/// Drops the sub-millisecond part: the API shows milliseconds, and a task's start time must
/// compare equal to what a client read back.
pub fn truncate_to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).expect("in chrono's range")
}

/// The API's timestamp format: ISO-8601 UTC with milliseconds, `2026-11-20T08:15:30.123Z`.
pub fn format_timestamp(time: DateTime<Utc>) -> String {
    // Not `format("%Y-...")`: that parses the format string on every call, and a page
    // formats 200 of these.
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_only_moves_when_advanced() {
        let clock = Clock::new(true);
        let t0 = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), t0);
        clock.advance(TimeDelta::milliseconds(1500));
        assert_eq!(clock.now(), t0 + TimeDelta::milliseconds(1500));
    }

    #[test]
    fn releasing_the_clock_continues_from_the_frozen_instant() {
        let clock = Clock::new(true);
        clock.advance(TimeDelta::days(2));
        let frozen_at = clock.now();
        clock.set_frozen(false);
        let running = clock.now();
        assert!(running >= frozen_at);
        assert!(running - frozen_at < TimeDelta::seconds(5));
        assert!(!clock.is_frozen());
    }

    #[test]
    fn running_clock_follows_real_time_plus_advances() {
        let clock = Clock::new(false);
        clock.advance(TimeDelta::hours(1));
        let delta = clock.now() - Utc::now();
        assert!(delta > TimeDelta::minutes(59) && delta <= TimeDelta::hours(1));
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-20T08:15:30.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format_timestamp(truncate_to_millis(t)),
            "2026-11-20T08:15:30.123Z"
        );
        let whole = DateTime::parse_from_rfc3339("2026-11-20T08:15:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_timestamp(whole), "2026-11-20T08:15:30.000Z");
    }
}

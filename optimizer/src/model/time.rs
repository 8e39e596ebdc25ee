//! Time on one clock. A [`Time`] is an instant in seconds since an epoch the caller chooses (the
//! dispatcher uses Unix seconds, benchmarks their own zero); a [`Seconds`] is a duration. Both are
//! finite `f64`s, because benchmark travel times are unrounded, and both are totally ordered
//! because NaN cannot get in.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::error::finite;

/// An instant, in seconds on the plan's clock.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Time(f64);

/// A duration in seconds; may be negative only when it is the difference of two instants.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds(f64);

/// An inclusive interval `[start, end]` of instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWindow", into = "RawWindow")]
pub struct TimeWindow {
    start: Time,
    end: Time,
}

impl Time {
    /// The clock's zero.
    pub const ZERO: Time = Time(0.0);
    /// A time later than any plan reaches (about 31 million years): the end of an open window.
    pub const NEVER: Time = Time(1e15);

    /// An instant `secs` seconds after the epoch.
    ///
    /// # Errors
    /// [`ModelError::NotFinite`] for NaN or infinity.
    pub fn from_secs(secs: f64) -> Result<Self, ModelError> {
        finite("time", secs).map(|s| Time(s.min(Self::NEVER.0)))
    }

    /// Seconds since the epoch.
    pub const fn secs(self) -> f64 {
        self.0
    }

    /// Whether this is the open end [`Time::NEVER`].
    pub fn is_never(self) -> bool {
        self.0 >= Self::NEVER.0
    }

    /// The later of two instants.
    #[must_use]
    pub fn max(self, other: Time) -> Time {
        if other.0 > self.0 { other } else { self }
    }

    /// The earlier of two instants.
    #[must_use]
    pub fn min(self, other: Time) -> Time {
        if other.0 < self.0 { other } else { self }
    }

    /// The signed duration from `earlier` to `self`.
    pub fn since(self, earlier: Time) -> Seconds {
        Seconds(self.0 - earlier.0)
    }
}

impl Seconds {
    /// No time at all.
    pub const ZERO: Seconds = Seconds(0.0);

    /// A duration that must not be negative (service times, horizons, budgets).
    ///
    /// # Errors
    /// [`ModelError::NotFinite`] or [`ModelError::Negative`].
    pub fn new(secs: f64) -> Result<Self, ModelError> {
        let secs = finite("duration", secs)?;
        if secs < 0.0 {
            return Err(ModelError::Negative {
                what: "duration",
                value: secs,
            });
        }
        Ok(Seconds(secs))
    }

    /// The duration in seconds.
    pub const fn secs(self) -> f64 {
        self.0
    }
}

impl TimeWindow {
    /// A window that is always open.
    pub const ALWAYS: TimeWindow = TimeWindow {
        start: Time::ZERO,
        end: Time::NEVER,
    };

    /// The window `[start, end]`.
    ///
    /// # Errors
    /// [`ModelError::EmptyWindow`] when `end < start`.
    pub fn new(start: Time, end: Time) -> Result<Self, ModelError> {
        if end.0 < start.0 {
            return Err(ModelError::EmptyWindow {
                start: start.0,
                end: end.0,
            });
        }
        Ok(TimeWindow { start, end })
    }

    /// The window from `start` that never closes.
    pub fn from(start: Time) -> Self {
        TimeWindow {
            start,
            end: Time::NEVER.max(start),
        }
    }

    /// Opening instant.
    pub const fn start(self) -> Time {
        self.start
    }

    /// Closing instant ([`Time::NEVER`] when open-ended).
    pub const fn end(self) -> Time {
        self.end
    }

    /// Whether `t` lies inside the window, ends included.
    pub fn contains(self, t: Time) -> bool {
        self.start.0 <= t.0 && t.0 <= self.end.0
    }
}

impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl Eq for Seconds {}
impl PartialOrd for Seconds {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Seconds {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Add<Seconds> for Time {
    type Output = Time;
    fn add(self, rhs: Seconds) -> Time {
        Time((self.0 + rhs.0).min(Time::NEVER.0))
    }
}
impl Sub<Seconds> for Time {
    type Output = Time;
    fn sub(self, rhs: Seconds) -> Time {
        Time(self.0 - rhs.0)
    }
}
impl Sub for Time {
    type Output = Seconds;
    fn sub(self, rhs: Time) -> Seconds {
        self.since(rhs)
    }
}
impl Add for Seconds {
    type Output = Seconds;
    fn add(self, rhs: Seconds) -> Seconds {
        Seconds(self.0 + rhs.0)
    }
}

impl TryFrom<f64> for Time {
    type Error = ModelError;
    fn try_from(v: f64) -> Result<Self, ModelError> {
        Time::from_secs(v)
    }
}
impl From<Time> for f64 {
    fn from(t: Time) -> f64 {
        t.0
    }
}
impl TryFrom<f64> for Seconds {
    type Error = ModelError;
    fn try_from(v: f64) -> Result<Self, ModelError> {
        Seconds::new(v)
    }
}
impl From<Seconds> for f64 {
    fn from(s: Seconds) -> f64 {
        s.0
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            f.write_str("never")
        } else {
            write!(f, "t{}", self.0)
        }
    }
}
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
impl fmt::Debug for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[derive(Serialize, Deserialize)]
struct RawWindow {
    start: Time,
    end: Time,
}
impl TryFrom<RawWindow> for TimeWindow {
    type Error = ModelError;
    fn try_from(raw: RawWindow) -> Result<Self, ModelError> {
        TimeWindow::new(raw.start, raw.end)
    }
}
impl From<TimeWindow> for RawWindow {
    fn from(w: TimeWindow) -> Self {
        RawWindow {
            start: w.start,
            end: w.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nan_and_infinite_times_are_rejected() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                Time::from_secs(bad),
                Err(ModelError::NotFinite { .. })
            ));
            assert!(Seconds::new(bad).is_err());
        }
    }

    #[test]
    fn negative_durations_are_rejected() {
        assert!(matches!(
            Seconds::new(-1.0),
            Err(ModelError::Negative { .. })
        ));
    }

    #[test]
    fn a_window_ending_before_it_starts_is_rejected() {
        let a = Time::from_secs(10.0).unwrap();
        let b = Time::from_secs(5.0).unwrap();
        assert!(matches!(
            TimeWindow::new(a, b),
            Err(ModelError::EmptyWindow { .. })
        ));
        assert!(
            TimeWindow::new(b, a)
                .unwrap()
                .contains(Time::from_secs(7.5).unwrap())
        );
    }

    #[test]
    fn windows_deserialise_through_the_constructor() {
        assert!(serde_json::from_str::<TimeWindow>(r#"{"start":5,"end":1}"#).is_err());
        let w: TimeWindow = serde_json::from_str(r#"{"start":1,"end":5}"#).unwrap();
        assert_eq!(w.end().secs(), 5.0);
    }

    proptest! {
        #[test]
        fn any_window_with_end_before_start_is_rejected(start in -1e9f64..1e9, gap in 1e-6f64..1e9) {
            let s = Time::from_secs(start).unwrap();
            let e = Time::from_secs(start - gap).unwrap();
            prop_assert!(TimeWindow::new(s, e).is_err());
        }

        #[test]
        fn adding_a_duration_never_leaves_the_clock(t in -1e12f64..1e12, d in 0f64..1e16) {
            let sum = Time::from_secs(t).unwrap() + Seconds::new(d).unwrap();
            prop_assert!(sum.secs().is_finite());
            prop_assert!(sum <= Time::NEVER);
        }
    }
}

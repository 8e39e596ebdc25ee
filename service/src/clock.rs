//! The one clock both services read. Production reads the system clock; `dispatcher demo` and
//! the city simulation run a scaled clock (simulated time passing `speedup` times faster than
//! wall time from a chosen start), and tests may fix it. Every part that asks "what time is it"
//! (the dispatcher's commands, the planner, the tracker's validation) takes the same clock, so
//! they agree under a speedup.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

#[derive(Clone, Copy, Debug)]
enum Kind {
    System,
    Scaled {
        wall: Instant,
        start: OffsetDateTime,
        speedup: f64,
    },
    Warped {
        epoch: OffsetDateTime,
        speedup: f64,
    },
    Function(fn() -> OffsetDateTime),
}

/// A source of the current time. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Kind);

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Kind::System)
    }

    /// Simulated time: `start` now, then `speedup` simulated seconds per wall second (values
    /// below 0.01 or not finite become 1).
    pub fn scaled(start: OffsetDateTime, speedup: f64) -> Clock {
        let speedup = if speedup.is_finite() && speedup >= 0.01 {
            speedup
        } else {
            1.0
        };
        Clock(Kind::Scaled {
            wall: Instant::now(),
            start,
            speedup,
        })
    }

    /// Simulated time as a function of the system clock: `epoch + (system now - epoch) *
    /// speedup` (speedups as in [`Clock::scaled`]). Unlike [`Clock::scaled`], every process
    /// given the same epoch and speedup reads the same time, so a service restarted in the
    /// middle of a simulated day (`dispatcher serve` with `CLOCK_EPOCH` and `CLOCK_SPEEDUP`)
    /// carries on where it was and agrees with the simulation driving it.
    pub fn warped(epoch: OffsetDateTime, speedup: f64) -> Clock {
        let speedup = if speedup.is_finite() && speedup >= 0.01 {
            speedup
        } else {
            1.0
        };
        Clock(Kind::Warped { epoch, speedup })
    }

    /// A clock that asks `f` (tests).
    pub fn from_fn(f: fn() -> OffsetDateTime) -> Clock {
        Clock(Kind::Function(f))
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        match self.0 {
            Kind::System => OffsetDateTime::now_utc(),
            Kind::Scaled {
                wall,
                start,
                speedup,
            } => start + wall.elapsed().mul_f64(speedup),
            Kind::Warped { epoch, speedup } => {
                epoch + (OffsetDateTime::now_utc() - epoch) * speedup
            }
            Kind::Function(f) => f(),
        }
    }

    /// Simulated seconds per wall second (1 unless scaled).
    pub fn speedup(&self) -> f64 {
        match self.0 {
            Kind::Scaled { speedup, .. } | Kind::Warped { speedup, .. } => speedup,
            _ => 1.0,
        }
    }

    /// How long `simulated` lasts on the wall clock.
    pub fn wall(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.speedup())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_from_its_start() {
        let start = time::macros::datetime!(2026-12-01 11:00 UTC);
        let clock = Clock::scaled(start, 60.0);
        std::thread::sleep(Duration::from_millis(50));
        let passed = clock.now() - start;
        assert!(passed >= time::Duration::seconds(3), "{passed}");
        assert!(passed < time::Duration::seconds(30), "{passed}");
        assert_eq!(clock.wall(Duration::from_secs(60)), Duration::from_secs(1));
    }

    #[test]
    fn warped_clocks_with_one_epoch_agree_and_run_faster() {
        let epoch = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let (a, b) = (Clock::warped(epoch, 10.0), Clock::warped(epoch, 10.0));
        let (ta, tb) = (a.now(), b.now());
        assert!((ta - tb).abs() < time::Duration::seconds(1));
        // A minute of wall time since the epoch is ten simulated minutes.
        let ahead = ta - epoch;
        assert!(
            ahead > time::Duration::minutes(9) && ahead < time::Duration::minutes(11),
            "{ahead}"
        );
        assert_eq!(a.wall(Duration::from_secs(10)), Duration::from_secs(1));
        // At 1 it is the system clock.
        let one = Clock::warped(epoch, 1.0).now() - OffsetDateTime::now_utc();
        assert!(one.abs() < time::Duration::seconds(1));
    }

    #[test]
    fn the_system_clock_is_now() {
        let d = Clock::system().now() - OffsetDateTime::now_utc();
        assert!(d.abs() < time::Duration::seconds(1));
    }
}

//! The checks a fix must pass. Stateless ones ([`check_fix`]) look at the fix and the clock;
//! [`is_impossible_jump`] compares it with the courier's latest position and vehicle.

use std::sync::Arc;

use optimizer::model::{Coordinates, CourierId, VehicleKind};
use time::OffsetDateTime;

use crate::config::TrackerConfig;
use crate::metric::reason;
use crate::position::{FixInput, Position, Source};

/// Why a fix was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// NaN, infinite or out-of-range coordinates.
    OutOfRange,
    /// Exactly (0, 0).
    NullIsland,
    /// Too far in the future.
    Future,
    /// Older than the accepted age.
    TooOld,
    /// Accuracy radius worse than the threshold.
    PoorAccuracy,
    /// Faster than the vehicle can move.
    ImpossibleJump,
    /// An optional field present but absurd (negative accuracy, NaN speed, ...).
    Malformed,
}

impl Rejection {
    /// The metric label and the text sent to clients.
    pub const fn reason(self) -> &'static str {
        match self {
            Rejection::OutOfRange => reason::OUT_OF_RANGE,
            Rejection::NullIsland => reason::NULL_ISLAND,
            Rejection::Future => reason::FUTURE,
            Rejection::TooOld => reason::TOO_OLD,
            Rejection::PoorAccuracy => reason::POOR_ACCURACY,
            Rejection::ImpossibleJump => reason::IMPOSSIBLE_JUMP,
            Rejection::Malformed => reason::MALFORMED,
        }
    }

    /// Whether the request itself is wrong (answered 4xx for a single fix): unreadable
    /// coordinates or absurd optional fields. A well-formed fix we do not keep (too old, too far
    /// ahead, (0, 0), poor accuracy, a jump) is answered 200 and counted as rejected, because
    /// phone apps resend their oldest buffered fix until it gets a 2xx: a 4xx would block them
    /// for good.
    pub const fn is_bad_input(self) -> bool {
        matches!(self, Rejection::OutOfRange | Rejection::Malformed)
    }

    /// A human sentence for error bodies.
    pub const fn detail(self) -> &'static str {
        match self {
            Rejection::OutOfRange => "latitude must be within ±90 and longitude within ±180",
            Rejection::NullIsland => "(0, 0) is not a position: the phone has no fix",
            Rejection::Future => "the fix time is too far in the future; check the phone clock",
            Rejection::TooOld => "the fix time is older than the tracker accepts",
            Rejection::PoorAccuracy => "the fix is less accurate than the tracker accepts",
            Rejection::ImpossibleJump => {
                "the fix is farther from the last one than the vehicle can move"
            }
            Rejection::Malformed => {
                "an optional field (speed, heading, altitude, accuracy, battery) is not a sane number"
            }
        }
    }
}

fn optional(
    value: Option<f64>,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f32>, Rejection> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && range.contains(&v) => Ok(Some(v as f32)),
        Some(_) => Err(Rejection::Malformed),
    }
}

/// Checks a fix on its own and turns it into a [`Position`] of `courier_id`.
///
/// # Errors
/// The first [`Rejection`] that applies, in the order: coordinates, (0, 0), time, optional
/// fields, accuracy.
pub fn check_fix(
    input: &FixInput,
    courier_id: &CourierId,
    device_id: &Arc<str>,
    source: Source,
    now: OffsetDateTime,
    config: &TrackerConfig,
) -> Result<Position, Rejection> {
    let coords = Coordinates::parse(input.lat, input.lon).map_err(|_| Rejection::OutOfRange)?;
    if input.lat == 0.0 && input.lon == 0.0 {
        return Err(Rejection::NullIsland);
    }
    let fix_time = input.fix_time.unwrap_or(now);
    if fix_time > now + config.max_future {
        return Err(Rejection::Future);
    }
    if fix_time < now - config.max_age {
        return Err(Rejection::TooOld);
    }
    let speed_mps = optional(input.speed_mps, 0.0..=1_000.0)?;
    // Some apps send -1 for "unknown" heading; a negative heading is treated as absent.
    let heading_deg = match input.heading_deg {
        Some(h) if h.is_finite() && h < 0.0 => None,
        h => optional(h, 0.0..=360.0)?,
    };
    let altitude_m = optional(input.altitude_m, -12_000.0..=100_000.0)?;
    let accuracy_m = optional(input.accuracy_m, 0.0..=1.0e7)?;
    let battery_pct = optional(input.battery_pct, 0.0..=100.0)?;
    if let Some(acc) = accuracy_m
        && f64::from(acc) > config.max_accuracy_m
    {
        return Err(Rejection::PoorAccuracy);
    }
    Ok(Position {
        courier_id: courier_id.clone(),
        device_id: device_id.clone(),
        fix_time,
        coords,
        speed_mps,
        heading_deg,
        altitude_m,
        accuracy_m,
        battery_pct,
        source,
    })
}

/// A reference fix to judge jumps from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// Where.
    pub coords: Coordinates,
    /// When.
    pub at: OffsetDateTime,
    /// Its accuracy radius, metres.
    pub accuracy_m: Option<f32>,
}

/// Whether going from `from` to `to` needs more speed than `vehicle` has. The two accuracy
/// radii are granted as slack and the time between is at least one second, so jitter around a
/// standing courier never counts as a jump.
pub fn is_impossible_jump(from: &Anchor, to: &Position, vehicle: VehicleKind) -> bool {
    let distance_m = from.coords.haversine_m(to.coords);
    let slack_m =
        f64::from(from.accuracy_m.unwrap_or(0.0)) + f64::from(to.accuracy_m.unwrap_or(0.0));
    let seconds = (to.fix_time - from.at).abs().as_seconds_f64().max(1.0);
    (distance_m - slack_m).max(0.0) / seconds > vehicle.max_plausible_speed_mps()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-21 12:00 UTC)
    }

    fn fix(lat: f64, lon: f64) -> FixInput {
        FixInput {
            lat,
            lon,
            fix_time: Some(now()),
            ..FixInput::default()
        }
    }

    fn check(input: &FixInput) -> Result<Position, Rejection> {
        let id = CourierId::parse("c1").unwrap();
        check_fix(
            input,
            &id,
            &Arc::from("d1"),
            Source::Osmand,
            now(),
            &TrackerConfig::default(),
        )
    }

    #[test]
    fn nan_and_out_of_range_coordinates_are_rejected() {
        for (lat, lon) in [
            (f64::NAN, 1.0),
            (1.0, f64::INFINITY),
            (91.0, 1.0),
            (1.0, -181.0),
        ] {
            assert_eq!(
                check(&fix(lat, lon)),
                Err(Rejection::OutOfRange),
                "{lat},{lon}"
            );
        }
    }

    #[test]
    fn null_island_is_rejected() {
        assert_eq!(check(&fix(0.0, 0.0)), Err(Rejection::NullIsland));
        assert!(check(&fix(0.0, 0.5)).is_ok());
    }

    #[test]
    fn fixes_too_far_ahead_or_too_old_are_rejected() {
        let mut f = fix(52.5, 13.4);
        f.fix_time = Some(now() + Duration::minutes(11));
        assert_eq!(check(&f), Err(Rejection::Future));
        f.fix_time = Some(now() + Duration::minutes(9));
        assert!(check(&f).is_ok());
        f.fix_time = Some(now() - Duration::days(8));
        assert_eq!(check(&f), Err(Rejection::TooOld));
        for r in [Rejection::Future, Rejection::TooOld, Rejection::NullIsland] {
            assert!(
                !r.is_bad_input(),
                "{r:?} is acknowledged so the phone moves on"
            );
        }
    }

    #[test]
    fn poor_accuracy_is_discarded_not_refused() {
        let mut f = fix(52.5, 13.4);
        f.accuracy_m = Some(500.0);
        assert_eq!(check(&f), Err(Rejection::PoorAccuracy));
        assert!(!Rejection::PoorAccuracy.is_bad_input());
        assert!(Rejection::Malformed.is_bad_input());
        f.accuracy_m = Some(-3.0);
        assert_eq!(check(&f), Err(Rejection::Malformed));
    }

    #[test]
    fn a_missing_fix_time_means_now_and_negative_heading_means_unknown() {
        let mut f = fix(52.5, 13.4);
        f.fix_time = None;
        f.heading_deg = Some(-1.0);
        let p = check(&f).unwrap();
        assert_eq!(p.fix_time, now());
        assert_eq!(p.heading_deg, None);
    }

    #[test]
    fn a_bike_cannot_cross_a_city_in_a_minute() {
        let anchor = Anchor {
            coords: Coordinates::parse(52.50, 13.40).unwrap(),
            at: now() - Duration::minutes(1),
            accuracy_m: Some(10.0),
        };
        let far = check(&fix(52.55, 13.40)).unwrap(); // 5.5 km in 60 s: 93 m/s
        assert!(is_impossible_jump(&anchor, &far, VehicleKind::Bike));
        assert!(is_impossible_jump(&anchor, &far, VehicleKind::Car));
        let near = check(&fix(52.503, 13.40)).unwrap(); // 333 m in 60 s: 5.5 m/s
        assert!(!is_impossible_jump(&anchor, &near, VehicleKind::Bike));
        // 1.1 km in 60 s is 18 m/s: too fast for a bike, fine for a scooter.
        let brisk = check(&fix(52.51, 13.40)).unwrap();
        assert!(is_impossible_jump(&anchor, &brisk, VehicleKind::Bike));
        assert!(!is_impossible_jump(&anchor, &brisk, VehicleKind::Scooter));
    }
}

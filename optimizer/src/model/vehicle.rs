//! What a courier rides: the kind of vehicle, how fast it goes and how much it carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::error::finite;

/// The kinds of vehicle in the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleKind {
    /// Bicycle or e-bike.
    Bike,
    /// Moped or motor scooter.
    Scooter,
    /// Car.
    Car,
}

/// How many units of orders a vehicle holds; always at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Capacity(u32);

/// How many capacity units an order takes; always at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Size(u32);

/// A courier's vehicle: its kind, its average door-to-door speed and its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawVehicle", into = "RawVehicle")]
pub struct Vehicle {
    kind: VehicleKind,
    speed_mps: f64,
    capacity: Capacity,
}

impl VehicleKind {
    /// Every kind, for iteration.
    pub const ALL: [VehicleKind; 3] = [VehicleKind::Bike, VehicleKind::Scooter, VehicleKind::Car];

    /// Average urban speed over the straight-line-times-detour distance, in metres per second.
    pub const fn default_speed_mps(self) -> f64 {
        match self {
            VehicleKind::Bike => 4.2,    // 15 km/h
            VehicleKind::Scooter => 6.9, // 25 km/h
            VehicleKind::Car => 7.5,     // 27 km/h, parking included
        }
    }

    /// Default capacity in order-size units.
    pub const fn default_capacity(self) -> u32 {
        match self {
            VehicleKind::Bike => 4,
            VehicleKind::Scooter => 5,
            VehicleKind::Car => 10,
        }
    }

    /// Fastest believable movement between two GPS fixes, in metres per second; faster jumps
    /// are GPS errors.
    pub const fn max_plausible_speed_mps(self) -> f64 {
        match self {
            VehicleKind::Bike => 15.0,
            VehicleKind::Scooter => 35.0,
            VehicleKind::Car => 60.0,
        }
    }

    /// The lowercase name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            VehicleKind::Bike => "bike",
            VehicleKind::Scooter => "scooter",
            VehicleKind::Car => "car",
        }
    }
}

impl fmt::Display for VehicleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VehicleKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        VehicleKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::UnknownVehicleKind(s.chars().take(32).collect()))
    }
}

fn positive_units(what: &'static str, units: i64) -> Result<u32, ModelError> {
    match u32::try_from(units) {
        Ok(u) if u > 0 => Ok(u),
        _ => Err(ModelError::NotPositive {
            what,
            value: units as f64,
        }),
    }
}

impl Capacity {
    /// A capacity of `units`.
    ///
    /// # Errors
    /// [`ModelError::NotPositive`] for zero, negative or absurdly large values.
    pub fn new(units: i64) -> Result<Self, ModelError> {
        positive_units("capacity", units).map(Capacity)
    }

    /// The capacity in units.
    pub const fn units(self) -> u32 {
        self.0
    }
}

impl Size {
    /// One unit: a typical meal order.
    pub const ONE: Size = Size(1);

    /// A size of `units`.
    ///
    /// # Errors
    /// [`ModelError::NotPositive`] for zero, negative or absurdly large values.
    pub fn new(units: i64) -> Result<Self, ModelError> {
        positive_units("order size", units).map(Size)
    }

    /// The size in units.
    pub const fn units(self) -> u32 {
        self.0
    }
}

impl Vehicle {
    /// A vehicle of `kind` with an explicit speed and capacity.
    ///
    /// # Errors
    /// [`ModelError::NotFinite`] or [`ModelError::NotPositive`] for a bad speed.
    pub fn new(kind: VehicleKind, speed_mps: f64, capacity: Capacity) -> Result<Self, ModelError> {
        let speed_mps = finite("speed", speed_mps)?;
        if speed_mps <= 0.0 {
            return Err(ModelError::NotPositive {
                what: "speed",
                value: speed_mps,
            });
        }
        Ok(Vehicle {
            kind,
            speed_mps,
            capacity,
        })
    }

    /// A vehicle of `kind` with that kind's default speed and capacity.
    pub fn of_kind(kind: VehicleKind) -> Self {
        Vehicle {
            kind,
            speed_mps: kind.default_speed_mps(),
            capacity: Capacity(kind.default_capacity()),
        }
    }

    /// The kind of vehicle.
    pub const fn kind(self) -> VehicleKind {
        self.kind
    }

    /// Average speed, metres (or plane units) per second.
    pub const fn speed_mps(self) -> f64 {
        self.speed_mps
    }

    /// How much it carries.
    pub const fn capacity(self) -> Capacity {
        self.capacity
    }
}

impl TryFrom<i64> for Capacity {
    type Error = ModelError;
    fn try_from(v: i64) -> Result<Self, ModelError> {
        Capacity::new(v)
    }
}
impl From<Capacity> for u32 {
    fn from(c: Capacity) -> u32 {
        c.0
    }
}
impl TryFrom<i64> for Size {
    type Error = ModelError;
    fn try_from(v: i64) -> Result<Self, ModelError> {
        Size::new(v)
    }
}
impl From<Size> for u32 {
    fn from(s: Size) -> u32 {
        s.0
    }
}

#[derive(Serialize, Deserialize)]
struct RawVehicle {
    kind: VehicleKind,
    speed_mps: f64,
    capacity: Capacity,
}
impl TryFrom<RawVehicle> for Vehicle {
    type Error = ModelError;
    fn try_from(r: RawVehicle) -> Result<Self, ModelError> {
        Vehicle::new(r.kind, r.speed_mps, r.capacity)
    }
}
impl From<Vehicle> for RawVehicle {
    fn from(v: Vehicle) -> Self {
        RawVehicle {
            kind: v.kind,
            speed_mps: v.speed_mps,
            capacity: v.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_capacity_is_rejected() {
        assert!(matches!(
            Capacity::new(0),
            Err(ModelError::NotPositive {
                what: "capacity",
                ..
            })
        ));
        assert!(Size::new(0).is_err());
    }

    #[test]
    fn nonpositive_or_nan_speed_is_rejected() {
        let cap = Capacity::new(3).unwrap();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Vehicle::new(VehicleKind::Bike, bad, cap).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_parse_from_their_wire_names() {
        for kind in VehicleKind::ALL {
            assert_eq!(kind.as_str().parse::<VehicleKind>().unwrap(), kind);
            let v = Vehicle::of_kind(kind);
            assert!(v.speed_mps() > 0.0 && v.capacity().units() > 0);
        }
        assert!("truck".parse::<VehicleKind>().is_err());
    }

    #[test]
    fn capacity_deserialises_through_the_constructor() {
        assert!(serde_json::from_str::<Capacity>("0").is_err());
        assert!(serde_json::from_str::<Capacity>("-2").is_err());
        assert_eq!(serde_json::from_str::<Capacity>("4").unwrap().units(), 4);
    }

    proptest! {
        #[test]
        fn negative_capacities_and_sizes_are_rejected(units in i64::MIN..=0) {
            prop_assert!(Capacity::new(units).is_err());
            prop_assert!(Size::new(units).is_err());
        }

        #[test]
        fn positive_capacities_are_kept(units in 1i64..=u32::MAX as i64) {
            prop_assert_eq!(Capacity::new(units).unwrap().units() as i64, units);
        }
    }
}

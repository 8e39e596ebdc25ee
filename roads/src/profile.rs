//! Who may ride where, and how fast: the three vehicle profiles (car, bike, scooter) read a
//! way's OpenStreetMap tags and give its speed in each direction, or say it is closed.
//!
//! Cars follow OSRM's `car.lua` (its speed per highway type, and a posted `maxspeed` times 0.8
//! in its place), honouring one-way streets and access tags; turn restrictions, turn and
//! signal penalties are not modelled. Bikes (15 km/h on residential streets, 16 on others, 18
//! on cycleways and with a bike lane) ride everything but motorways and trunks, plus
//! cycleways, living streets, and paths, footways and pedestrian streets where bicycles are
//! allowed, ignoring one-way streets where cycling against them is allowed (`oneway:bicycle=no`,
//! `cycleway=opposite*`). Scooters (mopeds, at most 40 km/h here) ride the car network without
//! motorways, and cycleways where mopeds are allowed. The generated city is tagged the same way,
//! so these rules are the only ones.

use optimizer::model::VehicleKind;

/// The profiles, one per vehicle kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// Cars.
    Car,
    /// Bicycles and e-bikes.
    Bike,
    /// Mopeds and motor scooters.
    Scooter,
}

impl Profile {
    /// Every profile, in index order.
    pub const ALL: [Profile; 3] = [Profile::Car, Profile::Bike, Profile::Scooter];

    /// The profile's index into per-profile arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The profile a vehicle kind rides.
    pub const fn of(kind: VehicleKind) -> Profile {
        match kind {
            VehicleKind::Car => Profile::Car,
            VehicleKind::Bike => Profile::Bike,
            VehicleKind::Scooter => Profile::Scooter,
        }
    }

    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Car => "car",
            Profile::Bike => "bike",
            Profile::Scooter => "scooter",
        }
    }
}

/// The tags of a way that the profiles read, with the values as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WayTags {
    /// `highway`.
    pub highway: Option<String>,
    /// `oneway`.
    pub oneway: Option<String>,
    /// `junction` (a roundabout is one-way).
    pub junction: Option<String>,
    /// `maxspeed`, e.g. "50" or "30 mph".
    pub maxspeed: Option<String>,
    /// `access`.
    pub access: Option<String>,
    /// `vehicle`.
    pub vehicle: Option<String>,
    /// `motor_vehicle`.
    pub motor_vehicle: Option<String>,
    /// `motorcar`.
    pub motorcar: Option<String>,
    /// `moped`.
    pub moped: Option<String>,
    /// `bicycle`.
    pub bicycle: Option<String>,
    /// `oneway:bicycle`.
    pub oneway_bicycle: Option<String>,
    /// `cycleway` (`opposite`, `opposite_lane`, ...).
    pub cycleway: Option<String>,
    /// `area` (an area is not a road).
    pub area: Option<String>,
    /// `service` (`parking_aisle`, `driveway`, ...).
    pub service: Option<String>,
}

impl WayTags {
    /// Picks the tags the profiles read out of `tags`.
    pub fn from_pairs<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> WayTags {
        let mut t = WayTags::default();
        for (k, v) in tags {
            let slot = match k {
                "highway" => &mut t.highway,
                "oneway" => &mut t.oneway,
                "junction" => &mut t.junction,
                "maxspeed" => &mut t.maxspeed,
                "access" => &mut t.access,
                "vehicle" => &mut t.vehicle,
                "motor_vehicle" => &mut t.motor_vehicle,
                "motorcar" => &mut t.motorcar,
                "moped" => &mut t.moped,
                "bicycle" => &mut t.bicycle,
                "oneway:bicycle" => &mut t.oneway_bicycle,
                "cycleway" => &mut t.cycleway,
                "area" => &mut t.area,
                "service" => &mut t.service,
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        t
    }

    /// A way with just a `highway` tag (and more set by the caller).
    pub fn highway(kind: &str) -> WayTags {
        WayTags {
            highway: Some(kind.into()),
            ..WayTags::default()
        }
    }
}

/// A way's speed in km/h along it (forward) and against it (backward); 0 where closed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speeds {
    /// Along the way's node order.
    pub forward_kmh: f64,
    /// Against it.
    pub backward_kmh: f64,
}

impl Speeds {
    const CLOSED: Speeds = Speeds {
        forward_kmh: 0.0,
        backward_kmh: 0.0,
    };

    /// Whether the way is open in either direction.
    pub fn open(&self) -> bool {
        self.forward_kmh > 0.0 || self.backward_kmh > 0.0
    }
}

/// OSRM `car.lua`'s reduction of a posted speed limit to a typical driving speed.
const MAXSPEED_REDUCTION: f64 = 0.8;

/// A moped's top speed here, km/h.
const SCOOTER_MAX_KMH: f64 = 40.0;

/// Car speed per highway type, km/h (OSRM `car.lua`).
fn car_speed(highway: &str) -> Option<f64> {
    Some(match highway {
        "motorway" => 90.0,
        "motorway_link" => 45.0,
        "trunk" => 85.0,
        "trunk_link" => 40.0,
        "primary" => 65.0,
        "primary_link" => 30.0,
        "secondary" => 55.0,
        "secondary_link" => 25.0,
        "tertiary" => 40.0,
        "tertiary_link" => 20.0,
        "unclassified" | "residential" => 25.0,
        "living_street" => 10.0,
        "service" => 15.0,
        _ => return None,
    })
}

/// Bike speed per highway type, km/h; paths and footways only where bicycles are allowed.
fn bike_speed(highway: &str, bicycle_allowed: bool, bike_lane: bool) -> Option<f64> {
    Some(match highway {
        "cycleway" => 18.0,
        "primary" | "primary_link" | "secondary" | "secondary_link" | "tertiary"
        | "tertiary_link" | "unclassified" | "residential" | "road"
            if bike_lane =>
        {
            18.0
        }
        "primary" | "primary_link" | "secondary" | "secondary_link" | "tertiary"
        | "tertiary_link" | "unclassified" | "road" => 16.0,
        "residential" => 15.0,
        "service" | "track" => 12.0,
        "living_street" => 10.0,
        "path" | "bridleway" if bicycle_allowed => 14.0,
        "footway" | "pedestrian" if bicycle_allowed => 8.0,
        _ => return None,
    })
}

fn is(value: &Option<String>, any: &[&str]) -> bool {
    value.as_deref().is_some_and(|v| any.contains(&v))
}

/// Values of access tags that close a way.
const DENIED: &[&str] = &[
    "no",
    "private",
    "agricultural",
    "forestry",
    "emergency",
    "psv",
    "bus",
    "delivery",
    "destination",
    "customers",
    "permit",
    "residents",
    "military",
    "restricted",
    "official",
    "foot",
    "discouraged",
    "use_sidepath",
];

/// Values of access tags that open a way.
const ALLOWED: &[&str] = &["yes", "permissive", "designated", "official"];

/// The most specific access tag set among `hierarchy` (first wins): open, closed, or unsaid.
fn access(hierarchy: &[&Option<String>]) -> Option<bool> {
    for tag in hierarchy {
        if is(tag, ALLOWED) {
            return Some(true);
        }
        if is(tag, DENIED) {
            return Some(false);
        }
    }
    None
}

/// Parses a `maxspeed` value in km/h ("50", "30 mph"); `None` for "none", "signals" and such.
fn parse_maxspeed(value: &str) -> Option<f64> {
    let v = value.trim();
    let (number, mph) = match v.strip_suffix("mph") {
        Some(n) => (n.trim(), true),
        None => (v.strip_suffix("km/h").unwrap_or(v).trim(), false),
    };
    let kmh: f64 = number.parse().ok()?;
    (kmh > 0.0 && kmh.is_finite()).then_some(if mph { kmh * 1.609_344 } else { kmh })
}

/// One-way state: 1 along, -1 against, 0 both ways.
fn oneway(tags: &WayTags) -> i8 {
    match tags.oneway.as_deref() {
        Some("yes" | "1" | "true") => 1,
        Some("-1" | "reverse") => -1,
        Some("no" | "0" | "false") => 0,
        _ if is(&tags.junction, &["roundabout", "circular"]) => 1,
        _ if is(&tags.highway, &["motorway", "motorway_link"]) => 1,
        _ => 0,
    }
}

fn directed(speed: f64, way: i8) -> Speeds {
    Speeds {
        forward_kmh: if way >= 0 { speed } else { 0.0 },
        backward_kmh: if way <= 0 { speed } else { 0.0 },
    }
}

/// The way's speeds for `profile`; closed both ways when the profile may not use it.
pub fn speeds(profile: Profile, tags: &WayTags) -> Speeds {
    let Some(highway) = tags.highway.as_deref() else {
        return Speeds::CLOSED;
    };
    if is(&tags.area, &["yes"]) {
        return Speeds::CLOSED;
    }
    match profile {
        Profile::Car => {
            let Some(base) = car_speed(highway) else {
                return Speeds::CLOSED;
            };
            let open = access(&[
                &tags.motorcar,
                &tags.motor_vehicle,
                &tags.vehicle,
                &tags.access,
            ]);
            if open == Some(false) {
                return Speeds::CLOSED;
            }
            let speed = tags
                .maxspeed
                .as_deref()
                .and_then(parse_maxspeed)
                .map_or(base, |limit| limit * MAXSPEED_REDUCTION);
            directed(speed, oneway(tags))
        }
        Profile::Scooter => {
            let open = access(&[
                &tags.moped,
                &tags.motor_vehicle,
                &tags.vehicle,
                &tags.access,
            ]);
            if open == Some(false) || is(&tags.highway, &["motorway", "motorway_link"]) {
                return Speeds::CLOSED;
            }
            let speed = match car_speed(highway) {
                Some(base) => tags
                    .maxspeed
                    .as_deref()
                    .and_then(parse_maxspeed)
                    .map_or(base, |limit| limit * MAXSPEED_REDUCTION),
                // Cycleways and paths only where mopeds are explicitly allowed.
                None if open == Some(true) && is(&tags.highway, &["cycleway", "path"]) => 25.0,
                None => return Speeds::CLOSED,
            };
            directed(speed.min(SCOOTER_MAX_KMH), oneway(tags))
        }
        Profile::Bike => {
            let open = access(&[&tags.bicycle, &tags.vehicle, &tags.access]);
            if open == Some(false) || is(&tags.highway, &["motorway", "motorway_link"]) {
                return Speeds::CLOSED;
            }
            if is(&tags.highway, &["trunk", "trunk_link"]) && open != Some(true) {
                return Speeds::CLOSED;
            }
            let allowed = is(&tags.bicycle, ALLOWED);
            let bike_lane = is(
                &tags.cycleway,
                &["lane", "track", "separate", "shared_lane"],
            );
            let Some(speed) = bike_speed(highway, allowed, bike_lane).or_else(|| {
                // A trunk road with bicycle=yes.
                (allowed && highway.starts_with("trunk")).then_some(16.0)
            }) else {
                return Speeds::CLOSED;
            };
            let against_allowed = is(&tags.oneway_bicycle, &["no", "0", "false"])
                || tags
                    .cycleway
                    .as_deref()
                    .is_some_and(|c| c.starts_with("opposite"));
            let way = if against_allowed { 0 } else { oneway(tags) };
            directed(speed, way)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> WayTags {
        WayTags::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn cars_drive_residential_streets_both_ways_at_osrm_speed() {
        let s = speeds(Profile::Car, &tags(&[("highway", "residential")]));
        assert_eq!((s.forward_kmh, s.backward_kmh), (25.0, 25.0));
    }

    #[test]
    fn one_way_streets_close_the_way_back_for_cars_but_not_for_bikes_allowed_against() {
        let t = tags(&[
            ("highway", "residential"),
            ("oneway", "yes"),
            ("oneway:bicycle", "no"),
        ]);
        let car = speeds(Profile::Car, &t);
        assert!(car.forward_kmh > 0.0 && car.backward_kmh == 0.0);
        let bike = speeds(Profile::Bike, &t);
        assert!(bike.forward_kmh > 0.0 && bike.backward_kmh > 0.0);
        let reverse = speeds(
            Profile::Car,
            &tags(&[("highway", "primary"), ("oneway", "-1")]),
        );
        assert!(reverse.forward_kmh == 0.0 && reverse.backward_kmh > 0.0);
        let roundabout = speeds(
            Profile::Scooter,
            &tags(&[("highway", "primary"), ("junction", "roundabout")]),
        );
        assert!(roundabout.backward_kmh == 0.0);
    }

    #[test]
    fn a_posted_limit_replaces_the_type_speed_reduced_as_osrm_does() {
        let s = speeds(
            Profile::Car,
            &tags(&[("highway", "primary"), ("maxspeed", "40")]),
        );
        assert!((s.forward_kmh - 32.0).abs() < 1e-9);
        let mph = speeds(
            Profile::Car,
            &tags(&[("highway", "primary"), ("maxspeed", "20 mph")]),
        );
        assert!((mph.forward_kmh - 20.0 * 1.609_344 * 0.8).abs() < 1e-9);
        let scooter = speeds(Profile::Scooter, &tags(&[("highway", "primary")]));
        assert_eq!(scooter.forward_kmh, 40.0);
    }

    #[test]
    fn cycleways_and_allowed_footways_are_for_bikes_only() {
        let cycleway = tags(&[("highway", "cycleway")]);
        assert!(speeds(Profile::Bike, &cycleway).open());
        assert!(!speeds(Profile::Car, &cycleway).open());
        assert!(!speeds(Profile::Scooter, &cycleway).open());
        let moped_ok = tags(&[("highway", "cycleway"), ("moped", "yes")]);
        assert!(speeds(Profile::Scooter, &moped_ok).open());
        let footway = tags(&[("highway", "footway")]);
        assert!(!speeds(Profile::Bike, &footway).open());
        let shared = tags(&[("highway", "footway"), ("bicycle", "yes")]);
        assert!(speeds(Profile::Bike, &shared).open());
    }

    #[test]
    fn access_tags_close_and_open_ways() {
        let private = tags(&[("highway", "service"), ("access", "private")]);
        assert!(!speeds(Profile::Car, &private).open());
        let delivery_ok = tags(&[
            ("highway", "pedestrian"),
            ("access", "no"),
            ("bicycle", "yes"),
        ]);
        assert!(speeds(Profile::Bike, &delivery_ok).open());
        assert!(!speeds(Profile::Car, &delivery_ok).open());
        let no_bikes = tags(&[("highway", "residential"), ("bicycle", "no")]);
        assert!(!speeds(Profile::Bike, &no_bikes).open());
        assert!(speeds(Profile::Car, &no_bikes).open());
        assert!(!speeds(Profile::Bike, &tags(&[("highway", "motorway")])).open());
        assert!(!speeds(Profile::Scooter, &tags(&[("highway", "motorway")])).open());
        assert!(!speeds(Profile::Car, &tags(&[("highway", "pedestrian")])).open());
    }
}

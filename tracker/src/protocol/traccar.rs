//! The Traccar Client (version 9 on) JSON body: `{"device_id": "…", "location": {"timestamp":
//! "ISO", "coords": {"latitude", "longitude", "accuracy", "speed" (m/s), "heading", "altitude"},
//! "battery": {"level": 0..1}}}`. `location` may also be an array (the app's batch sync), and
//! `battery` may sit beside `location`. Negative speed, heading or battery mean "unknown".

use serde::Deserialize;

use super::timestamp::from_epoch_number;
use super::{ProtocolError, clip, parse_timestamp};
use crate::position::FixInput;

#[derive(Deserialize)]
struct Body {
    device_id: Option<String>,
    location: Option<OneOrMany>,
    battery: Option<Battery>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Box<Location>),
    Many(Vec<Location>),
}

#[derive(Deserialize)]
struct Location {
    timestamp: Option<Timestamp>,
    coords: Coords,
    battery: Option<Battery>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Number(f64),
    Text(String),
}

#[derive(Deserialize)]
struct Coords {
    latitude: f64,
    longitude: f64,
    accuracy: Option<f64>,
    speed: Option<f64>,
    heading: Option<f64>,
    altitude: Option<f64>,
}

#[derive(Deserialize, Clone, Copy)]
struct Battery {
    level: Option<f64>,
}

/// A Traccar Client request: one device, one or more fixes.
#[derive(Clone, Debug, PartialEq)]
pub struct TraccarFixes {
    /// The phone's device id.
    pub device_id: String,
    /// Its fixes, in the order sent.
    pub fixes: Vec<FixInput>,
}

fn known(value: Option<f64>) -> Option<f64> {
    value.filter(|v| *v >= 0.0 || v.is_nan())
}

/// Reads a Traccar Client JSON body.
///
/// # Errors
/// [`ProtocolError::BadJson`] for any other shape, [`ProtocolError::Missing`] without a device
/// id or location, [`ProtocolError::BadTimestamp`], [`ProtocolError::TooManyPoints`].
pub fn parse(body: &[u8]) -> Result<TraccarFixes, ProtocolError> {
    let body: Body =
        serde_json::from_slice(body).map_err(|e| ProtocolError::BadJson(clip(&e.to_string())))?;
    let device_id = body.device_id.ok_or(ProtocolError::Missing("device_id"))?;
    if device_id.is_empty()
        || device_id.len() > 128
        || device_id.trim() != device_id
        || device_id.chars().any(char::is_control)
    {
        return Err(ProtocolError::BadDeviceId(clip(&device_id)));
    }
    let locations = match body.location.ok_or(ProtocolError::Missing("location"))? {
        OneOrMany::One(l) => vec![*l],
        OneOrMany::Many(ls) => ls,
    };
    if locations.is_empty() {
        return Err(ProtocolError::Empty);
    }
    if locations.len() > super::batch::MAX_POINTS {
        return Err(ProtocolError::TooManyPoints(locations.len()));
    }
    let mut fixes = Vec::with_capacity(locations.len());
    for l in locations {
        let fix_time = match l.timestamp {
            None => None,
            Some(Timestamp::Text(t)) => Some(parse_timestamp(&t)?),
            Some(Timestamp::Number(n)) => Some(
                from_epoch_number(n).ok_or_else(|| ProtocolError::BadTimestamp(n.to_string()))?,
            ),
        };
        let battery = l.battery.or(body.battery).and_then(|b| known(b.level));
        fixes.push(FixInput {
            lat: l.coords.latitude,
            lon: l.coords.longitude,
            fix_time,
            speed_mps: known(l.coords.speed),
            heading_deg: l.coords.heading,
            altitude_m: l.coords.altitude,
            accuracy_m: l.coords.accuracy,
            battery_pct: battery.map(|level| level * 100.0),
        });
    }
    Ok(TraccarFixes { device_id, fixes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const CLIENT_9: &str = r#"{"location":{"event":"motionchange","is_moving":false,
        "uuid":"1d0b","timestamp":"2026-11-21T12:00:00.000Z","odometer":0,
        "coords":{"latitude":52.52,"longitude":13.405,"accuracy":4.8,"speed":3.5,
        "speed_accuracy":-1,"heading":-1,"heading_accuracy":-1,"altitude":33.1,
        "ellipsoidal_altitude":33.1,"altitude_accuracy":1},
        "activity":{"type":"still","confidence":100},
        "battery":{"is_charging":false,"level":0.63},"extras":{}},"device_id":"phone-9"}"#;

    #[test]
    fn a_traccar_client_9_body_is_read_with_speed_in_mps_and_battery_in_percent() {
        let r = parse(CLIENT_9.as_bytes()).unwrap();
        assert_eq!(r.device_id, "phone-9");
        let f = &r.fixes[0];
        assert_eq!((f.lat, f.lon), (52.52, 13.405));
        assert_eq!(f.fix_time, Some(datetime!(2026-11-21 12:00 UTC)));
        assert_eq!(f.speed_mps, Some(3.5));
        assert_eq!(
            f.heading_deg,
            Some(-1.0),
            "validation drops a negative heading"
        );
        assert_eq!(f.accuracy_m, Some(4.8));
        assert!((f.battery_pct.unwrap() - 63.0).abs() < 1e-9);
    }

    #[test]
    fn an_array_of_locations_is_read_in_order() {
        let body = r#"{"device_id":"d","location":[
            {"timestamp":1795262400000,"coords":{"latitude":1.5,"longitude":2.5}},
            {"timestamp":"2026-11-21T12:00:01Z","coords":{"latitude":1.6,"longitude":2.6,"speed":-1}}]}"#;
        let r = parse(body.as_bytes()).unwrap();
        assert_eq!(r.fixes.len(), 2);
        assert_eq!(r.fixes[0].fix_time, Some(datetime!(2026-11-21 12:00 UTC)));
        assert_eq!(r.fixes[1].speed_mps, None);
    }

    #[test]
    fn wrong_shapes_are_protocol_errors() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"device_id":"d"}"#,
            r#"{"device_id":"d","location":{"coords":{"latitude":"x","longitude":1}}}"#,
            r#"{"device_id":"","location":{"coords":{"latitude":1,"longitude":1}}}"#,
            r#"{"device_id":"d","location":[]}"#,
        ] {
            assert!(parse(body.as_bytes()).is_err(), "{body}");
        }
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_json_parser_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }

        #[test]
        fn any_values_in_the_right_shape_never_panic(
            lat in any::<f64>(), lon in any::<f64>(), ts in prop_oneof![
                any::<f64>().prop_map(|n| serde_json::json!(n)),
                ".{0,30}".prop_map(|s| serde_json::json!(s)),
            ], level in any::<f64>(), id in ".{0,10}") {
            let body = serde_json::json!({"device_id": id, "location": {"timestamp": ts,
                "coords": {"latitude": lat, "longitude": lon}, "battery": {"level": level}}});
            let _ = parse(body.to_string().as_bytes());
        }
    }
}

//! The OsmAnd / Traccar form protocol: `GET` or `POST /` with parameters in the query string or
//! a url-encoded body (both are read; the body wins). Speed is in knots, as Traccar reads it; a
//! negative speed or battery means "unknown" and is ignored, as in the Traccar JSON body.

use super::{ProtocolError, clip, parse_timestamp};
use crate::position::FixInput;

/// Metres per second in one knot.
pub const MPS_PER_KNOT: f64 = 0.514_444;

/// A single fix of the form protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct OsmandFix {
    /// The phone's device id (`id` or `deviceid`).
    pub device_id: String,
    /// The fix.
    pub fix: FixInput,
}

#[derive(Default)]
struct Params<'a> {
    id: Option<std::borrow::Cow<'a, str>>,
    lat: Option<std::borrow::Cow<'a, str>>,
    lon: Option<std::borrow::Cow<'a, str>>,
    location: Option<std::borrow::Cow<'a, str>>,
    timestamp: Option<std::borrow::Cow<'a, str>>,
    speed: Option<std::borrow::Cow<'a, str>>,
    heading: Option<std::borrow::Cow<'a, str>>,
    altitude: Option<std::borrow::Cow<'a, str>>,
    accuracy: Option<std::borrow::Cow<'a, str>>,
    batt: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Params<'a> {
    fn read(&mut self, encoded: &'a [u8]) {
        for (key, value) in form_urlencoded::parse(encoded) {
            let slot = match key.as_ref() {
                "id" | "deviceid" => &mut self.id,
                "lat" => &mut self.lat,
                "lon" => &mut self.lon,
                "location" => &mut self.location,
                "timestamp" => &mut self.timestamp,
                "speed" => &mut self.speed,
                "bearing" | "heading" => &mut self.heading,
                "altitude" => &mut self.altitude,
                "accuracy" => &mut self.accuracy,
                "batt" => &mut self.batt,
                _ => continue,
            };
            *slot = Some(value);
        }
    }
}

fn number(field: &'static str, value: &str) -> Result<f64, ProtocolError> {
    value.trim().parse().map_err(|_| ProtocolError::NotANumber {
        field,
        value: clip(value),
    })
}

fn optional(field: &'static str, value: Option<&str>) -> Result<Option<f64>, ProtocolError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => number(field, v).map(Some),
    }
}

/// As [`optional`], a negative value read as absent (apps send -1 for "unknown").
fn unsigned(field: &'static str, value: Option<&str>) -> Result<Option<f64>, ProtocolError> {
    Ok(optional(field, value)?.filter(|v| v.is_nan() || *v >= 0.0))
}

/// Reads one fix from a query string and an optional url-encoded body.
///
/// # Errors
/// [`ProtocolError::Missing`] without a device id or position, [`ProtocolError::NotANumber`] and
/// [`ProtocolError::BadTimestamp`] for unreadable values, [`ProtocolError::BadDeviceId`] for an
/// id that cannot be one.
pub fn parse(query: &[u8], body: &[u8]) -> Result<OsmandFix, ProtocolError> {
    let mut params = Params::default();
    params.read(query);
    params.read(body);
    let device_id = params.id.ok_or(ProtocolError::Missing("id"))?;
    if device_id.is_empty()
        || device_id.len() > 128
        || device_id.trim() != device_id
        || device_id.chars().any(char::is_control)
    {
        return Err(ProtocolError::BadDeviceId(clip(&device_id)));
    }
    let (lat, lon) = match (params.lat, params.lon, params.location) {
        (Some(lat), Some(lon), _) => (number("lat", &lat)?, number("lon", &lon)?),
        (_, _, Some(location)) => {
            let (lat, lon) = location.split_once(',').ok_or(ProtocolError::NotANumber {
                field: "location",
                value: clip(&location),
            })?;
            (number("location", lat)?, number("location", lon)?)
        }
        (None, _, None) => return Err(ProtocolError::Missing("lat")),
        (_, None, None) => return Err(ProtocolError::Missing("lon")),
    };
    let fix_time = match params.timestamp.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(parse_timestamp(t)?),
    };
    let fix = FixInput {
        lat,
        lon,
        fix_time,
        speed_mps: unsigned("speed", params.speed.as_deref())?.map(|knots| knots * MPS_PER_KNOT),
        heading_deg: optional("bearing", params.heading.as_deref())?,
        altitude_m: optional("altitude", params.altitude.as_deref())?,
        accuracy_m: optional("accuracy", params.accuracy.as_deref())?,
        battery_pct: unsigned("batt", params.batt.as_deref())?,
    };
    Ok(OsmandFix {
        device_id: device_id.into_owned(),
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn a_traccar_client_query_is_read_with_speed_in_knots() {
        let q = b"id=phone-1&lat=52.52&lon=13.405&timestamp=1795262400&speed=10&bearing=90.5\
                  &altitude=34&accuracy=5&batt=77";
        let f = parse(q, b"").unwrap();
        assert_eq!(f.device_id, "phone-1");
        assert_eq!(f.fix.lat, 52.52);
        assert_eq!(f.fix.lon, 13.405);
        assert_eq!(f.fix.fix_time, Some(datetime!(2026-11-21 12:00 UTC)));
        assert!((f.fix.speed_mps.unwrap() - 5.14444).abs() < 1e-6);
        assert_eq!(f.fix.heading_deg, Some(90.5));
        assert_eq!(f.fix.altitude_m, Some(34.0));
        assert_eq!(f.fix.accuracy_m, Some(5.0));
        assert_eq!(f.fix.battery_pct, Some(77.0));
    }

    #[test]
    fn a_form_body_and_deviceid_heading_and_location_work_too() {
        let f = parse(
            b"",
            b"deviceid=abc&location=52.5%2C13.4&heading=180&timestamp=2026-11-21T13%3A00%3A00%2B01%3A00",
        )
        .unwrap();
        assert_eq!(f.device_id, "abc");
        assert_eq!((f.fix.lat, f.fix.lon), (52.5, 13.4));
        assert_eq!(f.fix.heading_deg, Some(180.0));
        assert_eq!(f.fix.fix_time, Some(datetime!(2026-11-21 12:00 UTC)));
    }

    #[test]
    fn a_negative_speed_or_battery_means_unknown() {
        let f = parse(b"id=a&lat=52.5&lon=13.4&speed=-1&batt=-1", b"").unwrap();
        assert_eq!(f.fix.speed_mps, None);
        assert_eq!(f.fix.battery_pct, None);
        let f = parse(b"id=a&lat=52.5&lon=13.4&speed=0&batt=0", b"").unwrap();
        assert_eq!((f.fix.speed_mps, f.fix.battery_pct), (Some(0.0), Some(0.0)));
    }

    #[test]
    fn missing_or_unreadable_fields_are_protocol_errors() {
        assert_eq!(
            parse(b"lat=1&lon=2", b""),
            Err(ProtocolError::Missing("id"))
        );
        assert_eq!(
            parse(b"id=a&lon=2", b""),
            Err(ProtocolError::Missing("lat"))
        );
        assert!(matches!(
            parse(b"id=a&lat=x&lon=2", b""),
            Err(ProtocolError::NotANumber { field: "lat", .. })
        ));
        assert!(matches!(
            parse(b"id=a&lat=1&lon=2&timestamp=soon", b""),
            Err(ProtocolError::BadTimestamp(_))
        ));
        assert!(matches!(
            parse(b"id=%01&lat=1&lon=2", b""),
            Err(ProtocolError::BadDeviceId(_))
        ));
    }

    proptest! {
        #[test]
        fn no_query_or_body_makes_the_parser_panic(q in proptest::collection::vec(any::<u8>(), 0..200),
                                                   b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&q, &b);
        }

        #[test]
        fn plausible_queries_with_any_values_never_panic(
            id in ".{0,20}", lat in ".{0,12}", lon in ".{0,12}", ts in ".{0,30}",
            speed in ".{0,8}", extra in "[a-z]{1,8}=.{0,8}",
        ) {
            let mut q = String::new();
            for (k, v) in [("id", &id), ("lat", &lat), ("lon", &lon), ("timestamp", &ts), ("speed", &speed)] {
                q.push_str(k);
                q.push('=');
                q.extend(form_urlencoded::byte_serialize(v.as_bytes()));
                q.push('&');
            }
            q.push_str(&extra);
            let _ = parse(q.as_bytes(), b"");
        }
    }
}

//! The batch endpoint's body: a JSON array of at most [`MAX_POINTS`] fixes,
//! `[{"lat", "lon", "at": RFC3339 | epoch s | epoch ms, "speed_mps"?, "heading_deg"?,
//! "altitude_m"?, "accuracy_m"?, "battery_pct"?}]`, for apps that buffer while offline.

use serde::Deserialize;

use super::timestamp::from_epoch_number;
use super::{ProtocolError, clip, parse_timestamp};
use crate::position::FixInput;

/// Most fixes one batch request may carry.
pub const MAX_POINTS: usize = 1_000;

/// One fix of a batch, as sent.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
pub struct BatchPoint {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Fix time: RFC 3339 text, or epoch seconds or milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<WireTime>,
    /// Speed, m/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    /// Heading, degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    /// Altitude, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_m: Option<f64>,
    /// Accuracy radius, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
    /// Battery, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
}

/// A fix time as sent: text or a number (read without building a JSON tree).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum WireTime {
    /// RFC 3339 / ISO 8601 text, or digits.
    Text(String),
    /// Epoch seconds or milliseconds.
    Number(f64),
}

impl<'de> Deserialize<'de> for WireTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WireTime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a timestamp as text or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WireTime, E> {
                Ok(WireTime::Text(v.to_owned()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WireTime, E> {
                Ok(WireTime::Number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WireTime, E> {
                Ok(WireTime::Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WireTime, E> {
                Ok(WireTime::Number(v as f64))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl TryFrom<BatchPoint> for FixInput {
    type Error = ProtocolError;
    fn try_from(p: BatchPoint) -> Result<FixInput, ProtocolError> {
        let fix_time = match p.at {
            None => None,
            Some(WireTime::Text(s)) => Some(parse_timestamp(&s)?),
            Some(WireTime::Number(n)) => Some(
                from_epoch_number(n)
                    .ok_or_else(|| ProtocolError::BadTimestamp(clip(&n.to_string())))?,
            ),
        };
        Ok(FixInput {
            lat: p.lat,
            lon: p.lon,
            fix_time,
            speed_mps: p.speed_mps,
            heading_deg: p.heading_deg,
            altitude_m: p.altitude_m,
            accuracy_m: p.accuracy_m,
            battery_pct: p.battery_pct,
        })
    }
}

/// Reads a batch. The array as a whole must parse; each point's timestamp is judged on its own,
/// so one bad point does not make the phone resend the others forever.
///
/// # Errors
/// [`ProtocolError::BadJson`] when the body is no array of points, [`ProtocolError::Empty`] and
/// [`ProtocolError::TooManyPoints`] for its length.
pub fn parse(body: &[u8]) -> Result<Vec<Result<FixInput, ProtocolError>>, ProtocolError> {
    let points: Vec<BatchPoint> =
        serde_json::from_slice(body).map_err(|e| ProtocolError::BadJson(clip(&e.to_string())))?;
    if points.is_empty() {
        return Err(ProtocolError::Empty);
    }
    if points.len() > MAX_POINTS {
        return Err(ProtocolError::TooManyPoints(points.len()));
    }
    Ok(points.into_iter().map(FixInput::try_from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn a_batch_is_read_point_by_point() {
        let body = r#"[{"lat":52.5,"lon":13.4,"at":"2026-11-21T12:00:00Z","speed_mps":4},
                       {"lat":52.6,"lon":13.5,"at":1795262401},
                       {"lat":52.7,"lon":13.6,"at":"later"}]"#;
        let points = parse(body.as_bytes()).unwrap();
        assert_eq!(points.len(), 3);
        let first = points[0].as_ref().unwrap();
        assert_eq!(first.fix_time, Some(datetime!(2026-11-21 12:00 UTC)));
        assert_eq!(first.speed_mps, Some(4.0));
        assert_eq!(
            points[1].as_ref().unwrap().fix_time,
            Some(datetime!(2026-11-21 12:00:01 UTC))
        );
        assert!(points[2].is_err());
    }

    #[test]
    fn empty_oversized_and_non_array_bodies_are_refused() {
        assert_eq!(parse(b"[]"), Err(ProtocolError::Empty));
        assert!(matches!(parse(b"{}"), Err(ProtocolError::BadJson(_))));
        let many = format!(
            "[{}]",
            vec![r#"{"lat":1,"lon":1}"#; MAX_POINTS + 1].join(",")
        );
        assert_eq!(
            parse(many.as_bytes()),
            Err(ProtocolError::TooManyPoints(MAX_POINTS + 1))
        );
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_batch_parser_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }

        #[test]
        fn any_values_in_the_right_shape_never_panic(
            pts in proptest::collection::vec((any::<f64>(), any::<f64>(), prop_oneof![
                any::<f64>().prop_map(|n| serde_json::json!(n)),
                any::<i64>().prop_map(|n| serde_json::json!(n)),
                ".{0,30}".prop_map(|s| serde_json::json!(s)),
                Just(serde_json::json!([1])),
            ]), 1..5)) {
            let body: Vec<_> = pts.into_iter().map(|(lat, lon, at)|
                serde_json::json!({"lat": lat, "lon": lon, "at": at})).collect();
            let _ = parse(serde_json::Value::from(body).to_string().as_bytes());
        }
    }
}

//! A GPS fix on its way in: [`FixInput`] is what a protocol read from the wire, [`Position`] a
//! fix that passed the stateless checks, belongs to a known courier and is ready to store.

use std::sync::Arc;

use optimizer::model::{Coordinates, CourierId};
use time::OffsetDateTime;

/// Which input a position arrived through; stored in `positions.source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum Source {
    /// OsmAnd / Traccar query string or form body.
    Osmand = 0,
    /// Traccar Client JSON body.
    TraccarJson = 1,
    /// The batch endpoint `POST /v1/positions`.
    Batch = 2,
    /// The courier WebSocket.
    WebSocket = 3,
}

impl Source {
    /// The label used in metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Source::Osmand => "osmand",
            Source::TraccarJson => "traccar_json",
            Source::Batch => "batch",
            Source::WebSocket => "websocket",
        }
    }
}

/// One fix as read from the wire, in SI units, not yet checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixInput {
    /// Latitude in degrees, as sent (may be NaN or out of range).
    pub lat: f64,
    /// Longitude in degrees, as sent.
    pub lon: f64,
    /// When the phone took the fix; `None` means "now" (as the Traccar server does).
    pub fix_time: Option<OffsetDateTime>,
    /// Ground speed in metres per second.
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north.
    pub heading_deg: Option<f64>,
    /// Altitude in metres.
    pub altitude_m: Option<f64>,
    /// Horizontal accuracy radius in metres.
    pub accuracy_m: Option<f64>,
    /// Battery charge in percent (0..100).
    pub battery_pct: Option<f64>,
}

/// A checked fix of a known courier, ready for the database.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// Whose fix.
    pub courier_id: CourierId,
    /// The device that sent it (the courier id for token-authenticated inputs).
    pub device_id: Arc<str>,
    /// When the phone took the fix.
    pub fix_time: OffsetDateTime,
    /// Where.
    pub coords: Coordinates,
    /// Ground speed, m/s.
    pub speed_mps: Option<f32>,
    /// Course, degrees.
    pub heading_deg: Option<f32>,
    /// Altitude, m.
    pub altitude_m: Option<f32>,
    /// Accuracy radius, m.
    pub accuracy_m: Option<f32>,
    /// Battery, percent.
    pub battery_pct: Option<f32>,
    /// Which input it came through.
    pub source: Source,
}

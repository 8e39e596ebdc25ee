//! The one error type of the model: every way a value can be refused at construction.

use super::order::OrderStatus;

/// Why a model value could not be built. Each variant names the offending input, so a service can
/// turn it into a clear 4xx message without guessing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A number that must be finite was NaN or infinite.
    #[error("{field} must be a finite number, got {value}")]
    NotFinite {
        /// Which input was wrong.
        field: &'static str,
        /// The value received.
        value: f64,
    },
    /// Latitude outside -90..=90 degrees.
    #[error("latitude {0} is outside -90..=90")]
    LatitudeOutOfRange(f64),
    /// Longitude outside -180..=180 degrees.
    #[error("longitude {0} is outside -180..=180")]
    LongitudeOutOfRange(f64),
    /// An id that is empty, too long, padded with spaces or holds control characters.
    #[error(
        "{what} id must be 1 to 128 characters without control characters or padding, got {value:?}"
    )]
    InvalidId {
        /// The kind of id.
        what: &'static str,
        /// The text received (truncated).
        value: String,
    },
    /// A time window whose end lies before its start.
    #[error("time window ends at {end} before it starts at {start}")]
    EmptyWindow {
        /// Start, in seconds.
        start: f64,
        /// End, in seconds.
        end: f64,
    },
    /// A quantity that must be positive was zero or negative.
    #[error("{what} must be positive, got {value}")]
    NotPositive {
        /// Which quantity.
        what: &'static str,
        /// The value received.
        value: f64,
    },
    /// A duration that must not be negative was.
    #[error("{what} must not be negative, got {value}")]
    Negative {
        /// Which duration.
        what: &'static str,
        /// The value received.
        value: f64,
    },
    /// An order's ready time lies before the time it was placed.
    #[error("ready time {ready} is before placement time {placed}")]
    ReadyBeforePlaced {
        /// Placement time, in seconds.
        placed: f64,
        /// Ready time, in seconds.
        ready: f64,
    },
    /// An order's delivery deadline lies before it can be picked up.
    #[error("deadline {deadline} is before ready time {ready}")]
    DeadlineBeforeReady {
        /// Ready time, in seconds.
        ready: f64,
        /// Deadline, in seconds.
        deadline: f64,
    },
    /// A lifecycle transition the order status machine does not allow.
    #[error("order cannot go from {from} to {to}")]
    IllegalTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// A courier's committed stops or onboard orders contradict each other.
    #[error("inconsistent committed stops: {0}")]
    InconsistentCommitment(String),
    /// A status name that is not one of the lifecycle's.
    #[error("unknown order status {0:?}")]
    UnknownStatus(String),
    /// A vehicle kind name that is not bike, scooter or car.
    #[error("unknown vehicle kind {0:?}; expected bike, scooter or car")]
    UnknownVehicleKind(String),
}

/// Returns `value` when finite, otherwise the error naming `field`.
pub(crate) fn finite(field: &'static str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NotFinite { field, value })
    }
}

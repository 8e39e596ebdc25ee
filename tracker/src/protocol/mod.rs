//! Wire formats of the position inputs, read into [`FixInput`](crate::position::FixInput)s:
//! the OsmAnd / Traccar form protocol ([`osmand`]), the Traccar Client JSON body ([`traccar`])
//! and the batch endpoint's array ([`batch`]). Parsers never panic, whatever the bytes.

pub mod batch;
pub mod osmand;
pub mod traccar;

mod timestamp;

pub use timestamp::parse_timestamp;

/// Why a request body or query could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// A required parameter is absent.
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    /// A parameter that must be a number is not one.
    #[error("parameter `{field}` is not a number: {value:?}")]
    NotANumber {
        /// Which parameter.
        field: &'static str,
        /// What was sent, shortened.
        value: String,
    },
    /// A timestamp in none of the accepted forms.
    #[error(
        "timestamp {0:?} is neither epoch seconds, epoch milliseconds nor ISO 8601 with an offset"
    )]
    BadTimestamp(String),
    /// A device id that is empty, too long or has control characters.
    #[error("device id {0:?} is not valid")]
    BadDeviceId(String),
    /// The JSON does not have the expected shape.
    #[error("body is not the expected JSON: {0}")]
    BadJson(String),
    /// The form body is not UTF-8 or not url-encoded.
    #[error("body is not a url-encoded form")]
    BadForm,
    /// More points than one request may carry.
    #[error("{0} points in one request; at most {max} are accepted", max = batch::MAX_POINTS)]
    TooManyPoints(usize),
    /// No point at all.
    #[error("no position in the request")]
    Empty,
}

/// Shortens client-supplied text for error messages.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

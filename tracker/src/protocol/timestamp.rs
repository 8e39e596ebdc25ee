//! The timestamp forms the Traccar server accepts: epoch seconds, epoch milliseconds (told apart
//! as Traccar does: values from 2^31 on are milliseconds), ISO 8601 with an offset, and
//! `yyyy-MM-dd HH:mm:ss` (optionally with fractional seconds), read as UTC as Traccar does.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{ProtocolError, clip};

/// Reads a timestamp in any accepted form.
///
/// # Errors
/// [`ProtocolError::BadTimestamp`] when it is none of them or out of the representable range.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, ProtocolError> {
    let text = text.trim();
    let bad = || ProtocolError::BadTimestamp(clip(text));
    if text.is_empty() {
        return Err(bad());
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !text.contains(":")
    {
        let value: f64 = text.parse().map_err(|_| bad())?;
        return from_epoch_number(value).ok_or_else(bad);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Ok(t);
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        text,
        format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
        ),
    ) {
        return Ok(t.assume_utc());
    }
    // An unencoded `+02:00` in a query string arrives as ` 02:00`.
    if let Some(i) = text.rfind(' ')
        && i > 10
    {
        let mended = format!("{}+{}", &text[..i], &text[i + 1..]);
        if let Ok(t) = OffsetDateTime::parse(&mended, &Rfc3339) {
            return Ok(t);
        }
        if let Ok(t) = OffsetDateTime::parse(&mended, &Iso8601::DEFAULT) {
            return Ok(t);
        }
    }
    Err(bad())
}

/// Epoch seconds, or milliseconds from 2^31 on; `None` outside ±10,000 years or when not finite.
pub(crate) fn from_epoch_number(value: f64) -> Option<OffsetDateTime> {
    if !value.is_finite() {
        return None;
    }
    let seconds = if value.abs() >= 2_147_483_648.0 {
        value / 1000.0
    } else {
        value
    };
    if seconds.abs() > 253_402_300_799.0 {
        return None;
    }
    let nanos = (seconds * 1e9).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn all_three_forms_are_read() {
        let t = datetime!(2026-11-21 12:00:00 UTC);
        assert_eq!(parse_timestamp("1795262400").unwrap(), t);
        assert_eq!(parse_timestamp("1795262400000").unwrap(), t);
        assert_eq!(parse_timestamp("2026-11-21T12:00:00Z").unwrap(), t);
        assert_eq!(parse_timestamp("2026-11-21T14:00:00+02:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-11-21T14:00:00.000+0200").unwrap(), t);
        assert_eq!(parse_timestamp("2026-11-21T14:00:00 02:00").unwrap(), t);
        assert_eq!(
            parse_timestamp("1795262400.5").unwrap(),
            datetime!(2026-11-21 12:00:00.5 UTC)
        );
    }

    #[test]
    fn the_traccar_date_time_form_is_read_as_utc() {
        assert_eq!(
            parse_timestamp("2026-11-21 12:00:00").unwrap(),
            datetime!(2026-11-21 12:00:00 UTC)
        );
        assert_eq!(
            parse_timestamp(" 2026-11-21 12:00:00.250 ").unwrap(),
            datetime!(2026-11-21 12:00:00.25 UTC)
        );
        for bad in [
            "2026-11-21 12:00",
            "2026-13-21 12:00:00",
            "2026-11-21 25:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_and_offsetless_times_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-11-21T12:00:00",
            "1e999",
            "--",
            "9".repeat(40).as_str(),
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }
}

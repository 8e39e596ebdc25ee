//! Typed identifiers. Each is a cheap-to-clone shared string, so ids coming from kitchens,
//! phones or benchmark files keep their spelling, and an `OrderId` can never be passed where a
//! `CourierId` is expected.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Longest id accepted, in bytes.
const MAX_ID_LEN: usize = 128;

fn check_id(what: &'static str, value: &str) -> Result<Arc<str>, ModelError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.trim() == value
        && !value.chars().any(char::is_control);
    if ok {
        Ok(Arc::from(value))
    } else {
        Err(ModelError::InvalidId {
            what,
            value: value.chars().take(MAX_ID_LEN).collect(),
        })
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses an id: 1 to 128 characters, no control characters, no surrounding spaces.
            ///
            /// # Errors
            /// [`ModelError::InvalidId`] when the text breaks those rules.
            pub fn parse(value: impl AsRef<str>) -> Result<Self, ModelError> {
                check_id($what, value.as_ref()).map(Self)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }
    };
}

string_id!(
    /// Identifies an order, as the kitchen named it.
    OrderId,
    "order"
);
string_id!(
    /// Identifies a courier.
    CourierId,
    "courier"
);
string_id!(
    /// Identifies a restaurant (a kitchen's pickup point).
    RestaurantId,
    "restaurant"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_spelling() {
        let id = OrderId::parse("o-17/B").unwrap();
        assert_eq!(id.as_str(), "o-17/B");
        assert_eq!(id.to_string(), "o-17/B");
    }

    #[test]
    fn empty_padded_long_or_control_ids_are_rejected() {
        for bad in ["", " a", "a ", "a\nb", &"x".repeat(129)] {
            assert!(
                matches!(CourierId::parse(bad), Err(ModelError::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_deserialise_through_the_parser() {
        assert!(serde_json::from_str::<RestaurantId>("\"\"").is_err());
        let id: RestaurantId = serde_json::from_str("\"r1\"").unwrap();
        assert_eq!(id.as_str(), "r1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"r1\"");
    }
}

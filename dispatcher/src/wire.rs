//! The kitchens' message bodies of CONTRACT.md (`order.created`, `order.ready`,
//! `order.cancelled`), shared by the RabbitMQ consumer and `POST /v1/orders`, and their
//! conversion into the checked commands of [`crate::dispatch`].

use optimizer::model::{Coordinates, OrderId, RestaurantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::dispatch::{Invalid, NewOrder};

/// The largest order, in capacity units.
pub const MAX_ORDER_SIZE: u32 = 100;

/// A point on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatLon {
    /// Latitude, degrees (-90..=90).
    pub lat: f64,
    /// Longitude, degrees (-180..=180).
    pub lon: f64,
}

impl LatLon {
    /// Checked coordinates.
    ///
    /// # Errors
    /// [`Invalid`] naming `field` when out of range or not finite.
    pub fn parse(self, field: &'static str) -> Result<Coordinates, Invalid> {
        Coordinates::parse(self.lat, self.lon)
            .map_err(|e| Invalid::new("invalid_coordinates", format!("{field}: {e}")))
    }
}

impl From<Coordinates> for LatLon {
    fn from(c: Coordinates) -> Self {
        LatLon {
            lat: c.lat(),
            lon: c.lon(),
        }
    }
}

/// The restaurant of an `order.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestaurantBody {
    /// The restaurant's id.
    pub id: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// `order.created`, and the body of `POST /v1/orders`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreated {
    /// The kitchen's order id (1..=128 characters).
    pub order_id: String,
    /// Where it is cooked.
    pub restaurant: RestaurantBody,
    /// Where it goes.
    pub dropoff: LatLon,
    /// When the customer ordered (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub placed_at: OffsetDateTime,
    /// When the food will be ready (RFC 3339, not before `placed_at`).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ready_at: OffsetDateTime,
    /// The promised delivery time (RFC 3339, not before `ready_at`).
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deliver_by: Option<OffsetDateTime>,
    /// Capacity units (1..=100, default 1).
    #[serde(default)]
    pub size: Option<u32>,
}

impl TryFrom<OrderCreated> for NewOrder {
    type Error = Invalid;

    fn try_from(body: OrderCreated) -> Result<Self, Invalid> {
        let id = OrderId::parse(&body.order_id)
            .ok()
            .filter(|_| body.order_id.len() <= 128)
            .ok_or_else(|| {
                Invalid::new("invalid_order_id", "order_id must be 1..=128 characters")
            })?;
        let restaurant_id = RestaurantId::parse(&body.restaurant.id)
            .ok()
            .filter(|_| body.restaurant.id.len() <= 128)
            .ok_or_else(|| {
                Invalid::new(
                    "invalid_restaurant",
                    "restaurant.id must be 1..=128 characters",
                )
            })?;
        let restaurant = LatLon {
            lat: body.restaurant.lat,
            lon: body.restaurant.lon,
        }
        .parse("restaurant")?;
        let dropoff = body.dropoff.parse("dropoff")?;
        if body.ready_at < body.placed_at {
            return Err(Invalid::new(
                "ready_before_placed",
                "ready_at must not be before placed_at",
            ));
        }
        if let Some(by) = body.deliver_by
            && by < body.ready_at
        {
            return Err(Invalid::new(
                "deliver_by_before_ready",
                "deliver_by must not be before ready_at",
            ));
        }
        let size = body.size.unwrap_or(1);
        if size == 0 || size > MAX_ORDER_SIZE {
            return Err(Invalid::new(
                "invalid_size",
                format!("size must be 1..={MAX_ORDER_SIZE}"),
            ));
        }
        Ok(NewOrder {
            id,
            restaurant_id,
            restaurant,
            dropoff,
            placed_at: body.placed_at,
            ready_at: body.ready_at,
            deliver_by: body.deliver_by,
            size,
        })
    }
}

/// `order.ready`: the kitchen's new ready time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderReady {
    /// The order.
    pub order_id: String,
    /// When the food will be ready (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ready_at: OffsetDateTime,
}

/// `order.cancelled`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: String,
}

/// An order id from the wire.
///
/// # Errors
/// [`Invalid`] when empty or longer than 128 characters.
pub fn order_id(text: &str) -> Result<OrderId, Invalid> {
    OrderId::parse(text)
        .ok()
        .filter(|_| text.len() <= 128)
        .ok_or_else(|| Invalid::new("invalid_order_id", "order_id must be 1..=128 characters"))
}

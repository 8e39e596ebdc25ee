//! Who a device or courier is: the courier behind a device id and the vehicle they ride, read
//! from `devices` and `couriers` and cached for a short while, so the hot path rarely queries.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use optimizer::model::{CourierId, VehicleKind};
use service::cache::TtlCache;
use sqlx::PgPool;

/// A courier as the tracker needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourierInfo {
    /// Who.
    pub courier_id: CourierId,
    /// What they ride, for the jump check.
    pub vehicle: VehicleKind,
}

/// The lookup failed (not: found nothing).
#[derive(Debug, thiserror::Error)]
#[error("courier lookup failed")]
pub struct LookupError(#[source] pub sqlx::Error);

/// Finds couriers by device or id.
pub trait CourierDirectory: Send + Sync + 'static {
    /// The courier a device belongs to, if any.
    fn by_device<'a>(
        &'a self,
        device_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>>;

    /// The courier with this id, if any.
    fn by_courier<'a>(
        &'a self,
        courier_id: &'a CourierId,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>>;
}

/// [`CourierDirectory`] on PostgreSQL.
pub struct PgCourierDirectory {
    pool: PgPool,
    devices: TtlCache<CourierInfo>,
    couriers: TtlCache<CourierInfo>,
}

impl PgCourierDirectory {
    /// A directory reading through `pool`, caching hits for `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        PgCourierDirectory {
            pool,
            devices: TtlCache::new(ttl),
            couriers: TtlCache::new(ttl),
        }
    }

    /// Loads every device into the cache (at start, so the first requests need no query).
    ///
    /// # Errors
    /// When the query fails.
    pub async fn preload(&self) -> Result<usize, LookupError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT d.device_id, c.id, c.vehicle FROM devices d JOIN couriers c ON c.id = d.courier_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(LookupError)?;
        let n = rows.len();
        for (device, courier, vehicle) in rows {
            if let Some(info) = info(&courier, &vehicle) {
                self.couriers
                    .put(info.courier_id.as_str(), Some(info.clone()));
                self.devices.put(&device, Some(info));
            }
        }
        Ok(n)
    }
}

fn info(courier: &str, vehicle: &str) -> Option<CourierInfo> {
    Some(CourierInfo {
        courier_id: CourierId::parse(courier).ok()?,
        vehicle: vehicle.parse().ok()?,
    })
}

impl CourierDirectory for PgCourierDirectory {
    fn by_device<'a>(
        &'a self,
        device_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        Box::pin(async move {
            if let Some(hit) = self.devices.get(device_id) {
                return Ok(hit);
            }
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT c.id, c.vehicle FROM devices d JOIN couriers c ON c.id = d.courier_id \
                 WHERE d.device_id = $1",
            )
            .bind(device_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(LookupError)?;
            let found = row.and_then(|(c, v)| info(&c, &v));
            self.devices.put(device_id, found.clone());
            Ok(found)
        })
    }

    fn by_courier<'a>(
        &'a self,
        courier_id: &'a CourierId,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        Box::pin(async move {
            if let Some(hit) = self.couriers.get(courier_id.as_str()) {
                return Ok(hit);
            }
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT id, vehicle FROM couriers WHERE id = $1")
                    .bind(courier_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(LookupError)?;
            let found = row.and_then(|(c, v)| info(&c, &v));
            self.couriers.put(courier_id.as_str(), found.clone());
            Ok(found)
        })
    }
}

/// A fixed in-memory directory, for tests and the in-memory demo.
#[derive(Default)]
pub struct StaticDirectory {
    /// Device id to courier.
    pub devices: HashMap<String, CourierInfo>,
}

impl StaticDirectory {
    /// Adds a courier with one device.
    #[must_use]
    pub fn with(mut self, device_id: &str, courier_id: &str, vehicle: VehicleKind) -> Self {
        let courier_id = CourierId::parse(courier_id).expect("test courier ids are valid");
        self.devices.insert(
            device_id.into(),
            CourierInfo {
                courier_id,
                vehicle,
            },
        );
        self
    }
}

impl CourierDirectory for StaticDirectory {
    fn by_device<'a>(
        &'a self,
        device_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        Box::pin(async move { Ok(self.devices.get(device_id).cloned()) })
    }

    fn by_courier<'a>(
        &'a self,
        courier_id: &'a CourierId,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        Box::pin(async move {
            Ok(self
                .devices
                .values()
                .find(|i| &i.courier_id == courier_id)
                .cloned())
        })
    }
}

//! PostgreSQL storage on the schema in `migrations/`.
//!
//! A [`Batch`] is one short transaction. Each kind of row is written with one statement for the
//! whole batch (rows travel as a `jsonb` array read with `jsonb_to_recordset`), because the
//! planner commits hundreds of rows at a time and round trips dominate. Queries are checked at
//! run time (`sqlx::query`), so building needs no database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use optimizer::model::{Coordinates, CourierId, OrderId, OrderStatus, RestaurantId, VehicleKind};
use serde::Serialize;
use service::auth::{PgTokenVerifier, Role, TokenVerifier};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgDatabaseError;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::{Batch, OrderQuery, Snapshot, Store, StoreError};
use crate::records::{
    Actor, AssignmentChange, CourierRecord, OrderRecord, OutboxEvent, RouteRecord, RouteStop,
    TimelineEntry,
};

/// How long `healthy` waits for `SELECT 1`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The most orders one [`Store::orders`] page returns.
const MAX_PAGE: usize = 500;

/// How long a token check is cached unless [`PgStore::with_token_ttl`] says otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The store over a PostgreSQL pool.
#[derive(Clone)]
pub struct PgStore {
    /// Connections; each call holds one only for the length of its statement or transaction.
    pool: PgPool,
    /// Checks `api_tokens` through the same pool; one instance, so its cache is shared.
    verifier: Arc<PgTokenVerifier>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("pool", &self.pool).finish()
    }
}

impl PgStore {
    /// A store on `pool`, whose database has the migrations applied.
    pub fn new(pool: PgPool) -> Self {
        PgStore {
            verifier: Arc::new(PgTokenVerifier::new(pool.clone(), DEFAULT_TOKEN_TTL)),
            pool,
        }
    }

    /// Caches token checks for `ttl` (a revocation takes effect within it).
    #[must_use]
    pub fn with_token_ttl(mut self, ttl: Duration) -> Self {
        self.verifier = Arc::new(PgTokenVerifier::new(self.pool.clone(), ttl));
        self
    }

    /// The pool, for callers that share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The columns of an [`OrderRecord`], in the order [`OrderRow`] reads them.
macro_rules! order_columns {
    () => {
        "id, restaurant_id, restaurant_lat, restaurant_lon, dropoff_lat, dropoff_lon, \
         placed_at, ready_at, deliver_by, size, status, courier_id, pinned, pickup_eta, \
         dropoff_eta, picked_up_at, delivered_at, finished_at, failed_reason, \
         unassigned_reason, coalesce(tracking_id, '') AS tracking_id, moves, spec_hash"
    };
}

/// The columns of a [`CourierRecord`] with its device, from `couriers c` and `devices d`.
macro_rules! courier_query {
    () => {
        "SELECT c.id, c.name, c.vehicle, c.capacity, coalesce(d.device_id, '') AS device_id, \
                c.on_shift, c.shift_ends_at, c.created_at \
         FROM couriers c \
         LEFT JOIN LATERAL (SELECT device_id FROM devices WHERE courier_id = c.id \
                            ORDER BY created_at DESC, device_id LIMIT 1) d ON true \
         ORDER BY c.id"
    };
}

#[async_trait]
impl Store for PgStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        // One snapshot of the three tables, so a restart never sees half of a batch.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| fail(e, "beginning the load"))?;
        let orders: Vec<OrderRow> = sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE status IN ('created', 'assigned', 'picked_up') \
              ORDER BY placed_at, id COLLATE \"C\""
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| fail(e, "loading open orders"))?;
        let couriers: Vec<CourierRow> = sqlx::query_as(courier_query!())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| fail(e, "loading couriers"))?;
        let routes: Vec<RouteRow> = sqlx::query_as(
            "SELECT courier_id, seq, stops, updated_at FROM courier_routes \
             ORDER BY courier_id COLLATE \"C\"",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| fail(e, "loading routes"))?;
        tx.commit().await.map_err(|e| fail(e, "ending the load"))?;
        Ok(Snapshot {
            open_orders: orders
                .into_iter()
                .map(OrderRecord::try_from)
                .collect::<Result<_, _>>()?,
            couriers: couriers
                .into_iter()
                .map(CourierRecord::try_from)
                .collect::<Result<_, _>>()?,
            routes: routes
                .into_iter()
                .map(RouteRecord::try_from)
                .collect::<Result<_, _>>()?,
        })
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| fail(e, "beginning a commit"))?;
        write_batch(&mut tx, &batch).await?;
        tx.commit().await.map_err(|e| fail(e, "committing a batch"))
    }

    async fn seen(&self, message_id: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM inbox WHERE message_id = $1)")
            .bind(message_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| fail(e, "reading the inbox"))
    }

    async fn order(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| fail(e, "reading an order"))?;
        row.map(OrderRecord::try_from).transpose()
    }

    async fn order_by_tracking_id(
        &self,
        tracking_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE tracking_id = $1"
        ))
        .bind(tracking_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| fail(e, "reading an order by tracking id"))?;
        row.map(OrderRecord::try_from).transpose()
    }

    async fn orders(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>, StoreError> {
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        let restaurants: Vec<&str> = query.restaurants.iter().map(|r| r.as_str()).collect();
        let now = query.now.unwrap_or_else(OffsetDateTime::now_utc);
        let (after_placed, after_id) = match &query.after {
            Some((at, id)) => (Some(*at), Some(id.as_str())),
            None => (None, None),
        };
        let limit = query.limit.clamp(1, MAX_PAGE) as i64;
        // Ids compare byte-wise (`COLLATE "C"`), as `OrderId`'s `Ord` does in memory.
        let rows: Vec<OrderRow> = sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders \
              WHERE (cardinality($1::text[]) = 0 OR status = ANY($1)) \
                AND (cardinality($2::text[]) = 0 OR restaurant_id = ANY($2)) \
                AND ($3::text IS NULL OR courier_id = $3) \
                AND ($4::boolean IS NULL OR $4 = (deliver_by IS NOT NULL AND CASE \
                      WHEN delivered_at IS NOT NULL THEN delivered_at > deliver_by \
                      WHEN status IN ('created', 'assigned', 'picked_up') \
                        THEN greatest(coalesce(dropoff_eta, $5), $5) > deliver_by \
                      ELSE false END)) \
                AND ($6::timestamptz IS NULL \
                     OR (placed_at, id COLLATE \"C\") < ($6, $7::text COLLATE \"C\")) \
              ORDER BY placed_at DESC, id COLLATE \"C\" DESC \
              LIMIT $8"
        ))
        .bind(&statuses)
        .bind(&restaurants)
        .bind(query.courier.as_ref().map(CourierId::as_str))
        .bind(query.late)
        .bind(now)
        .bind(after_placed)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| fail(e, "listing orders"))?;
        rows.into_iter().map(OrderRecord::try_from).collect()
    }

    async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows: Vec<TimelineRow> = sqlx::query_as(
            "SELECT order_id, at, kind, actor, payload FROM order_events \
             WHERE order_id = $1 ORDER BY at, id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| fail(e, "reading a timeline"))?;
        rows.into_iter().map(TimelineEntry::try_from).collect()
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, message_id, routing_key, payload, created_at FROM outbox \
             WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| fail(e, "reading the outbox"))?;
        Ok(rows.into_iter().map(OutboxEvent::from).collect())
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1) AND sent_at IS NULL")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(|e| fail(e, "marking outbox events sent"))?;
        Ok(())
    }

    async fn create_token(
        &self,
        role: Role,
        courier: Option<&CourierId>,
        restaurants: &[RestaurantId],
    ) -> Result<String, StoreError> {
        Ok(service::auth::create_token(&self.pool, role, courier, restaurants).await?)
    }

    fn verifier(&self) -> Arc<dyn TokenVerifier> {
        self.verifier.clone()
    }

    async fn healthy(&self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(tokio::time::timeout(HEALTH_TIMEOUT, ping).await, Ok(Ok(_)))
    }
}

/// Writes every part of `batch` in `tx`; the caller commits. Any error leaves `tx` to be rolled
/// back (dropping it does).
async fn write_batch(
    tx: &mut Transaction<'static, Postgres>,
    batch: &Batch,
) -> Result<(), StoreError> {
    if let Some(key) = &batch.inbox {
        let inserted = sqlx::query(
            "INSERT INTO inbox (message_id, routing_key) VALUES ($1, $2) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&key.message_id)
        .bind(&key.routing_key)
        .execute(&mut **tx)
        .await
        .map_err(|e| fail(e, "recording the inbox key"))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate(key.message_id.clone()));
        }
    }
    // Couriers before orders, assignments and routes, which reference them.
    write_couriers(tx, &batch.couriers).await?;
    write_orders(tx, &batch.orders, &batch.new_orders).await?;
    write_assignments(tx, &batch.assignments).await?;
    write_routes(tx, &batch.routes).await?;
    write_timeline(tx, &batch.timeline).await?;
    write_outbox(tx, &batch.outbox).await
}

/// Upserts couriers and their device rows; a courier's other devices are removed, so each has
/// the one device its record names.
async fn write_couriers(
    tx: &mut Transaction<'static, Postgres>,
    couriers: &[CourierRecord],
) -> Result<(), StoreError> {
    if couriers.is_empty() {
        return Ok(());
    }
    let rows: Vec<CourierIn<'_>> = last_per_key(couriers, |c| c.id.as_str())
        .into_iter()
        .map(CourierIn::from)
        .collect();
    sqlx::query(
        "INSERT INTO couriers (id, name, vehicle, capacity, on_shift, shift_ends_at, created_at) \
         SELECT id, name, vehicle, capacity, on_shift, shift_ends_at, created_at \
         FROM jsonb_to_recordset($1) AS x(id text, name text, vehicle text, capacity integer, \
              on_shift boolean, shift_ends_at timestamptz, created_at timestamptz) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, vehicle = EXCLUDED.vehicle, \
              capacity = EXCLUDED.capacity, on_shift = EXCLUDED.on_shift, \
              shift_ends_at = EXCLUDED.shift_ends_at, created_at = EXCLUDED.created_at, \
              updated_at = now()",
    )
    .bind(Json(&rows))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "writing couriers"))?;
    sqlx::query(
        "DELETE FROM devices d USING jsonb_to_recordset($1) AS x(id text, device_id text) \
         WHERE d.courier_id = x.id AND d.device_id <> x.device_id",
    )
    .bind(Json(&rows))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "removing replaced devices"))?;
    sqlx::query(
        "INSERT INTO devices (device_id, courier_id) \
         SELECT device_id, id FROM jsonb_to_recordset($1) AS x(id text, device_id text) \
         WHERE device_id <> '' \
         ON CONFLICT (device_id) DO UPDATE SET courier_id = EXCLUDED.courier_id",
    )
    .bind(Json(&rows))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "writing devices"))?;
    Ok(())
}

/// Upserts orders; one of `new_orders` whose id exists is left alone and makes the batch stale.
async fn write_orders(
    tx: &mut Transaction<'static, Postgres>,
    orders: &[OrderRecord],
    new_orders: &[OrderId],
) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    let rows: Vec<OrderIn<'_>> = last_per_key(orders, |o| o.id.as_str())
        .into_iter()
        .map(OrderIn::from)
        .collect();
    let new: Vec<&str> = new_orders.iter().map(OrderId::as_str).collect();
    // A conflicting new order is skipped by the WHERE (so it does not come back): that also
    // covers a concurrent create, which waits for the other transaction and then conflicts.
    let written: Vec<String> = sqlx::query_scalar(
        "INSERT INTO orders (id, restaurant_id, restaurant_lat, restaurant_lon, dropoff_lat, \
              dropoff_lon, placed_at, ready_at, deliver_by, size, status, courier_id, pinned, \
              pickup_eta, dropoff_eta, picked_up_at, delivered_at, finished_at, failed_reason, \
              unassigned_reason, tracking_id, moves, spec_hash) \
         SELECT id, restaurant_id, restaurant_lat, restaurant_lon, dropoff_lat, dropoff_lon, \
              placed_at, ready_at, deliver_by, size, status, courier_id, pinned, pickup_eta, \
              dropoff_eta, picked_up_at, delivered_at, finished_at, failed_reason, \
              unassigned_reason, nullif(tracking_id, ''), moves, spec_hash \
         FROM jsonb_to_recordset($1) AS x(id text, restaurant_id text, \
              restaurant_lat double precision, restaurant_lon double precision, \
              dropoff_lat double precision, dropoff_lon double precision, \
              placed_at timestamptz, ready_at timestamptz, deliver_by timestamptz, \
              size integer, status text, courier_id text, pinned boolean, \
              pickup_eta timestamptz, dropoff_eta timestamptz, picked_up_at timestamptz, \
              delivered_at timestamptz, finished_at timestamptz, failed_reason text, \
              unassigned_reason text, tracking_id text, moves integer, spec_hash text) \
         ON CONFLICT (id) DO UPDATE SET restaurant_id = EXCLUDED.restaurant_id, \
              restaurant_lat = EXCLUDED.restaurant_lat, restaurant_lon = EXCLUDED.restaurant_lon, \
              dropoff_lat = EXCLUDED.dropoff_lat, dropoff_lon = EXCLUDED.dropoff_lon, \
              placed_at = EXCLUDED.placed_at, ready_at = EXCLUDED.ready_at, \
              deliver_by = EXCLUDED.deliver_by, size = EXCLUDED.size, status = EXCLUDED.status, \
              courier_id = EXCLUDED.courier_id, pinned = EXCLUDED.pinned, \
              pickup_eta = EXCLUDED.pickup_eta, dropoff_eta = EXCLUDED.dropoff_eta, \
              picked_up_at = EXCLUDED.picked_up_at, delivered_at = EXCLUDED.delivered_at, \
              finished_at = EXCLUDED.finished_at, failed_reason = EXCLUDED.failed_reason, \
              unassigned_reason = EXCLUDED.unassigned_reason, \
              tracking_id = EXCLUDED.tracking_id, moves = EXCLUDED.moves, \
              spec_hash = EXCLUDED.spec_hash, updated_at = now() \
           WHERE orders.id <> ALL($2::text[]) \
         RETURNING id",
    )
    .bind(Json(&rows))
    .bind(&new)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| fail(e, "writing orders"))?;
    if written.len() < rows.len() {
        let written: HashSet<&str> = written.iter().map(String::as_str).collect();
        let stale = rows
            .iter()
            .map(|r| r.id)
            .find(|id| !written.contains(id))
            .unwrap_or_default();
        return Err(StoreError::Stale(format!("order {stale} already exists")));
    }
    Ok(())
}

/// Applies assignment changes in batch order: per order, its open assignment (if any) is
/// released at the first change, and each `Open` starts a row that a later change of the same
/// batch may release again.
async fn write_assignments(
    tx: &mut Transaction<'static, Postgres>,
    changes: &[AssignmentChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut releases: Vec<ReleaseIn<'_>> = Vec::new();
    let mut opened: Vec<AssignmentIn<'_>> = Vec::new();
    let mut open_row: HashMap<&str, usize> = HashMap::new();
    for change in changes {
        let (order_id, at) = match change {
            AssignmentChange::Open { order_id, at, .. }
            | AssignmentChange::Release { order_id, at } => (order_id.as_str(), *at),
        };
        if !releases.iter().any(|r| r.order_id == order_id) {
            releases.push(ReleaseIn { order_id, at });
        }
        if let Some(i) = open_row.remove(order_id) {
            opened[i].released_at = Some(at);
        }
        if let AssignmentChange::Open {
            courier_id,
            by_staff,
            pickup_eta,
            ..
        } = change
        {
            open_row.insert(order_id, opened.len());
            opened.push(AssignmentIn {
                order_id,
                courier_id: courier_id.as_str(),
                assigned_at: at,
                released_at: None,
                source: if *by_staff { "staff" } else { "optimizer" },
                pickup_eta: *pickup_eta,
            });
        }
    }
    let order_ids: Vec<&str> = releases.iter().map(|r| r.order_id).collect();
    let missing: Option<String> = sqlx::query_scalar(
        "SELECT x.id FROM unnest($1::text[]) AS x(id) \
         WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = x.id) LIMIT 1",
    )
    .bind(&order_ids)
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| fail(e, "checking assigned orders"))?;
    if let Some(id) = missing {
        return Err(StoreError::NotFound(format!("order {id}")));
    }
    sqlx::query(
        "UPDATE assignments a SET released_at = x.at \
         FROM jsonb_to_recordset($1) AS x(order_id text, at timestamptz) \
         WHERE a.order_id = x.order_id AND a.released_at IS NULL",
    )
    .bind(Json(&releases))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "releasing assignments"))?;
    if !opened.is_empty() {
        sqlx::query(
            "INSERT INTO assignments (order_id, courier_id, assigned_at, released_at, source, \
                  pickup_eta) \
             SELECT order_id, courier_id, assigned_at, released_at, source, pickup_eta \
             FROM jsonb_to_recordset($1) AS x(order_id text, courier_id text, \
                  assigned_at timestamptz, released_at timestamptz, source text, \
                  pickup_eta timestamptz)",
        )
        .bind(Json(&opened))
        .execute(&mut **tx)
        .await
        .map_err(|e| fail(e, "opening assignments"))?;
    }
    Ok(())
}

/// Replaces routes whose `seq` grows; a route that does not grow makes the batch stale.
async fn write_routes(
    tx: &mut Transaction<'static, Postgres>,
    routes: &[RouteRecord],
) -> Result<(), StoreError> {
    if routes.is_empty() {
        return Ok(());
    }
    let rows: Vec<RouteIn<'_>> = last_per_key(routes, |r| r.courier_id.as_str())
        .into_iter()
        .map(RouteIn::from)
        .collect();
    let written: Vec<String> = sqlx::query_scalar(
        "INSERT INTO courier_routes (courier_id, seq, stops, updated_at) \
         SELECT courier_id, seq, stops, updated_at \
         FROM jsonb_to_recordset($1) AS x(courier_id text, seq bigint, stops jsonb, \
              updated_at timestamptz) \
         ON CONFLICT (courier_id) DO UPDATE SET seq = EXCLUDED.seq, stops = EXCLUDED.stops, \
              updated_at = EXCLUDED.updated_at \
           WHERE courier_routes.seq < EXCLUDED.seq \
         RETURNING courier_id",
    )
    .bind(Json(&rows))
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| fail(e, "writing routes"))?;
    if written.len() < rows.len() {
        let written: HashSet<&str> = written.iter().map(String::as_str).collect();
        let stale = rows
            .iter()
            .find(|r| !written.contains(r.courier_id))
            .map(|r| format!("route {} of courier {} does not grow", r.seq, r.courier_id))
            .unwrap_or_default();
        return Err(StoreError::Stale(stale));
    }
    Ok(())
}

/// Appends timeline entries in batch order.
async fn write_timeline(
    tx: &mut Transaction<'static, Postgres>,
    entries: &[TimelineEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<TimelineIn<'_>> = entries
        .iter()
        .enumerate()
        .map(|(n, e)| TimelineIn {
            n,
            order_id: e.order_id.as_str(),
            at: e.at,
            kind: &e.kind,
            actor: e.actor.as_stored(),
            payload: &e.detail,
        })
        .collect();
    sqlx::query(
        "INSERT INTO order_events (order_id, at, kind, actor, payload) \
         SELECT order_id, at, kind, actor, payload \
         FROM jsonb_to_recordset($1) AS x(n bigint, order_id text, at timestamptz, kind text, \
              actor text, payload jsonb) \
         ORDER BY n",
    )
    .bind(Json(&rows))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "appending timeline entries"))?;
    Ok(())
}

/// Inserts outbox events in batch order; one whose `message_id` is stored already is the same
/// event and is skipped.
async fn write_outbox(
    tx: &mut Transaction<'static, Postgres>,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<OutboxIn<'_>> = events
        .iter()
        .enumerate()
        .map(|(n, e)| OutboxIn {
            n,
            message_id: &e.message_id,
            routing_key: &e.routing_key,
            payload: &e.payload,
            created_at: e.created_at,
        })
        .collect();
    sqlx::query(
        "INSERT INTO outbox (message_id, routing_key, payload, created_at) \
         SELECT message_id, routing_key, payload, created_at \
         FROM jsonb_to_recordset($1) AS x(n bigint, message_id text, routing_key text, \
              payload jsonb, created_at timestamptz) \
         ORDER BY n \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(Json(&rows))
    .execute(&mut **tx)
    .await
    .map_err(|e| fail(e, "writing outbox events"))?;
    Ok(())
}

/// The records with the last of each key, in the order of their last occurrence: one statement
/// cannot upsert a row twice.
fn last_per_key<'a, T>(records: &'a [T], key: impl Fn(&'a T) -> &'a str) -> Vec<&'a T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<&T> = records
        .iter()
        .rev()
        .filter(|r| seen.insert(key(*r)))
        .collect();
    kept.reverse();
    kept
}

/// Maps a database error to the store's: a missing reference is [`StoreError::NotFound`], a
/// clash with an existing order id [`StoreError::Stale`], anything else (connection, I/O, pool
/// timeout, a violated check) [`StoreError::Unavailable`] with `context`.
fn fail(error: sqlx::Error, context: &'static str) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        let detail = db
            .try_downcast_ref::<PgDatabaseError>()
            .and_then(PgDatabaseError::detail)
            .unwrap_or_else(|| db.message())
            .to_string();
        match db.kind() {
            ErrorKind::ForeignKeyViolation => {
                return StoreError::NotFound(format!("{context}: {detail}"));
            }
            ErrorKind::UniqueViolation if db.constraint() == Some("orders_pkey") => {
                return StoreError::Stale(format!("{context}: {detail}"));
            }
            _ => {}
        }
    }
    StoreError::Unavailable(anyhow::Error::new(error).context(context))
}

/// A stored value that does not parse into a record: the database holds what this code never
/// writes.
fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(anyhow!("stored {what} is invalid: {error}"))
}

fn non_negative(what: &str, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

/// An order as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct OrderIn<'a> {
    id: &'a str,
    restaurant_id: &'a str,
    restaurant_lat: f64,
    restaurant_lon: f64,
    dropoff_lat: f64,
    dropoff_lon: f64,
    #[serde(with = "time::serde::rfc3339")]
    placed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    ready_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    deliver_by: Option<OffsetDateTime>,
    size: u32,
    status: &'static str,
    courier_id: Option<&'a str>,
    pinned: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pickup_eta: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    dropoff_eta: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    picked_up_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    delivered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    failed_reason: Option<&'a str>,
    unassigned_reason: Option<&'a str>,
    tracking_id: &'a str,
    moves: u32,
    spec_hash: &'a str,
}

impl<'a> From<&'a OrderRecord> for OrderIn<'a> {
    fn from(o: &'a OrderRecord) -> Self {
        OrderIn {
            id: o.id.as_str(),
            restaurant_id: o.restaurant_id.as_str(),
            restaurant_lat: o.restaurant.lat(),
            restaurant_lon: o.restaurant.lon(),
            dropoff_lat: o.dropoff.lat(),
            dropoff_lon: o.dropoff.lon(),
            placed_at: o.placed_at,
            ready_at: o.ready_at,
            deliver_by: o.deliver_by,
            size: o.size,
            status: o.status.as_str(),
            courier_id: o.courier_id.as_ref().map(CourierId::as_str),
            pinned: o.pinned,
            pickup_eta: o.pickup_eta,
            dropoff_eta: o.dropoff_eta,
            picked_up_at: o.picked_up_at,
            delivered_at: o.delivered_at,
            finished_at: o.finished_at,
            failed_reason: o.failed_reason.as_deref(),
            unassigned_reason: o.unassigned_reason.as_deref(),
            tracking_id: &o.tracking_id,
            moves: o.moves,
            spec_hash: &o.spec_hash,
        }
    }
}

/// An order row as selected by `order_columns!`.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    restaurant_id: String,
    restaurant_lat: f64,
    restaurant_lon: f64,
    dropoff_lat: f64,
    dropoff_lon: f64,
    placed_at: OffsetDateTime,
    ready_at: OffsetDateTime,
    deliver_by: Option<OffsetDateTime>,
    size: i32,
    status: String,
    courier_id: Option<String>,
    pinned: bool,
    pickup_eta: Option<OffsetDateTime>,
    dropoff_eta: Option<OffsetDateTime>,
    picked_up_at: Option<OffsetDateTime>,
    delivered_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    failed_reason: Option<String>,
    unassigned_reason: Option<String>,
    tracking_id: String,
    moves: i32,
    spec_hash: String,
}

impl TryFrom<OrderRow> for OrderRecord {
    type Error = StoreError;

    fn try_from(r: OrderRow) -> Result<Self, StoreError> {
        Ok(OrderRecord {
            id: OrderId::parse(&r.id).map_err(|e| corrupt("order id", e))?,
            restaurant_id: RestaurantId::parse(&r.restaurant_id)
                .map_err(|e| corrupt("restaurant id", e))?,
            restaurant: Coordinates::parse(r.restaurant_lat, r.restaurant_lon)
                .map_err(|e| corrupt("restaurant position", e))?,
            dropoff: Coordinates::parse(r.dropoff_lat, r.dropoff_lon)
                .map_err(|e| corrupt("drop-off position", e))?,
            placed_at: r.placed_at,
            ready_at: r.ready_at,
            deliver_by: r.deliver_by,
            size: non_negative("order size", r.size)?,
            status: r
                .status
                .parse::<OrderStatus>()
                .map_err(|e| corrupt("order status", e))?,
            courier_id: r
                .courier_id
                .map(CourierId::parse)
                .transpose()
                .map_err(|e| corrupt("courier id", e))?,
            pinned: r.pinned,
            pickup_eta: r.pickup_eta,
            dropoff_eta: r.dropoff_eta,
            picked_up_at: r.picked_up_at,
            delivered_at: r.delivered_at,
            finished_at: r.finished_at,
            failed_reason: r.failed_reason,
            unassigned_reason: r.unassigned_reason,
            tracking_id: r.tracking_id,
            moves: non_negative("order moves", r.moves)?,
            spec_hash: r.spec_hash,
        })
    }
}

/// A courier as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct CourierIn<'a> {
    id: &'a str,
    name: &'a str,
    vehicle: String,
    capacity: u32,
    device_id: &'a str,
    on_shift: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    shift_ends_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl<'a> From<&'a CourierRecord> for CourierIn<'a> {
    fn from(c: &'a CourierRecord) -> Self {
        CourierIn {
            id: c.id.as_str(),
            name: &c.name,
            vehicle: c.vehicle.to_string(),
            capacity: c.capacity,
            device_id: &c.device_id,
            on_shift: c.on_shift,
            shift_ends_at: c.shift_ends_at,
            created_at: c.created_at,
        }
    }
}

/// A courier row with its device, as `courier_query!` selects it.
#[derive(sqlx::FromRow)]
struct CourierRow {
    id: String,
    name: String,
    vehicle: String,
    capacity: i32,
    device_id: String,
    on_shift: bool,
    shift_ends_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl TryFrom<CourierRow> for CourierRecord {
    type Error = StoreError;

    fn try_from(r: CourierRow) -> Result<Self, StoreError> {
        Ok(CourierRecord {
            id: CourierId::parse(&r.id).map_err(|e| corrupt("courier id", e))?,
            name: r.name,
            vehicle: r
                .vehicle
                .parse::<VehicleKind>()
                .map_err(|e| corrupt("vehicle", e))?,
            capacity: non_negative("capacity", r.capacity)?,
            device_id: r.device_id,
            on_shift: r.on_shift,
            shift_ends_at: r.shift_ends_at,
            created_at: r.created_at,
        })
    }
}

/// A route as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct RouteIn<'a> {
    courier_id: &'a str,
    seq: u64,
    stops: &'a [RouteStop],
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a RouteRecord> for RouteIn<'a> {
    fn from(r: &'a RouteRecord) -> Self {
        RouteIn {
            courier_id: r.courier_id.as_str(),
            seq: r.seq,
            stops: &r.stops,
            updated_at: r.updated_at,
        }
    }
}

/// A stored route.
#[derive(sqlx::FromRow)]
struct RouteRow {
    courier_id: String,
    seq: i64,
    stops: Json<Vec<RouteStop>>,
    updated_at: OffsetDateTime,
}

impl TryFrom<RouteRow> for RouteRecord {
    type Error = StoreError;

    fn try_from(r: RouteRow) -> Result<Self, StoreError> {
        Ok(RouteRecord {
            courier_id: CourierId::parse(&r.courier_id).map_err(|e| corrupt("courier id", e))?,
            seq: u64::try_from(r.seq).map_err(|e| corrupt("route seq", e))?,
            stops: r.stops.0,
            updated_at: r.updated_at,
        })
    }
}

/// The end of an order's open assignment.
#[derive(Serialize)]
struct ReleaseIn<'a> {
    order_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// An assignment row started by the batch (possibly also ended by it).
#[derive(Serialize)]
struct AssignmentIn<'a> {
    order_id: &'a str,
    courier_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    assigned_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    released_at: Option<OffsetDateTime>,
    source: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pickup_eta: Option<OffsetDateTime>,
}

/// A timeline entry as `jsonb_to_recordset` reads it; `n` keeps the batch's order.
#[derive(Serialize)]
struct TimelineIn<'a> {
    n: usize,
    order_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    kind: &'a str,
    actor: String,
    payload: &'a serde_json::Value,
}

/// A stored timeline entry.
#[derive(sqlx::FromRow)]
struct TimelineRow {
    order_id: String,
    at: OffsetDateTime,
    kind: String,
    actor: String,
    payload: Json<serde_json::Value>,
}

impl TryFrom<TimelineRow> for TimelineEntry {
    type Error = StoreError;

    fn try_from(r: TimelineRow) -> Result<Self, StoreError> {
        Ok(TimelineEntry {
            order_id: OrderId::parse(&r.order_id).map_err(|e| corrupt("order id", e))?,
            at: r.at,
            kind: r.kind,
            actor: Actor::from_stored(&r.actor),
            detail: r.payload.0,
        })
    }
}

/// An outbox event as `jsonb_to_recordset` reads it; `n` keeps the batch's order.
#[derive(Serialize)]
struct OutboxIn<'a> {
    n: usize,
    message_id: &'a str,
    routing_key: &'a str,
    payload: &'a serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// A stored outbox event.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    message_id: String,
    routing_key: String,
    payload: Json<serde_json::Value>,
    created_at: OffsetDateTime,
}

impl From<OutboxRow> for OutboxEvent {
    fn from(r: OutboxRow) -> Self {
        OutboxEvent {
            id: r.id,
            message_id: r.message_id,
            routing_key: r.routing_key,
            payload: r.payload.0,
            created_at: r.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::last_per_key;

    #[test]
    fn the_last_record_of_each_key_is_kept_in_order() {
        let records = [("a", 1), ("b", 2), ("a", 3), ("c", 4)];
        let kept: Vec<_> = last_per_key(&records, |r| r.0)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(kept, [("b", 2), ("a", 3), ("c", 4)]);
    }
}

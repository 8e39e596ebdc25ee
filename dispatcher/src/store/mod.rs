//! Storage behind one trait: every change the dispatcher makes is a [`Batch`] committed as a
//! unit (records, assignments, routes, timeline, outbox events and the inbox key of the message
//! that caused it), so a crash leaves either all of it or none.
//!
//! [`PgStore`] keeps it in PostgreSQL on the schema in `migrations/`; [`MemoryStore`] keeps it
//! in memory for `dispatcher demo`. Both obey the same rules, checked by one contract suite
//! (`tests/api/store_contract.rs`) that runs against each.

mod memory;
mod pg;

use std::sync::Arc;

use async_trait::async_trait;
use optimizer::model::{CourierId, OrderId, OrderStatus, RestaurantId};
use service::auth::{CreateTokenError, Role, TokenVerifier};
use time::OffsetDateTime;

pub use memory::MemoryStore;
pub use pg::PgStore;

use crate::records::{
    AssignmentChange, CourierRecord, InboxKey, OrderRecord, OutboxEvent, RouteRecord, TimelineEntry,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The batch's inbox key was already committed: the message was processed before, and
    /// nothing of this batch was written.
    #[error("message {0} was already processed")]
    Duplicate(String),
    /// A route's sequence number is not above the stored one, or an order's id already exists
    /// where the batch creates it: the caller's view is stale; nothing was written.
    #[error("stale write: {0}")]
    Stale(String),
    /// A referenced row is missing (unknown courier or order).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request does not fit the rules (a token scope that does not fit its role); nothing
    /// was written.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store cannot be reached or failed; whether a commit took effect is unknown.
    #[error("storage is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// One change, written atomically. Records are whole rows (upserts).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The message or request that caused the change; committing it twice fails with
    /// [`StoreError::Duplicate`].
    pub inbox: Option<InboxKey>,
    /// Orders created or changed.
    pub orders: Vec<OrderRecord>,
    /// Orders this batch creates (subset of `orders` by id): storing one whose id exists is
    /// [`StoreError::Stale`].
    pub new_orders: Vec<OrderId>,
    /// Couriers created or changed.
    pub couriers: Vec<CourierRecord>,
    /// Assignments opened or released.
    pub assignments: Vec<AssignmentChange>,
    /// Routes replaced; each `seq` must be above the stored one for that courier.
    pub routes: Vec<RouteRecord>,
    /// Timeline entries appended.
    pub timeline: Vec<TimelineEntry>,
    /// Events for the `dispatch` exchange.
    pub outbox: Vec<OutboxEvent>,
}

impl Batch {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.inbox.is_none()
            && self.orders.is_empty()
            && self.couriers.is_empty()
            && self.assignments.is_empty()
            && self.routes.is_empty()
            && self.timeline.is_empty()
            && self.outbox.is_empty()
    }
}

/// What a restart needs: every open order, every courier and every current route.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Orders not yet delivered, failed or cancelled.
    pub open_orders: Vec<OrderRecord>,
    /// Every courier.
    pub couriers: Vec<CourierRecord>,
    /// Each courier's current route.
    pub routes: Vec<RouteRecord>,
}

/// A page of orders: newest `placed_at` first, ties by id descending.
#[derive(Clone, Debug, Default)]
pub struct OrderQuery {
    /// Only these statuses (empty: any).
    pub statuses: Vec<OrderStatus>,
    /// Only these restaurants (empty: any); a kitchen's scope is applied here.
    pub restaurants: Vec<RestaurantId>,
    /// Only this courier's.
    pub courier: Option<CourierId>,
    /// Only late ones (`Some(true)`) or only ones not late (`Some(false)`), judged at `now`:
    /// delivered after `deliver_by`, or still open past it.
    pub late: Option<bool>,
    /// The time `late` is judged at.
    pub now: Option<OffsetDateTime>,
    /// Keyset cursor: start after this `(placed_at, id)`.
    pub after: Option<(OffsetDateTime, OrderId)>,
    /// At most this many (clamped to 1..=500).
    pub limit: usize,
}

/// Storage of orders, couriers, routes, timeline, inbox, outbox and tokens.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything a restart restores.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn load(&self) -> Result<Snapshot, StoreError>;

    /// Writes `batch` atomically.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the inbox key was seen (nothing written),
    /// [`StoreError::Stale`] for a route seq not above the stored one or an existing new order,
    /// [`StoreError::NotFound`] for a reference to an unknown courier or order,
    /// [`StoreError::Unavailable`] when the outcome is unknown.
    async fn commit(&self, batch: Batch) -> Result<(), StoreError>;

    /// Whether a message id was committed before.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn seen(&self, message_id: &str) -> Result<bool, StoreError>;

    /// One order, open or not.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn order(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError>;

    /// The order with this tracking id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn order_by_tracking_id(
        &self,
        tracking_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;

    /// A page of orders matching `query`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn orders(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>, StoreError>;

    /// An order's timeline, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, StoreError>;

    /// Up to `limit` outbox events not yet marked sent, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Marks outbox events as published.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Creates an API token for `role` (scoped to `courier` or `restaurants` as
    /// [`service::auth::check_scope`] requires) and keeps only its hash; returns the secret.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a scope that does not fit the role, [`StoreError::NotFound`]
    /// for an unknown courier, [`StoreError::Unavailable`].
    async fn create_token(
        &self,
        role: Role,
        courier: Option<&CourierId>,
        restaurants: &[RestaurantId],
    ) -> Result<String, StoreError>;

    /// Checks the tokens [`Store::create_token`] made (for the API's `Auth` extractor).
    fn verifier(&self) -> Arc<dyn TokenVerifier>;

    /// Whether the store answers now (for `/healthz`).
    async fn healthy(&self) -> bool;
}

impl From<CreateTokenError> for StoreError {
    fn from(e: CreateTokenError) -> Self {
        match e {
            CreateTokenError::CourierRequired
            | CreateTokenError::RestaurantsRequired
            | CreateTokenError::UnexpectedScope { .. } => StoreError::Invalid(e.to_string()),
            CreateTokenError::UnknownCourier(_) => StoreError::NotFound(e.to_string()),
            CreateTokenError::Database(source) => {
                StoreError::Unavailable(anyhow::Error::new(source).context("storing a token"))
            }
        }
    }
}

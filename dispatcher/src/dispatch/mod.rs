//! The core: every change to orders and couriers, from kitchens, couriers, staff, the planner
//! and GPS, goes through [`Dispatch`]. Each one is checked against the order's lifecycle and
//! ownership on the in-memory [`State`], written with its timeline and outbox events as one
//! [`Batch`], and applied to memory only once committed; then the planner, the outbox relay and
//! the live feeds are told.
//!
//! Changes are serialised by one async lock around check-commit-apply, so memory never runs
//! ahead of the database and two changes never race on one order. A commit whose outcome is
//! unknown (the database went away mid-commit) reloads memory from the store.

mod apply;
mod commands;
pub mod events;
mod state;

use std::sync::{Arc, Mutex};

use optimizer::model::{Coordinates, CourierId, OrderId, RestaurantId, VehicleKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};

pub use commands::EventOutcome;
pub use state::State;

use crate::records::{CourierRecord, InboxKey, OrderRecord, RouteRecord, TimelineEntry};
use crate::store::{Batch, Store, StoreError};

/// A kitchen's new order, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    /// The kitchen's id.
    pub id: OrderId,
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// Where it is cooked.
    pub restaurant: Coordinates,
    /// Where it goes.
    pub dropoff: Coordinates,
    /// When ordered.
    pub placed_at: OffsetDateTime,
    /// When ready (not before `placed_at`).
    pub ready_at: OffsetDateTime,
    /// The promise (not before `ready_at`).
    pub deliver_by: Option<OffsetDateTime>,
    /// Capacity units.
    pub size: u32,
}

/// A kitchen message, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum KitchenCommand {
    /// `order.created`.
    Created(NewOrder),
    /// `order.ready`.
    Ready {
        /// The order.
        order_id: OrderId,
        /// The new ready time.
        ready_at: OffsetDateTime,
    },
    /// `order.cancelled`.
    Cancelled {
        /// The order.
        order_id: OrderId,
    },
}

/// A new courier.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCourier {
    /// Display name (1..=200 characters).
    pub name: String,
    /// Vehicle kind.
    pub vehicle: VehicleKind,
    /// The phone app's device id (1..=128 characters, unique).
    pub device_id: String,
    /// Capacity units; the vehicle's default when `None`.
    pub capacity: Option<u32>,
}

/// What a courier reports about one of its orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CourierEventKind {
    /// At the restaurant (before pickup) or at the customer (after).
    Arrived,
    /// Took the food.
    PickedUp,
    /// Handed it over.
    Delivered,
    /// Cannot deliver.
    Failed {
        /// Why (1..=500 characters).
        reason: String,
    },
}

/// A correction by support staff.
#[derive(Clone, Debug, PartialEq)]
pub enum Correction {
    /// Give the order to this courier; a manual assignment holds (the order is pinned there)
    /// until staff unpin it.
    Assign {
        /// The courier.
        courier_id: CourierId,
    },
    /// Keep the order with its current courier.
    Pin,
    /// Let the planner move it again.
    Unpin,
    /// Take it from its courier; the planner finds another.
    Unassign,
    /// Withdraw it.
    Cancel,
    /// Give up on it.
    Fail {
        /// Why.
        reason: String,
    },
    /// Change what the kitchen said.
    Amend {
        /// A new ready time.
        ready_at: Option<OffsetDateTime>,
        /// A new promise; `Some(None)` removes it.
        deliver_by: Option<Option<OffsetDateTime>>,
        /// A new drop-off (before pickup only).
        dropoff: Option<Coordinates>,
    },
}

/// A change refused because of what it asks: the API answers 4xx, the consumer dead-letters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Invalid {
    /// Machine-readable reason (`invalid_coordinates`, `unknown_order`, ...).
    pub code: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

impl Invalid {
    /// An invalid-input reason.
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Invalid {
            code,
            detail: detail.into(),
        }
    }
}

/// Why a change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The input is wrong (400; dead-letter for a kitchen message).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A referenced order or courier does not exist (404; dead-letter for a kitchen message).
    #[error("{0} not found")]
    NotFound(String),
    /// The lifecycle or ownership forbids it now (409; e.g. delivered before picked up).
    #[error("{code}: {detail}")]
    Conflict {
        /// Machine-readable reason (`illegal_transition`, `not_your_order`, ...).
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// The message or request was processed before; nothing changed (ack; answer as before).
    #[error("already processed")]
    Duplicate,
    /// Storage is unavailable; retry later (503; requeue after a pause).
    #[error("storage is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl DispatchError {
    /// A conflict.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        DispatchError::Conflict {
            code,
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for DispatchError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(_) => DispatchError::Duplicate,
            StoreError::NotFound(what) => DispatchError::NotFound(what),
            StoreError::Stale(what) => DispatchError::conflict("stale", what),
            StoreError::Invalid(what) => DispatchError::Invalid(Invalid::new("invalid", what)),
            StoreError::Unavailable(e) => DispatchError::Unavailable(e),
        }
    }
}

/// What changed, for the live feeds (map, courier sockets, tracking pages) and the planner.
#[derive(Clone, Debug)]
pub enum Change {
    /// An order was created or changed (the new record).
    Order(Arc<OrderRecord>),
    /// A courier was registered or changed.
    Courier(Arc<CourierRecord>),
    /// A courier's route has a new version.
    Route(Arc<RouteRecord>),
}

/// Why the planner should run soon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A new order.
    NewOrder,
    /// An order's times or place changed, or it was cancelled or unassigned.
    OrderChanged,
    /// A courier started or ended a shift.
    Shift,
    /// A courier reported an event.
    CourierStatus,
    /// A courier is far from its plan.
    OffPlan,
    /// Staff corrected something.
    Correction,
}

impl Trigger {
    /// Whether someone waits on the next plan: a new order (its kitchen and its courier) or a
    /// staff correction. Such a trigger cuts a long improvement run short and gets a quick run
    /// of its own.
    pub const fn is_urgent(self) -> bool {
        matches!(self, Trigger::NewOrder | Trigger::Correction)
    }

    /// The metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Trigger::NewOrder => "new_order",
            Trigger::OrderChanged => "order_changed",
            Trigger::Shift => "shift",
            Trigger::CourierStatus => "courier_status",
            Trigger::OffPlan => "off_plan",
            Trigger::Correction => "correction",
        }
    }
}

/// The core. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Dispatch {
    inner: Arc<Inner>,
}

struct Inner {
    /// What time it is (the system clock, or the demo's scaled one).
    clock: service::clock::Clock,
    /// Where every change is written first.
    store: Arc<dyn Store>,
    /// The committed state, for checks and reads.
    state: Mutex<State>,
    /// Serialises check-commit-apply (owned guards: the commit task holds it).
    write: Arc<tokio::sync::Mutex<()>>,
    /// Changes for the live feeds.
    changes: broadcast::Sender<Change>,
    /// Wakes the outbox relay after a commit with events.
    outbox: Arc<Notify>,
    /// Wakes the planner, with the reasons since its last run.
    planner: Arc<PlannerSignal>,
}

/// Coalesced wake-ups of the planner: many triggers before a run make one run.
#[derive(Default)]
pub struct PlannerSignal {
    notify: Notify,
    pending: Mutex<Vec<Trigger>>,
    /// An urgent trigger came since the last [`PlannerSignal::take`] (read by the solver's
    /// budget, without the lock).
    urgent: std::sync::atomic::AtomicBool,
}

impl PlannerSignal {
    /// Asks for a replan.
    pub fn trigger(&self, why: Trigger) {
        metrics::counter!(crate::metric::PLANNER_TRIGGERS, "reason" => why.name()).increment(1);
        let mut pending = self
            .pending
            .lock()
            .expect("the planner signal lock is never poisoned");
        if !pending.contains(&why) {
            pending.push(why);
        }
        if why.is_urgent() {
            self.urgent
                .store(true, std::sync::atomic::Ordering::Release);
        }
        drop(pending);
        self.notify.notify_one();
    }

    /// Takes the pending reasons: the run about to start covers them.
    pub fn take(&self) -> Vec<Trigger> {
        let mut pending = self
            .pending
            .lock()
            .expect("the planner signal lock is never poisoned");
        self.urgent
            .store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut *pending)
    }

    /// Whether an urgent trigger is pending.
    pub fn is_urgent(&self) -> bool {
        self.urgent.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until some trigger is pending (the caller then [`PlannerSignal::take`]s them).
    pub async fn wait(&self) {
        loop {
            if !self
                .pending
                .lock()
                .expect("the planner signal lock is never poisoned")
                .is_empty()
            {
                return;
            }
            self.notify.notified().await;
        }
    }
}

impl Dispatch {
    /// Loads the state from `store`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn load(store: Arc<dyn Store>) -> Result<Dispatch, StoreError> {
        Dispatch::load_with_clock(store, service::clock::Clock::system()).await
    }

    /// Loads the state from `store`, reading time from `clock`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn load_with_clock(
        store: Arc<dyn Store>,
        clock: service::clock::Clock,
    ) -> Result<Dispatch, StoreError> {
        let snapshot = store.load().await?;
        let (changes, _) = broadcast::channel(65_536);
        Ok(Dispatch {
            inner: Arc::new(Inner {
                clock,
                store,
                state: Mutex::new(State::from_snapshot(snapshot)),
                write: Arc::new(tokio::sync::Mutex::new(())),
                changes,
                outbox: Arc::new(Notify::new()),
                planner: Arc::new(PlannerSignal::default()),
            }),
        })
    }

    /// The clock every change is timed with.
    pub fn clock(&self) -> service::clock::Clock {
        self.inner.clock
    }

    /// The current time on that clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Changes as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Notified after each commit that wrote outbox events.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// The planner's wake-ups.
    pub fn planner_signal(&self) -> Arc<PlannerSignal> {
        self.inner.planner.clone()
    }

    /// Reads the committed state under its lock (keep the closure short; no awaits).
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self
            .inner
            .state
            .lock()
            .expect("the state lock is never poisoned"))
    }

    /// One order: from memory while open, from the store otherwise.
    ///
    /// # Errors
    /// [`DispatchError::Unavailable`].
    pub async fn order(&self, id: &OrderId) -> Result<Option<OrderRecord>, DispatchError> {
        if let Some(open) = self.read(|s| s.order(id).cloned()) {
            return Ok(Some(open));
        }
        Ok(self.inner.store.order(id).await?)
    }

    /// An order's timeline, oldest first.
    ///
    /// # Errors
    /// [`DispatchError::NotFound`] for an unknown order; [`DispatchError::Unavailable`].
    pub async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, DispatchError> {
        if self.order(id).await?.is_none() {
            return Err(DispatchError::NotFound(format!("order {id}")));
        }
        Ok(self.inner.store.timeline(id).await?)
    }

    /// Writes a batch built from the current state and applies it; the check-commit-apply step
    /// every command goes through. `build` sees the state and returns the batch, the triggers
    /// for the planner and a value for the caller; it must not change anything itself.
    ///
    /// Cancel-safe: once the batch is built, its commit and apply run in a task of their own
    /// that finishes even when the caller is dropped (an HTTP client hanging up, a timeout).
    /// A commit abandoned half-way would otherwise leave a transaction open on a pooled
    /// connection, or the store ahead of memory.
    async fn change<T>(
        &self,
        build: impl FnOnce(&State, OffsetDateTime) -> Result<(Batch, Vec<Trigger>, T), DispatchError>,
    ) -> Result<T, DispatchError> {
        let wait = std::time::Instant::now();
        let write = self.inner.write.clone().lock_owned().await;
        metrics::histogram!(crate::metric::CHANGE_WAIT_SECONDS)
            .record(wait.elapsed().as_secs_f64());
        let now = self.now();
        let (batch, triggers, value) = self.read(|s| build(s, now))?;
        if batch.is_empty() {
            return Ok(value);
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _write = write;
            this.commit_and_apply(batch, triggers).await
        })
        .await
        .map_err(|e| {
            DispatchError::Unavailable(anyhow::anyhow!("the commit task failed: {e}"))
        })??;
        Ok(value)
    }

    /// Commits `batch` and applies it to memory (under the write lock the caller holds), then
    /// tells the feeds, the relay and the planner.
    async fn commit_and_apply(
        &self,
        batch: Batch,
        triggers: Vec<Trigger>,
    ) -> Result<(), DispatchError> {
        let has_events = !batch.outbox.is_empty();
        let started = std::time::Instant::now();
        let committed = self.inner.store.commit(batch.clone()).await;
        metrics::histogram!(crate::metric::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match committed {
            Ok(()) => {}
            Err(StoreError::Unavailable(e)) => {
                // The commit may or may not have happened: memory must follow the store.
                self.reload().await;
                return Err(DispatchError::Unavailable(e));
            }
            Err(e) => return Err(e.into()),
        }
        let changes = self
            .inner
            .state
            .lock()
            .expect("the state lock is never poisoned")
            .apply(&batch);
        for change in changes {
            let _ = self.inner.changes.send(change);
        }
        if has_events {
            self.inner.outbox.notify_one();
        }
        for t in triggers {
            self.inner.planner.trigger(t);
        }
        Ok(())
    }

    /// Replaces memory with what the store holds, when it answers.
    async fn reload(&self) {
        match self.inner.store.load().await {
            Ok(snapshot) => {
                *self
                    .inner
                    .state
                    .lock()
                    .expect("the state lock is never poisoned") = State::from_snapshot(snapshot);
                tracing::info!("State reloaded from the store after an uncertain commit.");
            }
            Err(error) => {
                tracing::warn!(%error, "Reloading the state failed; it will be retried.");
                self.inner
                    .state
                    .lock()
                    .expect("the state lock is never poisoned")
                    .mark_stale();
            }
        }
    }

    /// Reloads memory if an earlier reload failed (called by the planner loop before each run).
    pub async fn reload_if_stale(&self) {
        if self.read(|s| s.is_stale()) {
            let _write = self.inner.write.lock().await;
            self.reload().await;
        }
    }

    /// Whether this key was processed before.
    ///
    /// # Errors
    /// [`DispatchError::Unavailable`].
    pub async fn seen(&self, key: &InboxKey) -> Result<bool, DispatchError> {
        Ok(self.inner.store.seen(&key.message_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use service::auth::{Role, TokenVerifier};

    use super::*;
    use crate::records::OutboxEvent;
    use crate::store::{MemoryStore, OrderQuery, Snapshot};

    /// A memory store whose commits wait for a gate to open, to drop a change mid-commit.
    struct GatedStore {
        inner: MemoryStore,
        gate: Notify,
        entered: Notify,
        closed: AtomicBool,
    }

    #[async_trait]
    impl Store for GatedStore {
        async fn load(&self) -> Result<Snapshot, StoreError> {
            self.inner.load().await
        }
        async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
            if self.closed.load(Ordering::SeqCst) {
                self.entered.notify_one();
                self.gate.notified().await;
            }
            self.inner.commit(batch).await
        }
        async fn seen(&self, message_id: &str) -> Result<bool, StoreError> {
            self.inner.seen(message_id).await
        }
        async fn order(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
            self.inner.order(id).await
        }
        async fn order_by_tracking_id(
            &self,
            tracking_id: &str,
        ) -> Result<Option<OrderRecord>, StoreError> {
            self.inner.order_by_tracking_id(tracking_id).await
        }
        async fn orders(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>, StoreError> {
            self.inner.orders(query).await
        }
        async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
            self.inner.timeline(id).await
        }
        async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
            self.inner.pending_outbox(limit).await
        }
        async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
            self.inner.mark_sent(ids).await
        }
        async fn create_token(
            &self,
            role: Role,
            courier: Option<&CourierId>,
            restaurants: &[RestaurantId],
        ) -> Result<String, StoreError> {
            self.inner.create_token(role, courier, restaurants).await
        }
        fn verifier(&self) -> Arc<dyn TokenVerifier> {
            self.inner.verifier()
        }
        async fn healthy(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn a_change_dropped_mid_commit_still_lands_in_memory_and_store_alike() {
        let store = Arc::new(GatedStore {
            inner: MemoryStore::new(),
            gate: Notify::new(),
            entered: Notify::new(),
            closed: AtomicBool::new(true),
        });
        let dispatch = Dispatch::load(store.clone()).await.unwrap();
        let register = {
            let dispatch = dispatch.clone();
            tokio::spawn(async move {
                dispatch
                    .register_courier(NewCourier {
                        name: "Ada".into(),
                        vehicle: VehicleKind::Bike,
                        device_id: "phone-1".into(),
                        capacity: None,
                    })
                    .await
            })
        };
        // The commit has begun; the caller goes away (as a handler does when its client hangs
        // up), then the store finishes.
        store.entered.notified().await;
        register.abort();
        assert!(register.await.unwrap_err().is_cancelled());
        store.closed.store(false, Ordering::SeqCst);
        store.gate.notify_one();
        // The next change waits for the abandoned one and sees it.
        let again = dispatch
            .register_courier(NewCourier {
                name: "Ada".into(),
                vehicle: VehicleKind::Bike,
                device_id: "phone-1".into(),
                capacity: None,
            })
            .await;
        assert!(
            matches!(again, Err(DispatchError::Conflict { .. })),
            "the device is taken by the first registration: {again:?}"
        );
        let in_memory = dispatch.read(|s| s.couriers().count());
        let stored = store.inner.load().await.unwrap().couriers.len();
        assert_eq!((in_memory, stored), (1, 1));
    }
}

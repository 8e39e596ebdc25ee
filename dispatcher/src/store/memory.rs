//! In-memory storage for `dispatcher demo`: the rules of [`PgStore`](super::PgStore) (duplicate
//! inbox keys, stale routes and creates, unknown references, outbox order, order pages) kept in
//! maps behind one `std::sync::Mutex`, which no `.await` ever holds.
//!
//! A batch is checked whole before any of it is applied, so a refused batch writes nothing.
//!
//! Tokens are kept as `api_tokens` keeps them: only the SHA-256 of each secret, with the
//! principal it speaks for; [`MemoryTokens`] checks them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::future::BoxFuture;
use optimizer::model::{CourierId, OrderId, RestaurantId};
use service::auth::{AuthError, Principal, Role, TokenVerifier};
use time::OffsetDateTime;

use super::{Batch, OrderQuery, Snapshot, Store, StoreError};
use crate::records::{
    AssignmentChange, CourierRecord, OrderRecord, OutboxEvent, RouteRecord, TimelineEntry,
};

/// The most orders one [`Store::orders`] page returns.
const MAX_PAGE: usize = 500;

/// The store in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Everything stored; one lock so a batch is applied as a unit.
    state: Mutex<State>,
    /// Token hashes, shared with the verifier handed out.
    tokens: Arc<MemoryTokens>,
}

/// [`TokenVerifier`] on the tokens a [`MemoryStore`] created: hashes only, never a secret.
#[derive(Debug, Default)]
pub struct MemoryTokens {
    /// SHA-256 of each secret, with whom it speaks for.
    by_hash: Mutex<HashMap<[u8; 32], Principal>>,
}

impl MemoryTokens {
    fn insert(&self, secret: &str, principal: Principal) {
        self.by_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(service::auth::token_hash(secret), principal);
    }
}

impl TokenVerifier for MemoryTokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move {
            if !service::auth::is_plausible(token) {
                return Ok(None);
            }
            let hash = service::auth::token_hash(token);
            Ok(self
                .by_hash
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&hash)
                .cloned())
        })
    }
}

/// The stored facts, as the PostgreSQL tables hold them.
#[derive(Debug, Default)]
struct State {
    /// Committed inbox keys (`inbox`).
    inbox: HashSet<String>,
    /// Every order, open or not (`orders`).
    orders: HashMap<OrderId, OrderRecord>,
    /// Every courier (`couriers` with `devices`), by id so `load` lists them in id order.
    couriers: BTreeMap<CourierId, CourierRecord>,
    /// Each courier's current route (`courier_routes`).
    routes: BTreeMap<CourierId, RouteRecord>,
    /// Each order's timeline in commit order (`order_events`).
    timeline: HashMap<OrderId, Vec<TimelineEntry>>,
    /// Outbox events by id, with whether they were sent (`outbox`).
    outbox: BTreeMap<i64, (OutboxEvent, bool)>,
    /// Message ids in the outbox, so a stored event is not written twice.
    outbox_messages: HashSet<String>,
    /// The last outbox id handed out (ids start at 1).
    last_outbox_id: i64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// The state; a panic in another holder cannot leave it half-written (batches are checked
    /// before they are applied), so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Refuses `batch` as PostgreSQL would, writing nothing.
    fn check(&self, batch: &Batch) -> Result<(), StoreError> {
        if let Some(key) = &batch.inbox
            && self.inbox.contains(&key.message_id)
        {
            return Err(StoreError::Duplicate(key.message_id.clone()));
        }
        let courier_known = |id: &CourierId| {
            self.couriers.contains_key(id) || batch.couriers.iter().any(|c| &c.id == id)
        };
        let new: HashSet<&OrderId> = batch.new_orders.iter().collect();
        for order in &batch.orders {
            let clashes = new.contains(&order.id) && self.orders.contains_key(&order.id);
            if let Some(courier) = &order.courier_id
                && !clashes
                && !courier_known(courier)
            {
                return Err(StoreError::NotFound(format!(
                    "courier {courier} of order {}",
                    order.id
                )));
            }
        }
        if let Some(stale) = batch
            .orders
            .iter()
            .find(|o| new.contains(&o.id) && self.orders.contains_key(&o.id))
        {
            return Err(StoreError::Stale(format!(
                "order {} already exists",
                stale.id
            )));
        }
        for change in &batch.assignments {
            let order_id = match change {
                AssignmentChange::Open { order_id, .. }
                | AssignmentChange::Release { order_id, .. } => order_id,
            };
            if !self.orders.contains_key(order_id)
                && !batch.orders.iter().any(|o| &o.id == order_id)
            {
                return Err(StoreError::NotFound(format!("order {order_id}")));
            }
            if let AssignmentChange::Open { courier_id, .. } = change
                && !courier_known(courier_id)
            {
                return Err(StoreError::NotFound(format!("courier {courier_id}")));
            }
        }
        if let Some(route) = batch.routes.iter().find(|r| !courier_known(&r.courier_id)) {
            return Err(StoreError::NotFound(format!(
                "courier {} of a route",
                route.courier_id
            )));
        }
        // Only the last route of a courier counts, as in PostgreSQL.
        let mut last: HashMap<&CourierId, &RouteRecord> = HashMap::new();
        for route in &batch.routes {
            last.insert(&route.courier_id, route);
        }
        for route in &batch.routes {
            if last.get(&route.courier_id) == Some(&route)
                && let Some(stored) = self.routes.get(&route.courier_id)
                && route.seq <= stored.seq
            {
                return Err(StoreError::Stale(format!(
                    "route {} of courier {} does not grow",
                    route.seq, route.courier_id
                )));
            }
        }
        Ok(())
    }

    /// Applies a checked batch.
    fn apply(&mut self, batch: Batch) {
        if let Some(key) = batch.inbox {
            self.inbox.insert(key.message_id);
        }
        for courier in batch.couriers {
            // A device belongs to one courier: naming it for another moves it.
            if !courier.device_id.is_empty() {
                for other in self.couriers.values_mut() {
                    if other.id != courier.id && other.device_id == courier.device_id {
                        other.device_id.clear();
                    }
                }
            }
            self.couriers.insert(courier.id.clone(), courier);
        }
        for order in batch.orders {
            self.orders.insert(order.id.clone(), order);
        }
        // The assignment history is not kept in memory: nothing reads it through `Store`, and
        // each order's record carries its current courier.
        for route in batch.routes {
            self.routes.insert(route.courier_id.clone(), route);
        }
        for entry in batch.timeline {
            self.timeline
                .entry(entry.order_id.clone())
                .or_default()
                .push(entry);
        }
        for mut event in batch.outbox {
            if self.outbox_messages.insert(event.message_id.clone()) {
                self.last_outbox_id += 1;
                event.id = self.last_outbox_id;
                self.outbox.insert(event.id, (event, false));
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let state = self.state();
        let mut open_orders: Vec<OrderRecord> = state
            .orders
            .values()
            .filter(|o| o.is_open())
            .cloned()
            .collect();
        open_orders.sort_by(|a, b| (a.placed_at, &a.id).cmp(&(b.placed_at, &b.id)));
        Ok(Snapshot {
            open_orders,
            couriers: state.couriers.values().cloned().collect(),
            routes: state.routes.values().cloned().collect(),
        })
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut state = self.state();
        state.check(&batch)?;
        state.apply(batch);
        Ok(())
    }

    async fn seen(&self, message_id: &str) -> Result<bool, StoreError> {
        Ok(self.state().inbox.contains(message_id))
    }

    async fn order(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Ok(self.state().orders.get(id).cloned())
    }

    async fn order_by_tracking_id(
        &self,
        tracking_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        if tracking_id.is_empty() {
            return Ok(None);
        }
        Ok(self
            .state()
            .orders
            .values()
            .find(|o| o.tracking_id == tracking_id)
            .cloned())
    }

    async fn orders(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>, StoreError> {
        let now = query.now.unwrap_or_else(OffsetDateTime::now_utc);
        let state = self.state();
        let mut page: Vec<&OrderRecord> = state
            .orders
            .values()
            .filter(|o| query.statuses.is_empty() || query.statuses.contains(&o.status))
            .filter(|o| {
                query.restaurants.is_empty() || query.restaurants.contains(&o.restaurant_id)
            })
            .filter(|o| query.courier.is_none() || o.courier_id == query.courier)
            .filter(|o| query.late.is_none_or(|late| o.is_late(now) == late))
            .filter(|o| match &query.after {
                Some((at, id)) => (o.placed_at, &o.id) < (*at, id),
                None => true,
            })
            .collect();
        page.sort_by(|a, b| (b.placed_at, &b.id).cmp(&(a.placed_at, &a.id)));
        page.truncate(query.limit.clamp(1, MAX_PAGE));
        Ok(page.into_iter().cloned().collect())
    }

    async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut entries = self.state().timeline.get(id).cloned().unwrap_or_default();
        // Oldest first, commit order among equal times (a stable sort), as `ORDER BY at, id`.
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        Ok(self
            .state()
            .outbox
            .values()
            .filter(|(_, sent)| !sent)
            .take(limit)
            .map(|(event, _)| event.clone())
            .collect())
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut state = self.state();
        for id in ids {
            if let Some((_, sent)) = state.outbox.get_mut(id) {
                *sent = true;
            }
        }
        Ok(())
    }

    async fn create_token(
        &self,
        role: Role,
        courier: Option<&CourierId>,
        restaurants: &[RestaurantId],
    ) -> Result<String, StoreError> {
        service::auth::check_scope(role, courier, restaurants)?;
        if let Some(id) = courier
            && !self.state().couriers.contains_key(id)
        {
            return Err(service::auth::CreateTokenError::UnknownCourier(id.to_string()).into());
        }
        let principal = service::auth::principal_of(role, courier, restaurants)
            .ok_or_else(|| StoreError::Invalid(format!("a {role} token needs its scope")))?;
        let secret = service::auth::new_secret();
        self.tokens.insert(&secret, principal);
        Ok(secret)
    }

    fn verifier(&self) -> Arc<dyn TokenVerifier> {
        self.tokens.clone()
    }

    async fn healthy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn the_memory_verifier_keeps_hashes_and_answers_each_token_with_its_scope() {
        let store = MemoryStore::new();
        let r1 = RestaurantId::parse("r1").unwrap();
        let staff = block(store.create_token(Role::Staff, None, &[])).unwrap();
        let kitchen =
            block(store.create_token(Role::Kitchen, None, std::slice::from_ref(&r1))).unwrap();
        let held = store.tokens.by_hash.lock().unwrap();
        assert!(held.contains_key(&service::auth::token_hash(&staff)));
        assert_eq!(held.len(), 2);
        drop(held);
        let verifier = store.verifier();
        assert_eq!(
            block(verifier.verify(&staff)).unwrap(),
            Some(Principal::Staff)
        );
        assert_eq!(
            block(verifier.verify(&kitchen)).unwrap(),
            Some(Principal::Kitchen {
                restaurants: vec![r1]
            })
        );
        assert_eq!(block(verifier.verify("nope")).unwrap(), None);
        assert_eq!(block(verifier.verify("")).unwrap(), None);
        assert_eq!(block(verifier.verify(&"x".repeat(600))).unwrap(), None);
    }

    #[test]
    fn a_scope_that_does_not_fit_the_role_is_invalid() {
        let store = MemoryStore::new();
        let c1 = CourierId::parse("c1").unwrap();
        assert!(matches!(
            block(store.create_token(Role::Courier, None, &[])),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            block(store.create_token(Role::Staff, Some(&c1), &[])),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            block(store.create_token(Role::Courier, Some(&c1), &[])),
            Err(StoreError::NotFound(_))
        ));
    }
}

//! Each courier's current route, handed to that courier's socket: [`RouteHub`] keeps one
//! `watch` channel per courier with its latest [`RouteRecord`], so a session wakes only for
//! its own courier's versions and never sees another's. [`RouteHub::follow`] feeds it from the
//! core's committed changes. The hub also enforces one session per courier: registering a new
//! one tells the previous one to close ([`Session::replaced`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optimizer::model::CourierId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Change, Dispatch};
use crate::records::RouteRecord;

/// How often the feed re-reads every route from the state, to catch up with a reload of
/// memory from the store (which replaces the state without announcing each route).
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// A courier's latest route version (`None` until it has one).
pub type RouteWatch = watch::Receiver<Option<Arc<RouteRecord>>>;

/// Every courier's latest route and its open session. Cheap to clone; clones share all.
#[derive(Clone)]
pub struct RouteHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    /// One channel per courier ever asked for or routed (bounded by the fleet).
    routes: Mutex<HashMap<CourierId, watch::Sender<Option<Arc<RouteRecord>>>>>,
    /// The open session of each courier: its number and how to tell it to close.
    sessions: Mutex<HashMap<CourierId, (u64, CancellationToken)>>,
    /// Numbers sessions, so a closing session removes only its own entry.
    next_session: AtomicU64,
    /// Cancelled when the service stops: every session closes.
    stop: CancellationToken,
}

/// One registered session of a courier; dropping it unregisters it.
pub struct Session {
    hub: RouteHub,
    courier: CourierId,
    number: u64,
    replaced: CancellationToken,
}

impl Session {
    /// Completes when a newer session of the same courier registered.
    pub async fn replaced(&self) {
        self.replaced.cancelled().await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut sessions = self
            .hub
            .inner
            .sessions
            .lock()
            .expect("the session lock is never poisoned");
        if sessions
            .get(&self.courier)
            .is_some_and(|(n, _)| *n == self.number)
        {
            sessions.remove(&self.courier);
        }
    }
}

impl RouteHub {
    /// An empty hub whose sessions close when `stop` is cancelled.
    pub fn new(stop: CancellationToken) -> RouteHub {
        RouteHub {
            inner: Arc::new(HubInner {
                routes: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                stop,
            }),
        }
    }

    /// A hub holding every route of `dispatch`'s state and following its changes until
    /// `stop` is cancelled (the feed runs on a task of its own).
    pub fn start(dispatch: Dispatch, stop: CancellationToken) -> RouteHub {
        let hub = RouteHub::new(stop.clone());
        // Subscribe before reading the state, so no version committed in between is missed.
        let changes = dispatch.subscribe();
        hub.resync(&dispatch);
        tokio::spawn(hub.clone().follow(dispatch, changes, stop));
        hub
    }

    /// Feeds the hub from `changes` until `stop`: each route version goes to its courier; on
    /// lag, and every few seconds, every route is re-read from the state.
    pub async fn follow(
        self,
        dispatch: Dispatch,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        stop: CancellationToken,
    ) {
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = resync.tick() => self.resync(&dispatch),
                change = changes.recv() => match change {
                    Ok(Change::Route(route)) => self.publish(route),
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "The route feed lagged; re-reading every route.");
                        self.resync(&dispatch);
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// Publishes every route of the state that is newer than the hub's.
    fn resync(&self, dispatch: &Dispatch) {
        let newer: Vec<Arc<RouteRecord>> = dispatch.read(|s| {
            s.routes()
                .filter(|r| self.seq_of(&r.courier_id) < r.seq)
                .map(|r| Arc::new(r.clone()))
                .collect()
        });
        for route in newer {
            self.publish(route);
        }
    }

    /// The version the hub holds for `courier` (0: none).
    pub fn seq_of(&self, courier: &CourierId) -> u64 {
        self.inner
            .routes
            .lock()
            .expect("the route lock is never poisoned")
            .get(courier)
            .and_then(|tx| tx.borrow().as_ref().map(|r| r.seq))
            .unwrap_or(0)
    }

    /// Hands `route` to its courier's session, unless the hub holds that version or a newer one.
    pub fn publish(&self, route: Arc<RouteRecord>) {
        let mut routes = self
            .inner
            .routes
            .lock()
            .expect("the route lock is never poisoned");
        let tx = routes
            .entry(route.courier_id.clone())
            .or_insert_with(|| watch::Sender::new(None));
        tx.send_if_modified(|held| {
            if held.as_ref().is_some_and(|h| h.seq >= route.seq) {
                return false;
            }
            *held = Some(route);
            true
        });
    }

    /// The courier's route channel; its current value is the latest version.
    pub fn watch(&self, courier: &CourierId) -> RouteWatch {
        self.inner
            .routes
            .lock()
            .expect("the route lock is never poisoned")
            .entry(courier.clone())
            .or_insert_with(|| watch::Sender::new(None))
            .subscribe()
    }

    /// Registers a session for `courier`, telling its previous one (if any) to close.
    pub fn register(&self, courier: &CourierId) -> Session {
        let number = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let replaced = CancellationToken::new();
        let previous = self
            .inner
            .sessions
            .lock()
            .expect("the session lock is never poisoned")
            .insert(courier.clone(), (number, replaced.clone()));
        if let Some((_, previous)) = previous {
            previous.cancel();
        }
        Session {
            hub: self.clone(),
            courier: courier.clone(),
            number,
            replaced,
        }
    }

    /// Completes when the service stops.
    pub async fn stopped(&self) {
        self.inner.stop.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(courier: &str, seq: u64) -> Arc<RouteRecord> {
        Arc::new(RouteRecord {
            courier_id: CourierId::parse(courier).unwrap(),
            seq,
            stops: Vec::new(),
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn a_courier_wakes_only_for_its_own_newer_routes() {
        let hub = RouteHub::new(CancellationToken::new());
        let a = CourierId::parse("a").unwrap();
        let mut watch = hub.watch(&a);
        hub.publish(route("b", 1));
        assert!(!watch.has_changed().unwrap());
        hub.publish(route("a", 2));
        assert!(watch.has_changed().unwrap());
        assert_eq!(watch.borrow_and_update().as_ref().unwrap().seq, 2);
        hub.publish(route("a", 1));
        assert!(!watch.has_changed().unwrap());
        assert_eq!(hub.seq_of(&a), 2);
    }

    #[tokio::test]
    async fn a_second_session_replaces_the_first() {
        let hub = RouteHub::new(CancellationToken::new());
        let a = CourierId::parse("a").unwrap();
        let first = hub.register(&a);
        let second = hub.register(&a);
        tokio::time::timeout(Duration::from_secs(1), first.replaced())
            .await
            .expect("the first session is told to close");
        drop(first);
        // The first one leaving does not unregister the second.
        let third = hub.register(&a);
        tokio::time::timeout(Duration::from_secs(1), second.replaced())
            .await
            .expect("the second session is told to close");
        drop(third);
    }
}

//! The `Store` contract: every case runs against a fresh `MemoryStore` and a fresh `PgStore` on
//! its own database, so the two implementations cannot drift apart.
//!
//! Times are whole seconds: PostgreSQL keeps microseconds, memory keeps nanoseconds.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use dispatcher::records::{
    Actor, AssignmentChange, CourierRecord, InboxKey, OrderRecord, OutboxEvent, RouteRecord,
    RouteStop, TimelineEntry,
};
use dispatcher::store::{Batch, MemoryStore, OrderQuery, PgStore, Store, StoreError};
use futures::FutureExt;
use optimizer::model::{
    Coordinates, CourierId, OrderId, OrderStatus, RestaurantId, StopKind, VehicleKind,
};
use serde_json::json;
use service::auth::{Principal, Role};
use time::OffsetDateTime;
use time::macros::datetime;

/// Runs `case` on a fresh in-memory store.
async fn on_memory<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    case(Arc::new(MemoryStore::new())).await;
}

/// Runs `case` on a fresh database, dropping it afterwards even when the case fails.
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = service::testing::TestDb::new(true).await;
    let store = Arc::new(PgStore::new(db.pool.clone()));
    let outcome = AssertUnwindSafe(case(store)).catch_unwind().await;
    db.drop_database().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// One test per case and store.
macro_rules! contract {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::on_memory(super::$case).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::on_postgres(super::$case).await;
                }
            )+
        }
    };
}

contract!(
    a_committed_batch_is_visible_through_every_read,
    a_duplicate_inbox_key_writes_nothing_and_is_duplicate,
    a_route_seq_that_does_not_grow_is_stale_and_writes_nothing_of_the_batch,
    creating_an_existing_order_is_stale_and_keeps_the_stored_one,
    a_reference_to_an_unknown_courier_or_order_is_not_found,
    assignments_open_release_and_reopen_within_and_across_batches,
    orders_are_filtered_by_status_restaurant_courier_and_lateness,
    keyset_pagination_walks_three_pages_without_overlap_or_gap,
    mark_sent_removes_events_from_pending_oldest_first,
    load_returns_only_open_orders_every_courier_and_every_route,
    an_order_is_found_by_its_tracking_id,
    seen_tells_which_message_ids_were_committed,
    a_timeline_lists_entries_oldest_first_across_batches,
    a_courier_upsert_replaces_its_device,
    a_device_named_for_another_courier_moves_to_it,
    a_fresh_store_is_healthy,
    a_token_speaks_for_its_role_and_scope_and_nothing_else_verifies,
    a_token_whose_scope_does_not_fit_its_role_is_refused,
);

// Records for the cases.

/// `secs` after a fixed instant.
fn t(secs: i64) -> OffsetDateTime {
    datetime!(2026-12-01 12:00 UTC) + time::Duration::seconds(secs)
}

fn order_id(id: &str) -> OrderId {
    OrderId::parse(id).expect("test order ids are valid")
}

fn courier_id(id: &str) -> CourierId {
    CourierId::parse(id).expect("test courier ids are valid")
}

/// An order placed at `t(0)`, due by `t(2400)`, waiting for a courier.
fn order(id: &str) -> OrderRecord {
    OrderRecord {
        id: order_id(id),
        restaurant_id: RestaurantId::parse("r1").expect("valid"),
        restaurant: Coordinates::parse(52.520008, 13.404954).expect("valid"),
        dropoff: Coordinates::parse(52.5, 13.4).expect("valid"),
        placed_at: t(0),
        ready_at: t(600),
        deliver_by: Some(t(2400)),
        size: 1,
        status: OrderStatus::Created,
        courier_id: None,
        pinned: false,
        pickup_eta: None,
        dropoff_eta: None,
        picked_up_at: None,
        delivered_at: None,
        finished_at: None,
        failed_reason: None,
        unassigned_reason: Some("no_courier".into()),
        tracking_id: format!("trk-{id}"),
        moves: 0,
        spec_hash: format!("hash-{id}"),
    }
}

/// `order(id)` with `status`, on `courier` when given.
fn order_in(id: &str, status: OrderStatus, courier: Option<&str>) -> OrderRecord {
    OrderRecord {
        status,
        courier_id: courier.map(courier_id),
        unassigned_reason: None,
        ..order(id)
    }
}

/// A bike courier on shift.
fn courier(id: &str) -> CourierRecord {
    CourierRecord {
        id: courier_id(id),
        name: format!("Courier {id}"),
        vehicle: VehicleKind::Bike,
        capacity: 3,
        device_id: format!("dev-{id}"),
        on_shift: true,
        shift_ends_at: Some(t(8 * 3600)),
        created_at: t(-3600),
    }
}

/// A route of `courier` under `seq`, picking up and dropping off `order`.
fn route(courier: &str, seq: u64, order: &str) -> RouteRecord {
    let stop = |kind, eta| RouteStop {
        order_id: order_id(order),
        kind,
        location: Coordinates::parse(52.51, 13.41).expect("valid"),
        eta: t(eta),
        departs_at: t(eta + 60),
        ready_at: (kind == StopKind::Pickup).then(|| t(600)),
        restaurant_id: (kind == StopKind::Pickup)
            .then(|| RestaurantId::parse("r1").expect("valid")),
    };
    RouteRecord {
        courier_id: courier_id(courier),
        seq,
        stops: vec![stop(StopKind::Pickup, 600), stop(StopKind::Dropoff, 1500)],
        updated_at: t(seq as i64),
    }
}

fn entry(order: &str, at: i64, kind: &str, actor: Actor) -> TimelineEntry {
    TimelineEntry {
        order_id: order_id(order),
        at: t(at),
        kind: kind.into(),
        actor,
        detail: json!({ "kind": kind, "at": at }),
    }
}

fn event(message_id: &str, order: &str) -> OutboxEvent {
    OutboxEvent {
        id: 0,
        message_id: message_id.into(),
        routing_key: "order.assigned".into(),
        payload: json!({ "order_id": order, "nested": { "list": [1, 2.5, "x"] } }),
        created_at: t(1),
    }
}

fn key(message_id: &str) -> Option<InboxKey> {
    Some(InboxKey {
        message_id: message_id.into(),
        routing_key: "order.created".into(),
    })
}

/// A batch creating `orders`.
fn creating(orders: Vec<OrderRecord>) -> Batch {
    Batch {
        new_orders: orders.iter().map(|o| o.id.clone()).collect(),
        orders,
        ..Batch::default()
    }
}

/// Commits `couriers` on their own.
async fn seed_couriers(store: &dyn Store, ids: &[&str]) {
    store
        .commit(Batch {
            couriers: ids.iter().map(|id| courier(id)).collect(),
            ..Batch::default()
        })
        .await
        .expect("seeding couriers");
}

fn page(limit: usize) -> OrderQuery {
    OrderQuery {
        limit,
        ..OrderQuery::default()
    }
}

fn ids(orders: &[OrderRecord]) -> Vec<&str> {
    orders.iter().map(|o| o.id.as_str()).collect()
}

async fn pending_ids(store: &dyn Store) -> Vec<String> {
    let pending = store.pending_outbox(100).await.expect("pending outbox");
    pending.into_iter().map(|e| e.message_id).collect()
}

// The cases.

async fn a_committed_batch_is_visible_through_every_read(store: Arc<dyn Store>) {
    let o1 = OrderRecord {
        pinned: true,
        size: 2,
        pickup_eta: Some(t(600)),
        dropoff_eta: Some(t(1500)),
        moves: 1,
        ..order_in("o1", OrderStatus::Assigned, Some("c1"))
    };
    let c1 = courier("c1");
    let r1 = route("c1", 1, "o1");
    let timeline = vec![
        entry("o1", 0, "placed", Actor::Kitchen),
        entry("o1", 5, "assigned", Actor::Optimizer),
        entry("o1", 6, "pinned", Actor::Staff("alice".into())),
        entry("o1", 7, "pickup_eta", Actor::Courier(courier_id("c1"))),
    ];
    let batch = Batch {
        inbox: key("m1"),
        orders: vec![o1.clone()],
        new_orders: vec![o1.id.clone()],
        couriers: vec![c1.clone()],
        assignments: vec![AssignmentChange::Open {
            order_id: o1.id.clone(),
            courier_id: c1.id.clone(),
            by_staff: true,
            pickup_eta: Some(t(600)),
            at: t(5),
        }],
        routes: vec![r1.clone()],
        timeline: timeline.clone(),
        outbox: vec![event("e1", "o1"), event("e2", "o1")],
    };
    store.commit(batch).await.expect("commit");

    let snapshot = store.load().await.expect("load");
    assert_eq!(snapshot.open_orders, std::slice::from_ref(&o1));
    assert_eq!(snapshot.couriers, [c1]);
    assert_eq!(snapshot.routes, [r1]);
    assert_eq!(store.order(&o1.id).await.expect("order"), Some(o1.clone()));
    assert_eq!(
        store.orders(&page(10)).await.expect("orders"),
        std::slice::from_ref(&o1)
    );
    assert_eq!(store.timeline(&o1.id).await.expect("timeline"), timeline);
    let pending = store.pending_outbox(10).await.expect("pending");
    assert_eq!(pending.len(), 2);
    assert!(pending[0].id > 0 && pending[0].id < pending[1].id);
    for (got, want) in pending.iter().zip([event("e1", "o1"), event("e2", "o1")]) {
        assert_eq!(*got, OutboxEvent { id: got.id, ..want });
    }
    assert!(store.seen("m1").await.expect("seen"));
}

async fn a_duplicate_inbox_key_writes_nothing_and_is_duplicate(store: Arc<dyn Store>) {
    let first = Batch {
        inbox: key("m1"),
        outbox: vec![event("e1", "o1")],
        ..creating(vec![order("o1")])
    };
    store.commit(first).await.expect("first commit");
    let again = Batch {
        inbox: key("m1"),
        couriers: vec![courier("c9")],
        timeline: vec![entry("o2", 1, "placed", Actor::Kitchen)],
        outbox: vec![event("e2", "o2")],
        ..creating(vec![order("o2")])
    };
    let err = store
        .commit(again)
        .await
        .expect_err("a second commit of m1");
    assert!(
        matches!(&err, StoreError::Duplicate(id) if id == "m1"),
        "{err:?}"
    );
    assert_eq!(store.order(&order_id("o2")).await.expect("order"), None);
    assert!(
        store
            .timeline(&order_id("o2"))
            .await
            .expect("timeline")
            .is_empty()
    );
    assert!(store.load().await.expect("load").couriers.is_empty());
    assert_eq!(pending_ids(&*store).await, ["e1"]);
}

async fn a_route_seq_that_does_not_grow_is_stale_and_writes_nothing_of_the_batch(
    store: Arc<dyn Store>,
) {
    seed_couriers(&*store, &["c1", "c2"]).await;
    store
        .commit(Batch {
            routes: vec![route("c1", 2, "o0")],
            ..Batch::default()
        })
        .await
        .expect("first route");
    for seq in [2, 1] {
        let stale = Batch {
            inbox: key("m2"),
            couriers: vec![CourierRecord {
                name: "Renamed".into(),
                ..courier("c1")
            }],
            // The other route grows, but the batch fails as a whole.
            routes: vec![route("c2", 1, "o9"), route("c1", seq, "o9")],
            timeline: vec![entry("o9", 1, "placed", Actor::Kitchen)],
            outbox: vec![event("e9", "o9")],
            ..creating(vec![order("o9")])
        };
        let err = store
            .commit(stale)
            .await
            .expect_err("a route that does not grow");
        assert!(matches!(err, StoreError::Stale(_)), "seq {seq}: {err:?}");
    }
    assert!(!store.seen("m2").await.expect("seen"));
    assert_eq!(store.order(&order_id("o9")).await.expect("order"), None);
    assert!(
        store
            .timeline(&order_id("o9"))
            .await
            .expect("timeline")
            .is_empty()
    );
    assert!(pending_ids(&*store).await.is_empty());
    let snapshot = store.load().await.expect("load");
    assert_eq!(snapshot.routes, [route("c1", 2, "o0")]);
    assert!(snapshot.couriers.iter().all(|c| c.name != "Renamed"));

    store
        .commit(Batch {
            routes: vec![route("c1", 3, "o9")],
            ..Batch::default()
        })
        .await
        .expect("a route that grows");
    assert_eq!(
        store.load().await.expect("load").routes,
        [route("c1", 3, "o9")]
    );
}

async fn creating_an_existing_order_is_stale_and_keeps_the_stored_one(store: Arc<dyn Store>) {
    store
        .commit(creating(vec![order("o1")]))
        .await
        .expect("create");
    let other_body = OrderRecord {
        spec_hash: "another".into(),
        ..order("o1")
    };
    let err = store
        .commit(Batch {
            inbox: key("m2"),
            ..creating(vec![order("o2"), other_body])
        })
        .await
        .expect_err("creating o1 twice");
    assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    assert!(!store.seen("m2").await.expect("seen"));
    assert_eq!(store.order(&order_id("o2")).await.expect("order"), None);
    assert_eq!(
        store.order(&order_id("o1")).await.expect("order"),
        Some(order("o1"))
    );

    // Changing an existing order (not creating it) is an upsert.
    let changed = OrderRecord {
        ready_at: t(900),
        ..order("o1")
    };
    store
        .commit(Batch {
            orders: vec![changed.clone()],
            ..Batch::default()
        })
        .await
        .expect("update");
    assert_eq!(
        store.order(&changed.id).await.expect("order"),
        Some(changed)
    );
}

async fn a_reference_to_an_unknown_courier_or_order_is_not_found(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1"]).await;
    store
        .commit(creating(vec![order("o1")]))
        .await
        .expect("create");
    let open = |order: &str, courier: &str| AssignmentChange::Open {
        order_id: order_id(order),
        courier_id: courier_id(courier),
        by_staff: false,
        pickup_eta: None,
        at: t(10),
    };
    let bad = [
        Batch {
            assignments: vec![open("o1", "ghost")],
            ..Batch::default()
        },
        Batch {
            assignments: vec![open("nope", "c1")],
            ..Batch::default()
        },
        Batch {
            assignments: vec![AssignmentChange::Release {
                order_id: order_id("nope"),
                at: t(10),
            }],
            ..Batch::default()
        },
        Batch {
            routes: vec![route("ghost", 1, "o1")],
            ..Batch::default()
        },
        Batch {
            orders: vec![order_in("o1", OrderStatus::Assigned, Some("ghost"))],
            ..Batch::default()
        },
    ];
    for (n, batch) in bad.into_iter().enumerate() {
        let batch = Batch {
            inbox: key(&format!("m{n}")),
            outbox: vec![event(&format!("e{n}"), "o1")],
            ..batch
        };
        let err = store.commit(batch).await.expect_err("an unknown reference");
        assert!(matches!(err, StoreError::NotFound(_)), "batch {n}: {err:?}");
        assert!(!store.seen(&format!("m{n}")).await.expect("seen"));
    }
    assert!(pending_ids(&*store).await.is_empty());
    assert_eq!(
        store.order(&order_id("o1")).await.expect("order"),
        Some(order("o1"))
    );

    // A courier created in the same batch is known.
    store
        .commit(Batch {
            couriers: vec![courier("c2")],
            orders: vec![order_in("o1", OrderStatus::Assigned, Some("c2"))],
            assignments: vec![open("o1", "c2")],
            routes: vec![route("c2", 1, "o1")],
            ..Batch::default()
        })
        .await
        .expect("references made in the same batch");
}

async fn assignments_open_release_and_reopen_within_and_across_batches(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1", "c2"]).await;
    let open = |courier: &str, at: i64| AssignmentChange::Open {
        order_id: order_id("o1"),
        courier_id: courier_id(courier),
        by_staff: courier == "c2",
        pickup_eta: Some(t(at + 300)),
        at: t(at),
    };
    let release = |at: i64| AssignmentChange::Release {
        order_id: order_id("o1"),
        at: t(at),
    };
    let assigned = order_in("o1", OrderStatus::Assigned, Some("c1"));
    store
        .commit(Batch {
            assignments: vec![open("c1", 1), open("c2", 2), release(3), open("c1", 4)],
            ..creating(vec![assigned.clone()])
        })
        .await
        .expect("one batch");
    for batch in [
        vec![open("c2", 5)],
        vec![release(6)],
        vec![release(7)],
        vec![open("c1", 8)],
    ] {
        store
            .commit(Batch {
                assignments: batch,
                ..Batch::default()
            })
            .await
            .expect("a later batch");
    }
    assert_eq!(
        store.order(&assigned.id).await.expect("order"),
        Some(assigned)
    );
}

async fn orders_are_filtered_by_status_restaurant_courier_and_lateness(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1", "c2"]).await;
    let r2 = RestaurantId::parse("r2").expect("valid");
    let placed = |mut o: OrderRecord, at: i64| {
        o.placed_at = t(at);
        o
    };
    let orders = vec![
        // Open, no ETA yet: late only once now passes deliver_by.
        placed(order("a"), 6),
        // Open, its drop-off ETA is past deliver_by: late.
        placed(
            OrderRecord {
                restaurant_id: r2.clone(),
                dropoff_eta: Some(t(3000)),
                ..order_in("b", OrderStatus::Assigned, Some("c1"))
            },
            5,
        ),
        // Delivered in time.
        placed(
            OrderRecord {
                delivered_at: Some(t(2000)),
                finished_at: Some(t(2000)),
                ..order_in("c", OrderStatus::Delivered, Some("c1"))
            },
            4,
        ),
        // Delivered late.
        placed(
            OrderRecord {
                restaurant_id: r2.clone(),
                delivered_at: Some(t(3000)),
                finished_at: Some(t(3000)),
                ..order_in("d", OrderStatus::Delivered, Some("c2"))
            },
            3,
        ),
        // Cancelled: never late.
        placed(
            OrderRecord {
                finished_at: Some(t(100)),
                ..order_in("e", OrderStatus::Cancelled, None)
            },
            2,
        ),
        // No promise: never late.
        placed(
            OrderRecord {
                deliver_by: None,
                dropoff_eta: Some(t(99_000)),
                ..order_in("f", OrderStatus::PickedUp, Some("c2"))
            },
            1,
        ),
    ];
    store.commit(creating(orders)).await.expect("create");
    let query = |f: &dyn Fn(&mut OrderQuery)| {
        let mut q = OrderQuery {
            now: Some(t(1000)),
            ..page(100)
        };
        f(&mut q);
        q
    };
    let cases: Vec<(OrderQuery, Vec<&str>)> = vec![
        (query(&|_| {}), vec!["a", "b", "c", "d", "e", "f"]),
        (
            query(&|q| q.statuses = vec![OrderStatus::Created, OrderStatus::Delivered]),
            vec!["a", "c", "d"],
        ),
        (query(&|q| q.restaurants = vec![r2.clone()]), vec!["b", "d"]),
        (
            query(&|q| q.restaurants = vec![r2.clone(), RestaurantId::parse("r1").expect("valid")]),
            vec!["a", "b", "c", "d", "e", "f"],
        ),
        (
            query(&|q| q.courier = Some(courier_id("c1"))),
            vec!["b", "c"],
        ),
        (query(&|q| q.late = Some(true)), vec!["b", "d"]),
        (query(&|q| q.late = Some(false)), vec!["a", "c", "e", "f"]),
        (
            query(&|q| {
                q.late = Some(true);
                q.now = Some(t(5000));
            }),
            vec!["a", "b", "d"],
        ),
        (
            query(&|q| {
                q.late = Some(true);
                q.courier = Some(courier_id("c2"));
                q.statuses = vec![OrderStatus::Delivered];
            }),
            vec!["d"],
        ),
        (query(&|q| q.courier = Some(courier_id("nobody"))), vec![]),
    ];
    for (q, want) in cases {
        let got = store.orders(&q).await.expect("orders");
        assert_eq!(ids(&got), want, "{q:?}");
    }
}

async fn keyset_pagination_walks_three_pages_without_overlap_or_gap(store: Arc<dyn Store>) {
    // Seven orders, with ties on placed_at broken by id (descending).
    let spec = [
        ("o1", 10),
        ("o2", 20),
        ("o3", 20),
        ("o4", 20),
        ("o5", 30),
        ("o6", 5),
        ("o7", 30),
    ];
    let orders: Vec<OrderRecord> = spec
        .iter()
        .map(|(id, at)| OrderRecord {
            placed_at: t(*at),
            ..order(id)
        })
        .collect();
    store.commit(creating(orders)).await.expect("create");
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let q = OrderQuery {
            after: after.clone(),
            ..page(3)
        };
        let got = store.orders(&q).await.expect("orders");
        let Some(last) = got.last() else { break };
        after = Some((last.placed_at, last.id.clone()));
        pages.push(got.len());
        seen.extend(got.iter().map(|o| o.id.as_str().to_string()));
    }
    assert_eq!(pages, [3, 3, 1]);
    assert_eq!(seen, ["o7", "o5", "o4", "o3", "o2", "o1", "o6"]);

    // The limit is clamped to 1..=500.
    assert_eq!(ids(&store.orders(&page(0)).await.expect("orders")), ["o7"]);
    assert_eq!(store.orders(&page(10_000)).await.expect("orders").len(), 7);
}

async fn mark_sent_removes_events_from_pending_oldest_first(store: Arc<dyn Store>) {
    for (n, events) in [vec!["e1", "e2"], vec!["e3"]].into_iter().enumerate() {
        store
            .commit(Batch {
                inbox: key(&format!("m{n}")),
                outbox: events.iter().map(|e| event(e, "o1")).collect(),
                ..Batch::default()
            })
            .await
            .expect("commit");
    }
    let pending = store.pending_outbox(10).await.expect("pending");
    assert_eq!(
        pending
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        ["e1", "e2", "e3"]
    );
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    let first_two = store.pending_outbox(2).await.expect("pending");
    assert_eq!(first_two, pending[..2]);

    store
        .mark_sent(&[pending[0].id, pending[1].id])
        .await
        .expect("mark sent");
    assert_eq!(pending_ids(&*store).await, ["e3"]);
    // Marking again, or nothing, or an unknown id, is harmless.
    store
        .mark_sent(&[pending[0].id, 9_999])
        .await
        .expect("again");
    store.mark_sent(&[]).await.expect("nothing");
    store.mark_sent(&[pending[2].id]).await.expect("the last");
    assert!(pending_ids(&*store).await.is_empty());
}

async fn load_returns_only_open_orders_every_courier_and_every_route(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1", "c2"]).await;
    let done = |id: &str, status| OrderRecord {
        finished_at: Some(t(2000)),
        ..order_in(id, status, Some("c1"))
    };
    store
        .commit(Batch {
            routes: vec![route("c1", 1, "b"), route("c2", 4, "c")],
            ..creating(vec![
                order("a"),
                order_in("b", OrderStatus::Assigned, Some("c1")),
                order_in("c", OrderStatus::PickedUp, Some("c2")),
                done("d", OrderStatus::Delivered),
                done("e", OrderStatus::Failed),
                OrderRecord {
                    courier_id: None,
                    ..done("f", OrderStatus::Cancelled)
                },
            ])
        })
        .await
        .expect("create");
    let snapshot = store.load().await.expect("load");
    let mut open = ids(&snapshot.open_orders);
    open.sort_unstable();
    assert_eq!(open, ["a", "b", "c"]);
    assert_eq!(snapshot.couriers, [courier("c1"), courier("c2")]);
    assert_eq!(snapshot.routes, [route("c1", 1, "b"), route("c2", 4, "c")]);
    // Closed orders are still readable one by one.
    assert!(store.order(&order_id("e")).await.expect("order").is_some());
}

async fn an_order_is_found_by_its_tracking_id(store: Arc<dyn Store>) {
    store
        .commit(creating(vec![order("o1"), order("o2")]))
        .await
        .expect("create");
    let found = store.order_by_tracking_id("trk-o2").await.expect("lookup");
    assert_eq!(found, Some(order("o2")));
    assert_eq!(
        store.order_by_tracking_id("trk-zz").await.expect("lookup"),
        None
    );
    assert_eq!(store.order_by_tracking_id("").await.expect("lookup"), None);
}

async fn seen_tells_which_message_ids_were_committed(store: Arc<dyn Store>) {
    assert!(!store.seen("m1").await.expect("seen"));
    store
        .commit(Batch {
            inbox: key("m1"),
            ..Batch::default()
        })
        .await
        .expect("an inbox key alone");
    store
        .commit(creating(vec![order("o1")]))
        .await
        .expect("a batch without a key");
    assert!(store.seen("m1").await.expect("seen"));
    assert!(!store.seen("m2").await.expect("seen"));
}

async fn a_timeline_lists_entries_oldest_first_across_batches(store: Arc<dyn Store>) {
    store
        .commit(Batch {
            timeline: vec![
                entry("o1", 0, "placed", Actor::Kitchen),
                entry("o1", 20, "picked_up", Actor::Gps),
                entry("o2", 5, "placed", Actor::Kitchen),
            ],
            ..creating(vec![order("o1"), order("o2")])
        })
        .await
        .expect("first");
    store
        .commit(Batch {
            timeline: vec![
                entry("o1", 10, "assigned", Actor::Optimizer),
                entry("o1", 20, "delivered", Actor::System),
            ],
            ..Batch::default()
        })
        .await
        .expect("second");
    let kinds: Vec<String> = store
        .timeline(&order_id("o1"))
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["placed", "assigned", "picked_up", "delivered"]);
    assert!(
        store
            .timeline(&order_id("zz"))
            .await
            .expect("timeline")
            .is_empty()
    );
}

async fn a_courier_upsert_replaces_its_device(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1"]).await;
    let changed = CourierRecord {
        device_id: "phone-2".into(),
        vehicle: VehicleKind::Car,
        capacity: 6,
        on_shift: false,
        shift_ends_at: None,
        ..courier("c1")
    };
    store
        .commit(Batch {
            couriers: vec![changed.clone()],
            ..Batch::default()
        })
        .await
        .expect("upsert");
    assert_eq!(store.load().await.expect("load").couriers, [changed]);
}

async fn a_device_named_for_another_courier_moves_to_it(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1", "c2"]).await;
    let c2 = CourierRecord {
        device_id: "dev-c1".into(),
        ..courier("c2")
    };
    store
        .commit(Batch {
            couriers: vec![c2.clone()],
            ..Batch::default()
        })
        .await
        .expect("upsert");
    let c1 = CourierRecord {
        device_id: String::new(),
        ..courier("c1")
    };
    assert_eq!(store.load().await.expect("load").couriers, [c1, c2]);
}

async fn a_fresh_store_is_healthy(store: Arc<dyn Store>) {
    assert!(store.healthy().await);
    store
        .commit(Batch::default())
        .await
        .expect("an empty batch");
    let snapshot = store.load().await.expect("load");
    assert!(snapshot.open_orders.is_empty() && snapshot.couriers.is_empty());
}

async fn a_token_speaks_for_its_role_and_scope_and_nothing_else_verifies(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1"]).await;
    let r1 = RestaurantId::parse("r1").unwrap();
    let r2 = RestaurantId::parse("r2").unwrap();
    let staff = store.create_token(Role::Staff, None, &[]).await.unwrap();
    let kitchen = store
        .create_token(Role::Kitchen, None, &[r1.clone(), r2.clone()])
        .await
        .unwrap();
    let courier = store
        .create_token(Role::Courier, Some(&courier_id("c1")), &[])
        .await
        .unwrap();
    assert_eq!(staff.len(), 64, "256 bits, hex-encoded");
    assert!(staff != kitchen && kitchen != courier);
    let verifier = store.verifier();
    assert_eq!(
        verifier.verify(&staff).await.unwrap(),
        Some(Principal::Staff)
    );
    assert_eq!(
        verifier.verify(&kitchen).await.unwrap(),
        Some(Principal::Kitchen {
            restaurants: vec![r1, r2]
        })
    );
    assert_eq!(
        verifier.verify(&courier).await.unwrap(),
        Some(Principal::Courier(courier_id("c1")))
    );
    for other in ["", "not-a-token", &staff[..63], &"a".repeat(600)] {
        assert_eq!(verifier.verify(other).await.unwrap(), None, "{other:?}");
    }
}

async fn a_token_whose_scope_does_not_fit_its_role_is_refused(store: Arc<dyn Store>) {
    seed_couriers(&*store, &["c1"]).await;
    let r1 = RestaurantId::parse("r1").unwrap();
    let c1 = courier_id("c1");
    for (role, courier, restaurants) in [
        (Role::Courier, None, vec![]),
        (Role::Kitchen, None, vec![]),
        (Role::Staff, Some(&c1), vec![]),
        (Role::Staff, None, vec![r1.clone()]),
        (Role::Courier, Some(&c1), vec![r1.clone()]),
    ] {
        let refused = store.create_token(role, courier, &restaurants).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{role} {courier:?} {restaurants:?}: {refused:?}"
        );
    }
    let unknown = store
        .create_token(Role::Courier, Some(&courier_id("nobody")), &[])
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

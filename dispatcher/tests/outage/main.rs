//! Outages, one at a time (this binary's tests hold one lock, so a broker restart never breaks a
//! test beside it): the service SIGKILLed at random moments and restarted, RabbitMQ restarted,
//! and PostgreSQL unreachable for 10 s. In each, a stream of kitchen orders must end with every
//! published order stored once and every committed event on `dispatch` (duplicates only as
//! resends with the same message id and body).

use std::collections::{HashMap, HashSet};
use std::net::TcpListener as StdListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use service::auth::{Role, create_token};
use service::testing::{Proxy, TestDb, amqp_url, server_addr, via};
use tokio::sync::Mutex;

/// One outage at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn order(id: &str) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    serde_json::to_vec(&json!({
        "order_id": id,
        "restaurant": {"id": "r1", "lat": 60.1699, "lon": 24.9384},
        "dropoff": {"lat": 60.1756, "lon": 24.9500},
        "placed_at": rfc3339(now),
        "ready_at": rfc3339(now + time::Duration::seconds(120)),
    }))
    .expect("serialises")
}

/// Connects to the broker, retrying while it restarts.
async fn connect_retrying(within: Duration) -> Connection {
    let deadline = Instant::now() + within;
    loop {
        match Connection::connect(&amqp_url(), ConnectionProperties::default()).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!(
                "RabbitMQ is not reachable ({e}); start it with `scripts/services` (or `rabbitmq-server -detached`)"
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// A durable queue bound to every key of the test's `dispatch` exchange (it must outlive a
/// broker restart), declared before the service starts so no event is missed.
async fn declare_watch(conn: &Connection, suffix: &str) -> String {
    let ch = conn.create_channel().await.expect("channel");
    let exchange = format!("dispatch{suffix}");
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declaring the dispatch exchange");
    let queue = format!("watch{suffix}");
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .expect("declaring the watch queue");
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("binding the watch queue");
    queue
}

/// Also the kitchen exchange, so orders published before the service first connects are routed
/// to its queue (declared here exactly as the service declares it).
async fn declare_kitchen(conn: &Connection, suffix: &str) {
    let ch = conn.create_channel().await.expect("channel");
    dispatcher::bus::Topology::with_suffix(suffix)
        .declare(&ch)
        .await
        .expect("declaring the kitchen topology");
}

/// Publishes `ids` with confirms, reconnecting and resending what was not confirmed (same
/// message id) while the broker is away.
async fn publish_all(suffix: &str, ids: &[String], pause: Duration) {
    let exchange = format!("kitchen{suffix}");
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        let conn = connect_retrying(Duration::from_secs(60)).await;
        let Ok(ch) = conn.create_channel().await else {
            continue;
        };
        if ch
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .is_err()
        {
            continue;
        }
        while let Some(id) = pending.first() {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(format!("msg-{id}").into());
            let sent = ch
                .basic_publish(
                    exchange.as_str().into(),
                    "order.created".into(),
                    BasicPublishOptions::default(),
                    &order(id),
                    props,
                )
                .await;
            let confirmed = match sent {
                Ok(confirm) => confirm.await.map(|c| c.is_ack()).unwrap_or(false),
                Err(_) => false,
            };
            if !confirmed {
                break; // reconnect and resend this one
            }
            pending.remove(0);
            tokio::time::sleep(pause).await;
        }
    }
}

/// Everything received on the watch queue: message id → (routing key, body), asserting that a
/// repeated message id carries the same body.
async fn drain_watch(queue: &str, quiet: Duration) -> HashMap<String, (String, Value)> {
    let conn = connect_retrying(Duration::from_secs(30)).await;
    let ch = conn.create_channel().await.expect("channel");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming the watch queue");
    let mut seen: HashMap<String, (String, Value)> = HashMap::new();
    while let Ok(Some(Ok(d))) = tokio::time::timeout(quiet, consumer.next()).await {
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string())
            .expect("every dispatch event has a message id");
        let body: Value = serde_json::from_slice(&d.data).expect("JSON events");
        let key = d.routing_key.to_string();
        if let Some((k, b)) = seen.get(&id) {
            assert_eq!(
                (k, b),
                (&key, &body),
                "a resend must repeat the event exactly"
            );
        }
        seen.insert(id, (key, body));
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    seen
}

/// Checks the end state: every published order stored once, placed once, every outbox event
/// sent and seen on `dispatch`, every assignment announced.
async fn check_nothing_lost(
    pool: &sqlx::PgPool,
    ids: &[String],
    events: &HashMap<String, (String, Value)>,
) {
    let stored: Vec<(String,)> = sqlx::query_as("SELECT id FROM orders")
        .fetch_all(pool)
        .await
        .expect("reading orders");
    let stored: HashSet<String> = stored.into_iter().map(|(id,)| id).collect();
    for id in ids {
        assert!(
            stored.contains(id),
            "order {id} was published and acked but is missing"
        );
    }
    let placed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT order_id, count(*) FROM order_events WHERE kind = 'placed' GROUP BY order_id",
    )
    .fetch_all(pool)
    .await
    .expect("reading the timeline");
    for (id, n) in placed {
        assert_eq!(n, 1, "order {id} was placed {n} times");
    }
    let outbox: Vec<(String, String, Option<time::OffsetDateTime>)> =
        sqlx::query_as("SELECT message_id, routing_key, sent_at FROM outbox")
            .fetch_all(pool)
            .await
            .expect("reading the outbox");
    for (id, key, sent) in &outbox {
        assert!(sent.is_some(), "outbox event {id} ({key}) was never sent");
        assert!(
            events.contains_key(id),
            "outbox event {id} ({key}) never reached dispatch"
        );
    }
    let assigned: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT order_id FROM assignments WHERE source = 'optimizer'")
            .fetch_all(pool)
            .await
            .expect("reading assignments");
    assert!(
        !assigned.is_empty(),
        "the planner assigned nothing, so nothing was checked"
    );
    for (order,) in assigned {
        assert!(
            events
                .values()
                .any(|(k, b)| (k == "order.assigned" || k == "order.reassigned")
                    && b["order_id"] == order.as_str()),
            "the assignment of {order} was never announced"
        );
    }
}

/// Waits until the service has stored every order, planned each at least once and emptied
/// its outbox.
async fn wait_settled(pool: &sqlx::PgPool, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let orders: (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
            .fetch_one(pool)
            .await
            .unwrap_or((0,));
        let unsent: (i64,) = sqlx::query_as("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap_or((1,));
        // Every order has been through a planning run (assigned, or waiting with a reason).
        let unassigned: (i64,) = sqlx::query_as(
            "SELECT count(*) FROM orders WHERE status = 'created' \
             AND unassigned_reason IS NOT DISTINCT FROM 'not_planned_yet'",
        )
        .fetch_one(pool)
        .await
        .unwrap_or((1,));
        if orders.0 as usize >= n && unsent.0 == 0 && unassigned.0 == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {} of {n} orders, {} unsent events, {} never planned",
            orders.0,
            unsent.0,
            unassigned.0
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `dispatcher serve` binary as a child process.
struct Child {
    process: tokio::process::Child,
}

struct Service {
    database_url: String,
    suffix: String,
    http: u16,
    osmand: u16,
}

impl Service {
    fn spawn(&self) -> Child {
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatcher"))
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("AMQP_URL", amqp_url())
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.http))
            .env("OSMAND_ADDR", format!("127.0.0.1:{}", self.osmand))
            .env("TOPOLOGY_SUFFIX", &self.suffix)
            .env("PLANNER_DEBOUNCE_MS", "20")
            .env("PLANNER_INTERVAL_MS", "1000")
            .env("PLANNER_BUDGET_MS", "300")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the dispatcher binary");
        Child { process }
    }

    async fn wait_healthy(&self, within: Duration) {
        let url = format!("http://127.0.0.1:{}/healthz", self.http);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the service never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Child {
    /// SIGKILL, no goodbye.
    async fn kill(mut self) {
        self.process.start_kill().expect("SIGKILL");
        let _ = self.process.wait().await;
    }
}

/// A courier on shift with a position, through the public API, so orders get assigned; returns
/// its id. Its bag holds eight orders: the rest wait with the reason `capacity`, so every order
/// is still planned once, and the solver never faces one 120-stop route (which takes it seconds
/// per iteration in a debug build on a loaded machine).
async fn courier_on_shift(pool: &sqlx::PgPool, http: u16, osmand: u16) -> String {
    let staff = create_token(pool, Role::Staff, None, &[])
        .await
        .expect("token");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://127.0.0.1:{http}/v1/couriers"))
        .bearer_auth(&staff)
        .json(&json!({"name": "Kim", "vehicle": "car", "device_id": "outage-phone", "capacity": 8}))
        .send()
        .await
        .expect("registering");
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = client
        .post(format!("http://127.0.0.1:{http}/v1/couriers/{id}/shift"))
        .bearer_auth(&staff)
        .json(&json!({"state": "on"}))
        .send()
        .await
        .expect("shift");
    assert_eq!(r.status().as_u16(), 200);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = client
        .get(format!(
            "http://127.0.0.1:{osmand}/?id=outage-phone&lat=60.17&lon=24.94&timestamp={now}"
        ))
        .send()
        .await
        .expect("position");
    assert_eq!(r.status().as_u16(), 200);
    id
}

async fn delete_queues(suffix: &str) {
    let conn = connect_retrying(Duration::from_secs(30)).await;
    let ch = conn.create_channel().await.expect("channel");
    for q in [
        format!("watch{suffix}"),
        format!("dispatcher.kitchen{suffix}"),
        format!("kitchen.dead{suffix}"),
    ] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}

#[tokio::test]
async fn sigkilled_at_random_moments_the_service_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::new(true).await;
    let suffix = format!(".kill-{}", uuid::Uuid::new_v4().simple());
    let conn = connect_retrying(Duration::from_secs(10)).await;
    let watch = declare_watch(&conn, &suffix).await;
    declare_kitchen(&conn, &suffix).await;
    let service = Service {
        database_url: db.url.clone(),
        suffix: suffix.clone(),
        http: free_port(),
        osmand: free_port(),
    };
    let mut child = service.spawn();
    service.wait_healthy(Duration::from_secs(30)).await;
    courier_on_shift(&db.pool, service.http, service.osmand).await;

    let ids: Vec<String> = (0..60).map(|i| format!("k-{i}")).collect();
    let publisher = {
        let (suffix, ids) = (suffix.clone(), ids.clone());
        tokio::spawn(async move { publish_all(&suffix, &ids, Duration::from_millis(40)).await })
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..900))).await;
        child.kill().await;
        child = service.spawn();
        service.wait_healthy(Duration::from_secs(30)).await;
    }
    publisher.await.expect("the publisher");
    wait_settled(&db.pool, ids.len(), Duration::from_secs(30)).await;
    child.kill().await;
    let events = drain_watch(&watch, Duration::from_secs(2)).await;
    check_nothing_lost(&db.pool, &ids, &events).await;
    delete_queues(&suffix).await;
    db.drop_database().await;
}

/// Puts RabbitMQ's app back even when the test fails.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .arg("start_app")
            .output();
    }
}

#[tokio::test]
async fn a_rabbitmq_restart_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::new(true).await;
    let suffix = format!(".broker-{}", uuid::Uuid::new_v4().simple());
    let conn = connect_retrying(Duration::from_secs(10)).await;
    let watch = declare_watch(&conn, &suffix).await;
    declare_kitchen(&conn, &suffix).await;
    drop(conn);
    let service = Service {
        database_url: db.url.clone(),
        suffix: suffix.clone(),
        http: free_port(),
        osmand: free_port(),
    };
    let child = service.spawn();
    service.wait_healthy(Duration::from_secs(30)).await;
    courier_on_shift(&db.pool, service.http, service.osmand).await;
    let ids: Vec<String> = (0..40).map(|i| format!("b-{i}")).collect();
    let publisher = {
        let (suffix, ids) = (suffix.clone(), ids.clone());
        tokio::spawn(async move { publish_all(&suffix, &ids, Duration::from_millis(50)).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let guard = BrokerGuard;
    let out = tokio::process::Command::new("rabbitmqctl")
        .arg("stop_app")
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "stop_app: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = tokio::process::Command::new("rabbitmqctl")
        .arg("start_app")
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "start_app: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(guard);
    publisher.await.expect("the publisher");
    service.wait_healthy(Duration::from_secs(60)).await;
    wait_settled(&db.pool, ids.len(), Duration::from_secs(60)).await;
    child.kill().await;
    let events = drain_watch(&watch, Duration::from_secs(2)).await;
    check_nothing_lost(&db.pool, &ids, &events).await;
    delete_queues(&suffix).await;
    db.drop_database().await;
}

#[tokio::test]
async fn postgres_unreachable_for_ten_seconds_stops_acks_and_resumes_by_itself() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::new(true).await;
    let proxy = Arc::new(Proxy::start(server_addr(&db.url, 5432)).await);
    let suffix = format!(".pgcut-{}", uuid::Uuid::new_v4().simple());
    let conn = connect_retrying(Duration::from_secs(10)).await;
    let watch = declare_watch(&conn, &suffix).await;
    declare_kitchen(&conn, &suffix).await;
    let service = Service {
        database_url: via(&db.url, proxy.addr()),
        suffix: suffix.clone(),
        http: free_port(),
        osmand: free_port(),
    };
    let child = service.spawn();
    service.wait_healthy(Duration::from_secs(30)).await;
    courier_on_shift(&db.pool, service.http, service.osmand).await;
    let first: Vec<String> = (0..10).map(|i| format!("p-{i}")).collect();
    publish_all(&suffix, &first, Duration::from_millis(20)).await;
    wait_settled(&db.pool, first.len(), Duration::from_secs(20)).await;

    proxy.cut();
    let cut_at = Instant::now();
    let during: Vec<String> = (10..25).map(|i| format!("p-{i}")).collect();
    publish_all(&suffix, &during, Duration::from_millis(20)).await;
    // While the database is away: /healthz says so, and nothing is acked.
    let health = format!("http://127.0.0.1:{}/healthz", service.http);
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut saw_503 = false;
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(&health).await
            && r.status().as_u16() == 503
        {
            assert!(r.headers().contains_key("retry-after"));
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        saw_503,
        "/healthz never said 503 while PostgreSQL was unreachable"
    );
    tokio::time::sleep(
        (cut_at + Duration::from_secs(10)).saturating_duration_since(Instant::now()),
    )
    .await;
    proxy.restore();

    let mut ids = first.clone();
    ids.extend(during);
    wait_settled(&db.pool, ids.len(), Duration::from_secs(40)).await;
    service.wait_healthy(Duration::from_secs(20)).await;
    child.kill().await;
    let events = drain_watch(&watch, Duration::from_secs(2)).await;
    check_nothing_lost(&db.pool, &ids, &events).await;
    delete_queues(&suffix).await;
    drop(proxy);
    db.drop_database().await;
}

type CourierSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame on a courier socket within `within`; `None` on timeout or when closed.
async fn ws_frame(socket: &mut CourierSocket, within: Duration) -> Option<Value> {
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
        {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

/// Reads frames until one satisfies `wanted`; panics after `within`.
async fn ws_frame_where(
    socket: &mut CourierSocket,
    within: Duration,
    what: &str,
    mut wanted: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws_frame(socket, left).await {
            Some(f) if wanted(&f) => return f,
            Some(_) => continue,
            None => panic!("no {what} within {within:?}"),
        }
    }
}

fn route_has(frame: &Value, order: &str) -> bool {
    frame["type"] == "route"
        && frame["stops"]
            .as_array()
            .is_some_and(|s| s.iter().any(|stop| stop["order_id"] == order))
}

#[tokio::test]
async fn a_courier_socket_resumes_after_a_sigkill_and_no_acknowledged_event_is_lost() {
    use futures::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let _serial = SERIAL.lock().await;
    let db = TestDb::new(true).await;
    let suffix = format!(".ws-{}", uuid::Uuid::new_v4().simple());
    let conn = connect_retrying(Duration::from_secs(10)).await;
    let _watch = declare_watch(&conn, &suffix).await;
    declare_kitchen(&conn, &suffix).await;
    let service = Service {
        database_url: db.url.clone(),
        suffix: suffix.clone(),
        http: free_port(),
        osmand: free_port(),
    };
    let mut child = service.spawn();
    service.wait_healthy(Duration::from_secs(30)).await;
    let courier = courier_on_shift(&db.pool, service.http, service.osmand).await;
    let courier = optimizer::model::CourierId::parse(&courier).expect("a courier id");
    let token = create_token(&db.pool, Role::Courier, Some(&courier), &[])
        .await
        .expect("a courier token");
    let staff = create_token(&db.pool, Role::Staff, None, &[])
        .await
        .expect("a staff token");
    let url = |since: Option<u64>| {
        let base = format!(
            "ws://127.0.0.1:{}/v1/courier/ws?token={token}",
            service.http
        );
        since.map_or(base.clone(), |s| format!("{base}&since={s}"))
    };

    let (mut socket, _) = tokio_tungstenite::connect_async(url(None))
        .await
        .expect("the courier socket opens");
    let mut held = 0;
    let mut track = |f: &Value| {
        if f["type"] == "route" {
            held = held.max(f["seq"].as_u64().unwrap_or(0));
        }
    };
    publish_all(&suffix, &["ws-1".to_string()], Duration::ZERO).await;
    ws_frame_where(
        &mut socket,
        Duration::from_secs(15),
        "the first route",
        |f| {
            track(f);
            route_has(f, "ws-1")
        },
    )
    .await;
    let tap =
        json!({"type": "event", "client_id": "tap-1", "order_id": "ws-1", "event": "picked_up"});
    socket
        .send(Message::Text(tap.to_string().into()))
        .await
        .expect("sending the event");
    let ok = ws_frame_where(&mut socket, Duration::from_secs(10), "event_ok", |f| {
        track(f);
        f["client_id"] == "tap-1"
    })
    .await;
    assert_eq!(ok["type"], "event_ok", "{ok}");
    assert_eq!(ok["status"], "picked_up");
    // Take in the route without the pickup, if it came before the kill.
    while let Some(f) = ws_frame(&mut socket, Duration::from_millis(300)).await {
        track(&f);
    }
    let since = held;
    assert!(since >= 1);

    // Killed with the courier connected; an order arrives while the service is away.
    child.kill().await;
    assert!(
        ws_frame(&mut socket, Duration::from_secs(5))
            .await
            .is_none(),
        "the socket ends with the process"
    );
    publish_all(&suffix, &["ws-2".to_string()], Duration::ZERO).await;
    child = service.spawn();
    service.wait_healthy(Duration::from_secs(30)).await;

    let (mut socket, _) = tokio_tungstenite::connect_async(url(Some(since)))
        .await
        .expect("the courier socket opens again");
    let welcome = ws_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("a welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert!(welcome["seq"].as_u64().expect("a seq") >= since);
    let route = ws_frame_where(
        &mut socket,
        Duration::from_secs(20),
        "the route with the order placed during the outage",
        |f| route_has(f, "ws-2"),
    )
    .await;
    assert!(route["seq"].as_u64().expect("a seq") > since, "{route}");
    assert!(
        route["stops"]
            .as_array()
            .expect("stops")
            .iter()
            .all(|s| !(s["order_id"] == "ws-1" && s["kind"] == "pickup")),
        "the acknowledged pickup is not planned again: {route}"
    );

    // The acknowledged event survived: status, timeline, and a resend is a duplicate.
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let staff = staff.clone();
        async move {
            let r = client
                .get(format!("http://127.0.0.1:{}{path}", service.http))
                .bearer_auth(staff)
                .send()
                .await
                .expect("the API answers");
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.expect("JSON")
        }
    };
    let order = get("/v1/orders/ws-1".into()).await;
    assert_eq!(order["status"], "picked_up", "{order}");
    let timeline = get("/v1/orders/ws-1/timeline".into()).await;
    let picked = timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "picked_up")
        .count();
    assert_eq!(picked, 1, "{timeline}");
    socket
        .send(Message::Text(tap.to_string().into()))
        .await
        .expect("resending the event");
    let again = ws_frame_where(&mut socket, Duration::from_secs(10), "event_ok", |f| {
        f["client_id"] == "tap-1"
    })
    .await;
    assert_eq!(again["type"], "event_ok", "{again}");
    assert_eq!(again["duplicate"], true);

    child.kill().await;
    delete_queues(&suffix).await;
    db.drop_database().await;
}

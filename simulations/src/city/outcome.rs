//! The end of a city run: every order the kitchens published is looked up through the staff
//! API (its record and its timeline), and the service-side KPIs are computed from what the
//! service says happened: how many orders ended delivered, cancelled or failed, how many were
//! lost (published, confirmed by the broker, and not ending in one of those), click-to-door,
//! ready-to-pickup, lateness against the promise, reassignments, and deliveries recorded twice.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::stats::{mean, quantile};

/// One order as the service tells it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderOutcome {
    /// The order id.
    pub id: String,
    /// Whether the service knows it at all.
    pub found: bool,
    /// `created`, `assigned`, `picked_up`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// When placed.
    pub placed_at: Option<OffsetDateTime>,
    /// When the food was (last said to be) ready.
    pub ready_at: Option<OffsetDateTime>,
    /// The promise.
    pub deliver_by: Option<OffsetDateTime>,
    /// When picked up.
    pub picked_up_at: Option<OffsetDateTime>,
    /// When delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// Whether it ever had a courier.
    pub assigned: bool,
    /// Times it moved from one courier to another.
    pub reassignments: u32,
    /// `delivered` entries in its timeline (more than one is a duplicated delivery).
    pub deliveries: u32,
    /// A failure's reason, when it failed.
    pub failed_reason: Option<String>,
    /// When the service recorded the order (its timeline's `placed`).
    pub recorded_at: Option<OffsetDateTime>,
    /// When the service first gave it a courier (its timeline's first `assigned`).
    pub first_assigned_at: Option<OffsetDateTime>,
}

impl OrderOutcome {
    /// Whether it reached an end: delivered, cancelled, or failed with a reason.
    pub fn is_final(&self) -> bool {
        match self.status.as_str() {
            "delivered" | "cancelled" => true,
            "failed" => self.failed_reason.as_deref().is_some_and(|r| !r.is_empty()),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct OrderIn {
    status: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    placed_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    ready_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    deliver_by: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    picked_up_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    delivered_at: Option<OffsetDateTime>,
    #[serde(default)]
    failed_reason: Option<String>,
}

#[derive(Deserialize)]
struct TimelineIn {
    entries: Vec<EntryIn>,
}

#[derive(Deserialize)]
struct EntryIn {
    kind: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// Asks the service about `ids`, `concurrency` at a time; an order the service does not know
/// comes back not `found`.
///
/// # Errors
/// When the service cannot be reached (after retries) or answers something else than the order
/// or 404.
pub async fn fetch(
    http: &reqwest::Client,
    base: &str,
    staff_token: &str,
    ids: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<Vec<OrderOutcome>> {
    futures::stream::iter(ids)
        .map(|id| async move { fetch_one(http, base, staff_token, id).await })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let mut pause = Duration::from_millis(200);
    for attempt in 1..=8 {
        let result = http
            .get(url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match result {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(None),
            Ok(r) if r.status().is_success() => {
                return Ok(Some(r.json().await.context("a JSON answer")?));
            }
            Ok(r) if r.status().is_server_error() && attempt < 8 => {}
            Ok(r) => {
                let status = r.status();
                anyhow::bail!(
                    "GET {url}: {status}: {}",
                    r.text().await.unwrap_or_default()
                );
            }
            Err(e) if attempt == 8 => return Err(e).with_context(|| format!("GET {url}")),
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(3));
    }
    anyhow::bail!("GET {url}: no answer")
}

async fn fetch_one(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: String,
) -> anyhow::Result<OrderOutcome> {
    let Some(order) = get_json(http, &format!("{base}/v1/orders/{id}"), token).await? else {
        return Ok(OrderOutcome {
            id,
            ..OrderOutcome::default()
        });
    };
    let order: OrderIn = serde_json::from_value(order).context("an order")?;
    let timeline = get_json(http, &format!("{base}/v1/orders/{id}/timeline"), token)
        .await?
        .context("an order without a timeline")?;
    let timeline: TimelineIn = serde_json::from_value(timeline).context("a timeline")?;
    let count = |kind: &str| timeline.entries.iter().filter(|e| e.kind == kind).count() as u32;
    let first = |kind: &str| {
        timeline
            .entries
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.at)
    };
    Ok(OrderOutcome {
        id,
        found: true,
        status: order.status,
        placed_at: order.placed_at,
        ready_at: order.ready_at,
        deliver_by: order.deliver_by,
        picked_up_at: order.picked_up_at,
        delivered_at: order.delivered_at,
        assigned: count("assigned") + count("reassigned") > 0,
        reassignments: count("reassigned"),
        deliveries: count("delivered"),
        failed_reason: order.failed_reason,
        recorded_at: first("placed"),
        first_assigned_at: first("assigned"),
    })
}

/// The KPIs of a set of outcomes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderKpis {
    /// Orders published.
    pub orders_placed: u64,
    /// Ended delivered.
    pub delivered: u64,
    /// Ended cancelled.
    pub cancelled: u64,
    /// Ended failed with a reason.
    pub failed: u64,
    /// Published and not ending in one of those three (unknown to the service included).
    pub lost: u64,
    /// Orders whose timeline records more than one delivery.
    pub duplicated_deliveries: u64,
    /// Click-to-door (placed to delivered), minutes: mean and p90.
    pub ctd_mean: Option<f64>,
    /// See `ctd_mean`.
    pub ctd_p90: Option<f64>,
    /// Ready to picked up, minutes (0 when picked up as it was ready).
    pub r2p_mean: Option<f64>,
    /// Share of delivered orders delivered after their promise.
    pub late_share: Option<f64>,
    /// Moves between couriers per order that ever had one.
    pub reassignments_per_order: Option<f64>,
}

/// Computes the KPIs of `outcomes`.
pub fn kpis(outcomes: &[OrderOutcome]) -> OrderKpis {
    let minutes = |a: OffsetDateTime, b: OffsetDateTime| (b - a).as_seconds_f64() / 60.0;
    let status = |s: &str| outcomes.iter().filter(|o| o.status == s).count() as u64;
    let delivered: Vec<&OrderOutcome> = outcomes
        .iter()
        .filter(|o| o.status == "delivered")
        .collect();
    let ctd: Vec<f64> = delivered
        .iter()
        .filter_map(|o| Some(minutes(o.placed_at?, o.delivered_at?)))
        .collect();
    let r2p: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| Some(minutes(o.ready_at?, o.picked_up_at?).max(0.0)))
        .collect();
    let with_promise: Vec<bool> = delivered
        .iter()
        .filter_map(|o| Some(o.delivered_at? > o.deliver_by?))
        .collect();
    let assigned = outcomes.iter().filter(|o| o.assigned).count();
    let moves: u64 = outcomes.iter().map(|o| u64::from(o.reassignments)).sum();
    OrderKpis {
        orders_placed: outcomes.len() as u64,
        delivered: status("delivered"),
        cancelled: status("cancelled"),
        failed: outcomes
            .iter()
            .filter(|o| o.status == "failed" && o.is_final())
            .count() as u64,
        lost: outcomes.iter().filter(|o| !o.is_final()).count() as u64,
        duplicated_deliveries: outcomes.iter().filter(|o| o.deliveries > 1).count() as u64,
        ctd_mean: mean(&ctd),
        ctd_p90: quantile(&ctd, 0.9),
        r2p_mean: mean(&r2p),
        late_share: (!with_promise.is_empty()).then(|| {
            with_promise.iter().filter(|l| **l).count() as f64 / with_promise.len() as f64
        }),
        reassignments_per_order: (assigned > 0).then(|| moves as f64 / assigned as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn delivered(id: &str, ctd_min: i64, late: bool) -> OrderOutcome {
        let placed = datetime!(2026-12-01 12:00 UTC);
        let delivered = placed + time::Duration::minutes(ctd_min);
        OrderOutcome {
            id: id.into(),
            found: true,
            status: "delivered".into(),
            placed_at: Some(placed),
            ready_at: Some(placed + time::Duration::minutes(10)),
            deliver_by: Some(if late {
                delivered - time::Duration::minutes(1)
            } else {
                delivered + time::Duration::minutes(1)
            }),
            picked_up_at: Some(placed + time::Duration::minutes(12)),
            delivered_at: Some(delivered),
            assigned: true,
            reassignments: 1,
            deliveries: 1,
            failed_reason: None,
            recorded_at: Some(placed),
            first_assigned_at: Some(placed),
        }
    }

    #[test]
    fn orders_that_end_without_an_outcome_are_lost() {
        let outcomes = vec![
            delivered("a", 30, false),
            delivered("b", 40, true),
            OrderOutcome {
                id: "c".into(),
                found: true,
                status: "cancelled".into(),
                ..OrderOutcome::default()
            },
            OrderOutcome {
                id: "d".into(),
                found: true,
                status: "failed".into(),
                failed_reason: Some("customer not found".into()),
                assigned: true,
                ..OrderOutcome::default()
            },
            // Still waiting, unknown, or failed without a reason: lost.
            OrderOutcome {
                id: "e".into(),
                found: true,
                status: "assigned".into(),
                assigned: true,
                ..OrderOutcome::default()
            },
            OrderOutcome {
                id: "f".into(),
                ..OrderOutcome::default()
            },
            OrderOutcome {
                id: "g".into(),
                found: true,
                status: "failed".into(),
                failed_reason: Some(String::new()),
                ..OrderOutcome::default()
            },
        ];
        let k = kpis(&outcomes);
        assert_eq!(k.orders_placed, 7);
        assert_eq!((k.delivered, k.cancelled, k.failed, k.lost), (2, 1, 1, 3));
        assert_eq!(k.ctd_mean, Some(35.0));
        assert_eq!(k.late_share, Some(0.5));
        assert_eq!(k.r2p_mean, Some(2.0));
        // Two moves over four orders that had a courier.
        assert_eq!(k.reassignments_per_order, Some(0.5));
        assert_eq!(k.duplicated_deliveries, 0);
        let mut twice = delivered("h", 20, false);
        twice.deliveries = 2;
        assert_eq!(kpis(&[twice]).duplicated_deliveries, 1);
    }
}

//! Arrivals detected from positions: a courier that stays within a radius (default 50 m) of its
//! next stop for a dwell time (default 20 s) has arrived there, and the order's timeline says
//! so (by `gps`) unless the courier tapped it first. A courier far behind its plan (well past
//! the next stop's ETA and still far from it) asks the planner for a new plan.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use optimizer::model::{CourierId, OrderId, StopKind};
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracker::{LatestPosition, LatestPositions};

use crate::dispatch::{Dispatch, Trigger};
use crate::metric;

/// Settings of arrival detection.
#[derive(Clone, Debug)]
pub struct ArrivalConfig {
    /// How close to a stop counts as there.
    pub radius_m: f64,
    /// How long the courier must stay there.
    pub dwell: Duration,
    /// How far past the next stop's ETA a courier counts as behind its plan...
    pub behind_by: Duration,
    /// ...when still farther than this from the stop.
    pub behind_distance_m: f64,
    /// At most one replan request per courier this often.
    pub behind_every: Duration,
}

impl Default for ArrivalConfig {
    fn default() -> Self {
        ArrivalConfig {
            radius_m: 50.0,
            dwell: Duration::from_secs(20),
            behind_by: Duration::from_secs(300),
            behind_distance_m: 500.0,
            behind_every: Duration::from_secs(60),
        }
    }
}

/// What the detector remembers of one courier.
#[derive(Default)]
struct Watch {
    /// The stop the courier is near, and since when (fix time).
    near: Option<(OrderId, StopKind, OffsetDateTime)>,
    /// When it last asked for a replan for being behind.
    asked_at: Option<OffsetDateTime>,
}

/// What one position means for the courier's next stop.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Nothing to do.
    Nothing,
    /// Arrived at this stop.
    Arrived(OrderId, StopKind),
    /// Far behind the plan.
    Behind,
}

/// The detector, fed by every move of [`LatestPositions`].
pub struct ArrivalDetector {
    dispatch: Dispatch,
    config: ArrivalConfig,
    watches: HashMap<CourierId, Watch>,
}

impl ArrivalDetector {
    /// A detector recording through `dispatch`.
    pub fn new(dispatch: Dispatch, config: ArrivalConfig) -> Self {
        ArrivalDetector {
            dispatch,
            config,
            watches: HashMap::new(),
        }
    }

    /// Judges one position against the courier's current route.
    pub fn judge(&mut self, p: &LatestPosition) -> Verdict {
        let next = self.dispatch.read(|s| {
            s.route(&p.courier_id)
                .and_then(|r| r.stops.first().cloned())
                .map(|stop| {
                    let done = s.arrived(&stop.order_id, stop.kind);
                    (stop, done)
                })
        });
        let watch = self.watches.entry(p.courier_id.clone()).or_default();
        let Some((stop, done)) = next else {
            watch.near = None;
            return Verdict::Nothing;
        };
        let distance = p.coords.haversine_m(stop.location);
        if distance <= self.config.radius_m {
            if done {
                return Verdict::Nothing;
            }
            match &watch.near {
                Some((o, k, since)) if *o == stop.order_id && *k == stop.kind => {
                    if p.at - *since >= self.config.dwell {
                        watch.near = None;
                        return Verdict::Arrived(stop.order_id, stop.kind);
                    }
                }
                _ => watch.near = Some((stop.order_id.clone(), stop.kind, p.at)),
            }
            return Verdict::Nothing;
        }
        watch.near = None;
        if distance > self.config.behind_distance_m
            && p.at - stop.eta > self.config.behind_by
            && watch
                .asked_at
                .is_none_or(|t| p.at - t >= self.config.behind_every)
        {
            watch.asked_at = Some(p.at);
            return Verdict::Behind;
        }
        Verdict::Nothing
    }

    /// Runs until `shutdown`, reading every move.
    pub async fn run(mut self, positions: Arc<LatestPositions>, shutdown: CancellationToken) {
        let mut moves = positions.subscribe();
        loop {
            let p = tokio::select! {
                () = shutdown.cancelled() => break,
                p = moves.recv() => p,
            };
            let p = match p {
                Ok(p) => p,
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "Arrival detection skipped positions.");
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            match self.judge(&p) {
                Verdict::Nothing => {}
                Verdict::Behind => self.dispatch.planner_signal().trigger(Trigger::OffPlan),
                Verdict::Arrived(order, kind) => {
                    match self.dispatch.gps_arrival(&p.courier_id, &order, kind).await {
                        Ok(true) => metrics::counter!(metric::ARRIVALS_DETECTED).increment(1),
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(%error, courier_id = %p.courier_id, "Recording an arrival failed.");
                        }
                    }
                }
            }
        }
    }
}

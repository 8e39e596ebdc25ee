//! The ingest service every input goes through (OsmAnd, Traccar JSON, the batch endpoint, and
//! the courier WebSocket the dispatcher wires): find the courier, check each fix, drop jumps,
//! commit through the group-commit [`Writer`], then move the latest positions forward.

use std::sync::Arc;

use optimizer::model::CourierId;
use service::clock::Clock;

use crate::config::TrackerConfig;
use crate::directory::{CourierDirectory, CourierInfo, LookupError};
use crate::latest::{LatestPosition, LatestPositions, Offer};
use crate::metric;
use crate::position::{FixInput, Position, Source};
use crate::validation::{Anchor, Rejection, check_fix, is_impossible_jump};
use crate::writer::{Unavailable, Writer};

/// What became of the fixes of one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    /// Fixes now durably stored (including ones stored before: resends are idempotent).
    pub stored: usize,
    /// Fixes not stored, by their index in the request, and why.
    pub rejected: Vec<(usize, Rejection)>,
}

/// Why a request's fixes could not be taken at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The device id belongs to no courier.
    #[error("unknown device")]
    UnknownDevice,
    /// The courier id is not registered.
    #[error("unknown courier")]
    UnknownCourier,
    /// Storage is not possible right now; resend later.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The courier could not be looked up (database unreachable).
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// Consecutive jump rejections after which a courier's new place is believed (a relocation
/// after a long GPS gap, or a wrong latest position).
const JUMP_STRIKES_TO_ACCEPT: u8 = 3;

/// The ingest service; share it in an `Arc`.
pub struct Ingest {
    config: TrackerConfig,
    directory: Arc<dyn CourierDirectory>,
    writer: Writer,
    latest: Arc<LatestPositions>,
    /// Consecutive jump rejections per courier (bounded by the number of couriers).
    strikes: std::sync::Mutex<std::collections::HashMap<CourierId, u8>>,
    /// What time it is when fixes are judged (`config.clock` unless replaced).
    clock: Clock,
}

impl Ingest {
    /// Builds the service on its parts.
    pub fn new(
        config: TrackerConfig,
        directory: Arc<dyn CourierDirectory>,
        writer: Writer,
        latest: Arc<LatestPositions>,
    ) -> Self {
        Ingest {
            clock: config.clock,
            config,
            directory,
            writer,
            latest,
            strikes: Default::default(),
        }
    }

    /// Replaces the clock (tests: `Clock::from_fn`).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self.config.clock = clock;
        self
    }

    /// The clock fixes are judged by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The latest positions this service keeps up to date.
    pub fn latest(&self) -> &Arc<LatestPositions> {
        &self.latest
    }

    /// The configuration in force.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Whether storing works right now (the database answered the last write or probe).
    pub fn is_healthy(&self) -> bool {
        self.writer.is_healthy()
    }

    /// Fixes sent by a phone under its device id (OsmAnd, Traccar Client).
    ///
    /// # Errors
    /// [`IngestError::UnknownDevice`], or [`IngestError::Unavailable`] / [`IngestError::Lookup`]
    /// when nothing could be stored now.
    pub async fn ingest_device(
        &self,
        device_id: &str,
        fixes: Vec<FixInput>,
        source: Source,
    ) -> Result<IngestReport, IngestError> {
        metrics::counter!(metric::POSITIONS_RECEIVED, "protocol" => source.label())
            .increment(fixes.len() as u64);
        let Some(courier) = self.directory.by_device(device_id).await? else {
            metrics::counter!(metric::POSITIONS_REJECTED, "reason" => metric::reason::UNKNOWN_DEVICE)
                .increment(fixes.len() as u64);
            return Err(IngestError::UnknownDevice);
        };
        self.ingest(courier, Arc::from(device_id), fixes, source)
            .await
    }

    /// Fixes of an authenticated courier (batch endpoint, courier WebSocket).
    ///
    /// # Errors
    /// [`IngestError::UnknownCourier`], or [`IngestError::Unavailable`] / [`IngestError::Lookup`]
    /// when nothing could be stored now.
    pub async fn ingest_courier(
        &self,
        courier_id: &CourierId,
        fixes: Vec<FixInput>,
        source: Source,
    ) -> Result<IngestReport, IngestError> {
        metrics::counter!(metric::POSITIONS_RECEIVED, "protocol" => source.label())
            .increment(fixes.len() as u64);
        let Some(courier) = self.directory.by_courier(courier_id).await? else {
            return Err(IngestError::UnknownCourier);
        };
        let device: Arc<str> = Arc::from(courier_id.as_str());
        self.ingest(courier, device, fixes, source).await
    }

    async fn ingest(
        &self,
        courier: CourierInfo,
        device_id: Arc<str>,
        fixes: Vec<FixInput>,
        source: Source,
    ) -> Result<IngestReport, IngestError> {
        let now = self.clock.now();
        let mut report = IngestReport::default();
        let mut accepted: Vec<(usize, Position)> = Vec::with_capacity(fixes.len());
        for (i, fix) in fixes.iter().enumerate() {
            match check_fix(
                fix,
                &courier.courier_id,
                &device_id,
                source,
                now,
                &self.config,
            ) {
                Ok(p) => accepted.push((i, p)),
                Err(r) => report.rejected.push((i, r)),
            }
        }
        accepted.sort_by_key(|(_, p)| p.fix_time);

        // Jumps are judged against the latest stored position, then against each accepted fix
        // newer than it; a fix at the latest's very time is a resend, already stored.
        let latest = self.latest.get(&courier.courier_id);
        let mut anchor: Option<Anchor> = latest.as_ref().map(LatestPosition::anchor);
        let mut rows = Vec::with_capacity(accepted.len());
        let mut already = 0;
        {
            let mut strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
            for (i, p) in accepted {
                if latest.as_ref().is_some_and(|l| l.at == p.fix_time) {
                    already += 1;
                    continue;
                }
                if let Some(a) = &anchor
                    && is_impossible_jump(a, &p, courier.vehicle)
                {
                    let s = strikes.entry(courier.courier_id.clone()).or_insert(0);
                    *s += 1;
                    if *s < JUMP_STRIKES_TO_ACCEPT {
                        report.rejected.push((i, Rejection::ImpossibleJump));
                        continue;
                    }
                }
                strikes.remove(&courier.courier_id);
                if anchor.is_none_or(|a| p.fix_time > a.at) {
                    anchor = Some(Anchor {
                        coords: p.coords,
                        at: p.fix_time,
                        accuracy_m: p.accuracy_m,
                    });
                }
                rows.push(p);
            }
        }
        for (_, r) in &report.rejected {
            metrics::counter!(metric::POSITIONS_REJECTED, "reason" => r.reason()).increment(1);
        }
        if already > 0 {
            metrics::counter!(metric::POSITIONS_DUPLICATE).increment(already);
        }
        report.rejected.sort_by_key(|(i, _)| *i);

        let newest = rows.last().map(LatestPosition::of);
        let count = rows.len();
        let older = rows
            .iter()
            .filter(|p| latest.as_ref().is_some_and(|l| p.fix_time < l.at))
            .count();
        if let Err(e) = self.writer.store(rows).await {
            metrics::counter!(metric::INGEST_UNAVAILABLE, "cause" => e.cause()).increment(1);
            return Err(e.into());
        }
        if older > 0 {
            metrics::counter!(metric::POSITIONS_OUT_OF_ORDER).increment(older as u64);
        }
        if let Some(newest) = newest
            && self.latest.offer(newest) == Offer::Older
        {
            // A concurrent request moved it further already; nothing to do.
        }
        report.stored = count + already as usize;
        Ok(report)
    }
}

//! Faults for `city --chaos`, on a seeded schedule within the order window: the service is
//! SIGKILLed and started again (three times), RabbitMQ's app is stopped for a few seconds and
//! started (once), and the way to PostgreSQL is cut for ten seconds through a TCP proxy (once).
//! The broker is put back even when the run fails ([`BrokerGuard`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use service::testing::Proxy;
use tokio_util::sync::CancellationToken;

use super::server::ManagedServer;

/// A fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL the service, then start it again.
    Kill,
    /// `rabbitmqctl stop_app`, a pause, `rabbitmqctl start_app`.
    BrokerRestart,
    /// No way to PostgreSQL for [`DATABASE_CUT`].
    DatabaseCut,
}

/// How long the database is unreachable.
pub const DATABASE_CUT: Duration = Duration::from_secs(10);
/// How long the broker's app stays stopped.
pub const BROKER_DOWN: Duration = Duration::from_secs(5);

/// A fault and when it begins, from the start of the run (wall time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Planned {
    /// When.
    pub at: Duration,
    /// What.
    pub fault: Fault,
}

/// A fault as it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Happened {
    /// What.
    pub fault: Fault,
    /// Seconds from the start of the run when it began.
    pub start_s: f64,
    /// Seconds from the start of the run when the service was whole again.
    pub end_s: f64,
    /// Whether it went as planned (the error otherwise).
    pub error: Option<String>,
}

/// Three kills, a broker restart and a database cut, each in its own slot of the middle of
/// `window` (from 10 % to 85 % of it), in a seeded order at seeded moments.
pub fn schedule(seed: u64, window: Duration) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc4a0_5c4a_05c4_a05c);
    let mut faults = vec![
        Fault::Kill,
        Fault::Kill,
        Fault::Kill,
        Fault::BrokerRestart,
        Fault::DatabaseCut,
    ];
    faults.shuffle(&mut rng);
    let (from, to) = (window.mul_f64(0.10), window.mul_f64(0.85));
    let slot = (to - from) / faults.len() as u32;
    faults
        .into_iter()
        .enumerate()
        .map(|(i, fault)| Planned {
            // Within the first two thirds of its slot, so one fault is over before the next.
            at: from + slot * i as u32 + slot.mul_f64(rng.random::<f64>() * 0.66),
            fault,
        })
        .collect()
}

/// Puts RabbitMQ's app back when dropped (a failed or interrupted run included).
pub struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .arg("start_app")
            .output();
    }
}

/// Runs `plan` from `started` until done or `stop`; returns what happened.
pub async fn run(
    plan: Vec<Planned>,
    started: Instant,
    server: Arc<ManagedServer>,
    proxy: Arc<Proxy>,
    log: Arc<Mutex<Vec<Happened>>>,
    stop: CancellationToken,
) {
    for planned in plan {
        let wait = (started + planned.at).saturating_duration_since(Instant::now());
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let start_s = started.elapsed().as_secs_f64();
        tracing::info!(fault = ?planned.fault, at_s = start_s, "Chaos: injecting a fault.");
        let result = match planned.fault {
            Fault::Kill => {
                server.kill().await;
                server.start(Duration::from_secs(120)).await
            }
            Fault::BrokerRestart => broker_restart().await,
            Fault::DatabaseCut => {
                proxy.cut();
                tokio::time::sleep(DATABASE_CUT).await;
                proxy.restore();
                Ok(())
            }
        };
        let happened = Happened {
            fault: planned.fault,
            start_s,
            end_s: started.elapsed().as_secs_f64(),
            error: result.err().map(|e| format!("{e:#}")),
        };
        if let Some(error) = &happened.error {
            tracing::warn!(fault = ?planned.fault, error, "Chaos: a fault did not go as planned.");
        }
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(happened);
    }
}

/// Stops RabbitMQ's app for [`BROKER_DOWN`] and starts it again.
async fn broker_restart() -> anyhow::Result<()> {
    let guard = BrokerGuard;
    let ctl = |arg: &'static str| async move {
        let out = tokio::process::Command::new("rabbitmqctl")
            .arg(arg)
            .output()
            .await
            .map_err(|e| anyhow::anyhow!("running rabbitmqctl {arg}: {e}"))?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl {arg} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    ctl("stop_app").await?;
    tokio::time::sleep(BROKER_DOWN).await;
    let started = ctl("start_app").await;
    drop(guard);
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_seeded_spread_out_and_complete() {
        let window = Duration::from_secs(600);
        let a = schedule(1, window);
        assert_eq!(a, schedule(1, window));
        assert_ne!(a, schedule(2, window));
        assert_eq!(a.iter().filter(|p| p.fault == Fault::Kill).count(), 3);
        assert_eq!(
            a.iter().filter(|p| p.fault == Fault::BrokerRestart).count(),
            1
        );
        assert_eq!(
            a.iter().filter(|p| p.fault == Fault::DatabaseCut).count(),
            1
        );
        for pair in a.windows(2) {
            // At least a third of a slot (600 s * 0.75 / 5 / 3 = 30 s) apart.
            assert!(
                pair[1].at >= pair[0].at + Duration::from_secs(29),
                "{pair:?}"
            );
        }
        assert!(a[0].at >= Duration::from_secs(60));
        assert!(a[4].at <= Duration::from_secs(510));
    }
}

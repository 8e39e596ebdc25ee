//! The `dispatcher serve` the city runs against when it starts one itself: a child process on
//! a fresh UUID-named database and UUID-suffixed RabbitMQ names, on free loopback ports, with
//! its log appended to a file. It can be SIGKILLed and started again on the same database (the
//! chaos runs), and its CPU time and peak memory are read from `/proc`, summed (CPU) or maxed
//! (memory) over every process it was.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::stats::{cpu_seconds, rss_kib};

/// How to start the service.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The `dispatcher` binary.
    pub binary: PathBuf,
    /// `DATABASE_URL` as the service sees it (through the chaos proxy when there is one).
    pub database_url: String,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `HTTP_ADDR` port on 127.0.0.1.
    pub http_port: u16,
    /// `OSMAND_ADDR` port on 127.0.0.1.
    pub osmand_port: u16,
    /// `TOPOLOGY_SUFFIX`.
    pub topology_suffix: String,
    /// `CLOCK_EPOCH` and `CLOCK_SPEEDUP` (the city's simulated time).
    pub clock_epoch: OffsetDateTime,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Where its log goes (appended across restarts).
    pub log: PathBuf,
    /// Extra environment (planner settings, `RUST_LOG`), passed through as given.
    pub env: Vec<(String, String)>,
}

/// The `dispatcher` binary beside the running one (`target/release/dispatcher` next to
/// `target/release/city`, or one directory up from a test in `target/debug/deps`), or
/// `explicit`.
///
/// # Errors
/// When there is none, saying how to build it.
pub fn find_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "no dispatcher binary at {}", path.display());
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating the running binary")?;
    let beside = exe.with_file_name("dispatcher");
    let up = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("dispatcher"));
    [Some(beside.clone()), up]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no dispatcher binary at {}: build it with `cargo build --release -p dispatcher` (or pass --dispatcher PATH)",
                beside.display()
            )
        })
}

/// A free loopback port (bound, then released for the child to take).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// What one process used, as last read.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    pid: u32,
    cpu_s: f64,
    peak_rss_kib: u64,
}

/// The running (or restarting) service.
pub struct ManagedServer {
    spec: ServerSpec,
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
    /// Every process so far; the last is the current one.
    usage: Mutex<Vec<Usage>>,
    /// Starts so far.
    starts: Mutex<u32>,
}

impl ManagedServer {
    /// A server for `spec`, not started.
    pub fn new(spec: ServerSpec) -> ManagedServer {
        ManagedServer {
            spec,
            child: tokio::sync::Mutex::new(None),
            usage: Mutex::new(Vec::new()),
            starts: Mutex::new(0),
        }
    }

    /// The API's base URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.http_port)
    }

    /// The OsmAnd endpoint's base URL.
    pub fn osmand(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.osmand_port)
    }

    /// The spec it runs.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// Starts the process and waits until its HTTP listener answers `/healthz` (with any
    /// status: during a chaos run a dependency may be down while it starts).
    ///
    /// # Errors
    /// When the process cannot be started, or exits, or never answers within `within`.
    pub async fn start(&self, within: Duration) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .with_context(|| format!("opening {}", self.spec.log.display()))?;
        let err = log.try_clone()?;
        let mut command = tokio::process::Command::new(&self.spec.binary);
        command
            .arg("serve")
            .env("DATABASE_URL", &self.spec.database_url)
            .env("AMQP_URL", &self.spec.amqp_url)
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.spec.http_port))
            .env(
                "OSMAND_ADDR",
                format!("127.0.0.1:{}", self.spec.osmand_port),
            )
            .env("TOPOLOGY_SUFFIX", &self.spec.topology_suffix)
            .env(
                "CLOCK_EPOCH",
                self.spec
                    .clock_epoch
                    .format(&Rfc3339)
                    .context("formatting the clock epoch")?,
            )
            .env("CLOCK_SPEEDUP", self.spec.speedup.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for (k, v) in &self.spec.env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.spec.binary.display()))?;
        let pid = child.id().context("the child has a pid")?;
        *lock(&self.starts) += 1;
        lock(&self.usage).push(Usage {
            pid,
            ..Usage::default()
        });
        let url = format!("{}/healthz", self.base());
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "the dispatcher exited with {status} while starting; see {}",
                    self.spec.log.display()
                );
            }
            if client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the dispatcher did not answer within {within:?}; see {}",
                self.spec.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        *self.child.lock().await = Some(child);
        Ok(())
    }

    /// SIGKILL, no goodbye; waits for the process to be gone.
    pub async fn kill(&self) {
        self.sample();
        if let Some(mut child) = self.child.lock().await.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, then waits up to `grace` for a clean stop (SIGKILL after that).
    pub async fn stop(&self, grace: Duration) {
        self.sample();
        let Some(mut child) = self.child.lock().await.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Reads the current process's CPU time and peak memory (call it often: a SIGKILLed
    /// process keeps what was read last).
    pub fn sample(&self) {
        let mut usage = lock(&self.usage);
        let Some(last) = usage.last_mut() else {
            return;
        };
        if let Ok(cpu) = cpu_seconds(&format!("/proc/{}/stat", last.pid)) {
            last.cpu_s = cpu;
        }
        if let Ok((_, peak)) = rss_kib(last.pid) {
            last.peak_rss_kib = last.peak_rss_kib.max(peak);
        }
    }

    /// CPU seconds of every process it was.
    pub fn cpu_seconds(&self) -> f64 {
        lock(&self.usage).iter().map(|u| u.cpu_s).sum()
    }

    /// The highest peak resident set of any of its processes, MiB.
    #[allow(clippy::cast_precision_loss)]
    pub fn peak_rss_mb(&self) -> f64 {
        lock(&self.usage)
            .iter()
            .map(|u| u.peak_rss_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }

    /// How many times it was started.
    pub fn starts(&self) -> u32 {
        *lock(&self.starts)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

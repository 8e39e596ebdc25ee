//! The tracker's tunables: validation thresholds, group-commit sizes, back-pressure bounds and
//! housekeeping periods. A plain struct with `Default`; the service that embeds the tracker
//! fills it from its own settings.

use std::time::Duration;

use service::clock::Clock;

/// How the tracker validates, batches and keeps positions.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// A fix further than this ahead of the server clock is refused (phone clock wrong).
    pub max_future: Duration,
    /// A fix older than this is refused (kept too long on a phone; retention would drop it).
    pub max_age: Duration,
    /// Fixes whose reported accuracy radius is worse than this, in metres, are discarded.
    pub max_accuracy_m: f64,
    /// A batch holds at most this many points.
    pub batch_max_points: usize,
    /// Once a write slot is free, how long a batch still waits for points arriving together.
    pub batch_linger: Duration,
    /// Batches being written at once, each on its own database connection.
    pub parallel_writes: usize,
    /// Points accepted but not yet committed, at most; beyond it requests get 503 (memory bound).
    pub queue_points: usize,
    /// The longest a request waits for its commit before it gets 503 and should resend.
    pub ack_timeout: Duration,
    /// The longest one batch write may take before the connection is given up.
    pub write_timeout: Duration,
    /// `Retry-After` sent with 503, in seconds.
    pub retry_after_s: u32,
    /// Positions older than this are dropped by the retention job.
    pub retention: Duration,
    /// How often retention and partition upkeep run.
    pub maintenance_every: Duration,
    /// Daily partitions kept ready ahead of today on plain PostgreSQL.
    pub partitions_ahead_days: i32,
    /// How long a device or token lookup is cached.
    pub lookup_ttl: Duration,
    /// What time it is for validation and default track windows: the system clock, or the
    /// demo's scaled clock shared with the dispatcher.
    pub clock: Clock,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_future: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_accuracy_m: 150.0,
            batch_max_points: 8_000,
            batch_linger: Duration::from_millis(2),
            parallel_writes: 2,
            queue_points: 200_000,
            ack_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(4),
            retry_after_s: 5,
            retention: Duration::from_secs(30 * 24 * 3600),
            maintenance_every: Duration::from_secs(3600),
            partitions_ahead_days: 7,
            lookup_ttl: Duration::from_secs(60),
            clock: Clock::system(),
        }
    }
}

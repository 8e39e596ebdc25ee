//! The service's own figures, read from its `/metrics` page (Prometheus text): how many
//! replans it ran and the histogram of their wall time. A restarted service starts its counters
//! from zero, so [`Totals`] keeps what each process had counted when it was last read and adds
//! them up; the replans of a SIGKILLed process after its last scrape are not counted.

use std::collections::BTreeMap;

/// The histogram of one solve's wall time, as the dispatcher names it.
pub const REPLAN_SECONDS: &str = "dispatcher_replan_seconds";
/// Replans applied.
pub const REPLANS: &str = "dispatcher_replans_total";
/// Counters kept as they are, by name and labels: what the tracker did with the positions.
pub const COUNTERS: [&str; 5] = [
    "tracker_positions_received_total",
    "tracker_positions_stored_total",
    "tracker_positions_rejected_total",
    "tracker_positions_duplicate_total",
    "tracker_ingest_unavailable_total",
];

/// One scrape: the figures the city reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    /// Replans run.
    pub replans: f64,
    /// Cumulative counts of the replan histogram by upper bound (seconds; `+Inf` last).
    pub buckets: BTreeMap<Bound, f64>,
    /// Sum of replan seconds.
    pub sum_s: f64,
    /// Replans in the histogram.
    pub count: f64,
    /// The [`COUNTERS`], by `name{labels}`.
    pub counters: BTreeMap<String, f64>,
}

/// A histogram bucket's upper bound, ordered (`+Inf` last).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound(pub f64);

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Reads the figures out of a `/metrics` page; missing ones stay zero.
pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (name_labels, ""),
        };
        match name.strip_prefix(REPLAN_SECONDS) {
            Some("_bucket") => {
                let le = labels
                    .split(',')
                    .find_map(|l| l.trim().strip_prefix("le="))
                    .map(|v| v.trim_matches('"'));
                let bound = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => match v.parse() {
                        Ok(b) => b,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                *scrape.buckets.entry(Bound(bound)).or_default() += value;
            }
            Some("_sum") => scrape.sum_s += value,
            Some("_count") => scrape.count += value,
            _ if name == REPLANS => scrape.replans += value,
            _ if COUNTERS.contains(&name) => {
                *scrape.counters.entry(name_labels.to_string()).or_default() += value;
            }
            _ => {}
        }
    }
    scrape
}

/// Figures summed over every process the service was.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// What earlier processes had counted when last read.
    finished: Scrape,
    /// The current process's last scrape.
    current: Scrape,
}

impl Totals {
    /// Takes a new scrape; one whose counts went down comes from a restarted process.
    pub fn add(&mut self, scrape: Scrape) {
        if scrape.replans < self.current.replans || scrape.count < self.current.count {
            let done = std::mem::take(&mut self.current);
            self.finished = combine(&self.finished, &done);
        }
        self.current = scrape;
    }

    /// The totals so far.
    pub fn total(&self) -> Scrape {
        combine(&self.finished, &self.current)
    }
}

fn combine(a: &Scrape, b: &Scrape) -> Scrape {
    let mut buckets = a.buckets.clone();
    for (bound, count) in &b.buckets {
        *buckets.entry(*bound).or_default() += count;
    }
    let mut counters = a.counters.clone();
    for (name, value) in &b.counters {
        *counters.entry(name.clone()).or_default() += value;
    }
    Scrape {
        replans: a.replans + b.replans,
        buckets,
        sum_s: a.sum_s + b.sum_s,
        count: a.count + b.count,
        counters,
    }
}

impl Scrape {
    /// The `q` quantile of replan time in milliseconds, interpolated linearly within its bucket
    /// as Prometheus' `histogram_quantile` does (within the last finite bound when it falls
    /// in `+Inf`); `None` with no replans.
    pub fn replan_quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self
            .buckets
            .get(&Bound(f64::INFINITY))
            .copied()
            .unwrap_or(self.count);
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower = (0.0, 0.0); // (bound, cumulative count)
        for (bound, &cumulative) in &self.buckets {
            if cumulative >= rank {
                if !bound.0.is_finite() {
                    return Some(lower.0 * 1e3);
                }
                let in_bucket = cumulative - lower.1;
                let f = if in_bucket > 0.0 {
                    (rank - lower.1) / in_bucket
                } else {
                    1.0
                };
                return Some((lower.0 + (bound.0 - lower.0) * f) * 1e3);
            }
            lower = (bound.0, cumulative);
        }
        Some(lower.0 * 1e3)
    }

    /// Mean replan time in milliseconds.
    pub fn replan_mean_ms(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum_s / self.count * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE dispatcher_replans_total counter
dispatcher_replans_total 10
# TYPE dispatcher_replan_seconds histogram
dispatcher_replan_seconds_bucket{le=\"0.1\"} 2
dispatcher_replan_seconds_bucket{le=\"0.2\"} 8
dispatcher_replan_seconds_bucket{le=\"0.5\"} 10
dispatcher_replan_seconds_bucket{le=\"+Inf\"} 10
dispatcher_replan_seconds_sum 1.5
dispatcher_replan_seconds_count 10
dispatcher_open_orders 3
tracker_positions_rejected_total{reason=\"too_old\"} 4
";

    #[test]
    fn a_metrics_page_gives_replans_and_their_quantiles() {
        let s = parse(PAGE);
        assert_eq!(s.replans, 10.0);
        assert_eq!(s.count, 10.0);
        assert_eq!(s.buckets.len(), 4);
        // The median lies in (0.1, 0.2]: 3 of its 6 samples in, so half-way.
        assert!((s.replan_quantile_ms(0.5).unwrap() - 150.0).abs() < 1e-9);
        // p99 is the 9.9th sample, in (0.2, 0.5].
        let p99 = s.replan_quantile_ms(0.99).unwrap();
        assert!(p99 > 200.0 && p99 <= 500.0, "{p99}");
        assert_eq!(s.replan_mean_ms(), Some(150.0));
        assert_eq!(
            s.counters["tracker_positions_rejected_total{reason=\"too_old\"}"],
            4.0
        );
        assert_eq!(parse("").replan_quantile_ms(0.5), None);
    }

    #[test]
    fn a_restarted_service_adds_to_the_totals() {
        let mut t = Totals::default();
        t.add(parse(PAGE));
        t.add(parse(PAGE));
        assert_eq!(t.total().replans, 10.0);
        // Restarted: counts start again.
        t.add(parse(
            "dispatcher_replans_total 1\ndispatcher_replan_seconds_bucket{le=\"+Inf\"} 1\ndispatcher_replan_seconds_count 1\n",
        ));
        let total = t.total();
        assert_eq!(total.replans, 11.0);
        assert_eq!(total.count, 11.0);
        assert_eq!(total.buckets[&Bound(f64::INFINITY)], 11.0);
    }
}

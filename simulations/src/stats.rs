//! The few statistics the benchmark binaries report, in one place: means and interpolated
//! quantiles of samples, a millisecond [`Histogram`] for streams too long to keep (map
//! staleness over millions of positions), and a process's CPU time from `/proc`.

use anyhow::Context;

/// The mean; `None` for no samples.
#[must_use]
#[allow(clippy::cast_precision_loss)] // counts are far below 2^52
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Linear-interpolation quantile (pandas' default); `None` for no samples.
#[must_use]
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    // pos lies in [0, len - 1], so the casts are exact indices.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    #[allow(clippy::cast_precision_loss)]
    let frac = pos - lo as f64;
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}

/// Counts of whole milliseconds from 0 to [`Histogram::MAX_MS`] (longer ones in the last
/// bucket), so quantiles of millions of samples need a fixed 1 MB.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_ms: f64,
    max_ms: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; Self::MAX_MS + 1],
            total: 0,
            sum_ms: 0.0,
            max_ms: 0.0,
        }
    }
}

impl Histogram {
    /// The longest duration told apart; longer ones count as this.
    pub const MAX_MS: usize = 120_000;

    /// Counts one sample of `ms` milliseconds (negative ones count as 0).
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bucket = (ms as usize).min(Self::MAX_MS);
        self.counts[bucket] += 1;
        self.total += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// Samples counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q` quantile, to the millisecond (the upper edge of its bucket, so never below the
    /// true value); `None` when empty.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                if ms == Self::MAX_MS {
                    return Some(self.max_ms);
                }
                return Some(((ms + 1) as f64).min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    /// The mean; `None` when empty.
    #[allow(clippy::cast_precision_loss)]
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum_ms / self.total as f64)
    }

    /// The longest sample.
    pub fn max(&self) -> Option<f64> {
        (self.total > 0).then_some(self.max_ms)
    }
}

/// Clock ticks per second of `/proc` CPU times (`CLK_TCK`, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// User plus system CPU seconds from a `/proc/PID/stat` (or `/proc/self/stat`,
/// `/proc/thread-self/stat`) file.
///
/// # Errors
/// When the file cannot be read or is not a stat line.
pub fn cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("a stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / CLOCK_TICKS)
}

/// A process's resident set now and at its peak, KiB, from `/proc/PID/status`.
///
/// # Errors
/// When the file cannot be read (the process is gone) or lacks the fields.
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in {path}"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{name} in {path}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly_like_pandas() {
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&xs, 0.5), Some(2.5));
        assert!((quantile(&xs, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.9), None);
        assert_eq!(mean(&xs), Some(2.5));
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn the_histogram_agrees_with_the_samples_to_the_millisecond() {
        let mut h = Histogram::default();
        let samples: Vec<f64> = (0..1000).map(|i| f64::from(i) * 1.5).collect();
        for &s in &samples {
            h.record(s);
        }
        assert_eq!(h.len(), 1000);
        let exact = quantile(&samples, 0.99).unwrap();
        let got = h.quantile(0.99).unwrap();
        assert!(got >= exact - 1.5 && got <= exact + 1.5, "{got} vs {exact}");
        assert!((h.mean().unwrap() - mean(&samples).unwrap()).abs() < 1e-9);
        assert_eq!(h.max(), Some(1498.5));
        let mut other = Histogram::default();
        other.record(1e9);
        other.record(-3.0);
        h.merge(&other);
        assert_eq!(h.len(), 1002);
        assert_eq!(h.quantile(1.0), Some(1e9));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        assert!(cpu_seconds("/proc/self/stat").unwrap() >= 0.0);
        let (rss, peak) = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0 && peak >= rss);
        assert!(rss_kib(u32::MAX).is_err());
    }
}

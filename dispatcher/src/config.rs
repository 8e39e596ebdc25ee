//! The dispatcher's own settings beyond the shared ones of [`service::settings::Settings`]:
//! the RabbitMQ names (suffixed in tests and simulations, so runs do not see each other) and
//! the planner's timing, read from the environment with the defaults production uses.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::arrival::ArrivalConfig;
use crate::bus::Topology;
use crate::planner::PlannerConfig;

/// What `dispatcher serve` runs with besides the shared settings.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Exchange and queue names.
    pub topology: Topology,
    /// The planner loop.
    pub planner: PlannerConfig,
    /// Arrival detection.
    pub arrival: ArrivalConfig,
    /// The embedded tracker.
    pub tracker: tracker::TrackerConfig,
    /// The web pages' basemap (`MAP_TILES`, `MAP_ATTRIBUTION`).
    pub web: crate::web::WebConfig,
}

impl Options {
    /// Reads `TOPOLOGY_SUFFIX` (appended to every exchange and queue name), `PLANNER_INTERVAL_MS`,
    /// `PLANNER_DEBOUNCE_MS`, `PLANNER_BUDGET_MS`, `PLANNER_QUICK_BUDGET_MS`, `PLANNER_THREADS`,
    /// `MAP_TILES` and `MAP_ATTRIBUTION`.
    ///
    /// # Errors
    /// When a number does not parse or a suffix has characters RabbitMQ names should not.
    pub fn from_env() -> anyhow::Result<Options> {
        Options::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Options::from_env`], reading variables through `get`.
    ///
    /// # Errors
    /// As [`Options::from_env`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Options> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let millis = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            match var(name) {
                None => Ok(default),
                Some(text) => {
                    let ms: u64 = text.trim().parse().with_context(|| {
                        format!("{name}={text:?} is not a number of milliseconds")
                    })?;
                    if ms == 0 {
                        bail!("{name} must be positive");
                    }
                    Ok(Duration::from_millis(ms))
                }
            }
        };
        let mut options = Options::default();
        if let Some(suffix) = var("TOPOLOGY_SUFFIX") {
            if !suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                bail!("TOPOLOGY_SUFFIX={suffix:?}: use letters, digits, '.', '-' or '_'");
            }
            options.topology = Topology::with_suffix(&suffix);
        }
        let p = &mut options.planner;
        p.interval = millis("PLANNER_INTERVAL_MS", p.interval)?;
        p.debounce = millis("PLANNER_DEBOUNCE_MS", p.debounce)?;
        p.budget = millis("PLANNER_BUDGET_MS", p.budget)?;
        p.quick_budget = millis("PLANNER_QUICK_BUDGET_MS", p.quick_budget)?;
        if let Some(text) = var("PLANNER_THREADS") {
            p.threads = text
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("PLANNER_THREADS={text:?} is not a positive number"))?;
        }
        options.web = crate::web::WebConfig::from_lookup(&get)?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let o = Options::from_lookup(|_| None).unwrap();
        assert_eq!(o.topology, Topology::default());
        assert_eq!(o.planner.interval, Duration::from_secs(5));
    }

    #[test]
    fn a_suffix_and_timings_are_read() {
        let o = Options::from_lookup(|name| match name {
            "TOPOLOGY_SUFFIX" => Some(".t1".into()),
            "PLANNER_INTERVAL_MS" => Some("250".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(o.topology.kitchen_exchange, "kitchen.t1");
        assert_eq!(o.planner.interval, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(
            Options::from_lookup(|n| (n == "PLANNER_BUDGET_MS").then(|| "soon".into())).is_err()
        );
        assert!(Options::from_lookup(|n| (n == "TOPOLOGY_SUFFIX").then(|| "a b".into())).is_err());
    }
}

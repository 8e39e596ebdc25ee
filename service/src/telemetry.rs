//! Logging set-up: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`), as JSON
//! in production. Safe to call more than once: later calls keep the first subscriber.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber: JSON lines when `json`, human-readable text otherwise.
pub fn init(json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter());
    // An error means a subscriber is installed already (a second call): keep it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// For tests: logs go to a sink unless `TEST_LOG` is set, then as text to the test's output.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(filter())
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_env_filter(filter())
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn initialising_twice_is_harmless() {
        super::init(true);
        super::init(false);
        super::init_for_tests();
        tracing::info!("Logged once a subscriber is installed.");
    }
}

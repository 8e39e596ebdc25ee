//! A small time-bounded cache of lookups (devices, couriers, tokens), so hot paths rarely query
//! the database. Known absence is cached too, for a shorter while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries a cache keeps at most before it starts over (bounds memory against id floods).
const CACHE_MAX: usize = 200_000;
/// How long "no such thing" is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// A time-bounded cache from text keys to `V` or its known absence.
pub struct TtlCache<V> {
    /// Value (or known absence) and when it was read.
    entries: Mutex<HashMap<String, (Option<V>, Instant)>>,
    /// How long a found value is trusted.
    ttl: Duration,
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache trusting found values for `ttl` (absences for at most 5 s).
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// `Some(cached)` when fresh; `None` when it must be looked up.
    pub fn get(&self, key: &str) -> Option<Option<V>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (value, read_at) = entries.get(key)?;
        let ttl = if value.is_some() {
            self.ttl
        } else {
            NEGATIVE_TTL.min(self.ttl)
        };
        (read_at.elapsed() < ttl).then(|| value.clone())
    }

    /// Remembers `value` (or its absence) for `key` from now on.
    pub fn put(&self, key: &str, value: Option<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_absences_are_cached_until_they_expire() {
        let cache = TtlCache::new(Duration::from_secs(60));
        assert_eq!(cache.get("a"), None);
        cache.put("a", Some(1));
        cache.put("b", None);
        assert_eq!(cache.get("a"), Some(Some(1)));
        assert_eq!(cache.get("b"), Some(None));
        let expired = TtlCache::new(Duration::ZERO);
        expired.put("a", Some(1));
        assert_eq!(expired.get("a"), None);
    }
}

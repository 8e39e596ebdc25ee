//! Bearer tokens: who holds one. Tokens are stored as SHA-256 of the secret in `api_tokens`;
//! [`TokenVerifier`] is the seam the dispatcher shares, [`PgTokenVerifier`] reads the table.

use std::time::Duration;

use futures::future::BoxFuture;
use optimizer::model::CourierId;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::directory::TtlCache;

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Support staff: may see every courier.
    Staff,
    /// A kitchen: places orders.
    Kitchen,
    /// One courier.
    Courier(CourierId),
}

/// The token could not be checked (not: it is invalid).
#[derive(Debug, thiserror::Error)]
#[error("token lookup failed")]
pub struct AuthError(#[source] pub sqlx::Error);

/// Checks bearer tokens.
pub trait TokenVerifier: Send + Sync + 'static {
    /// The principal of a valid, unrevoked token; `None` for any other text.
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>>;
}

/// SHA-256 of a token's secret, as stored in `api_tokens.token_hash`.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// [`TokenVerifier`] on the `api_tokens` table, caching answers briefly (a revocation takes
/// effect within the cache's time to live).
pub struct PgTokenVerifier {
    pool: PgPool,
    cache: TtlCache<Principal>,
}

impl PgTokenVerifier {
    /// A verifier reading through `pool`, caching for `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        PgTokenVerifier {
            pool,
            cache: TtlCache::new(ttl),
        }
    }
}

impl TokenVerifier for PgTokenVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move {
            if token.is_empty() || token.len() > 512 {
                return Ok(None);
            }
            let hash = token_hash(token);
            let key = hex::encode(hash);
            if let Some(hit) = self.cache.get(&key) {
                return Ok(hit);
            }
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT role, courier_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(AuthError)?;
            let principal = row.and_then(|(role, courier)| match (role.as_str(), courier) {
                ("staff", _) => Some(Principal::Staff),
                ("kitchen", _) => Some(Principal::Kitchen),
                ("courier", Some(c)) => CourierId::parse(c).ok().map(Principal::Courier),
                _ => None,
            });
            self.cache.put(&key, principal.clone());
            Ok(principal)
        })
    }
}

/// A fixed set of tokens, for tests.
#[derive(Default)]
pub struct StaticTokens(pub std::collections::HashMap<String, Principal>);

impl TokenVerifier for StaticTokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move { Ok(self.0.get(token).cloned()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_secret() {
        assert_eq!(
            hex::encode(token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

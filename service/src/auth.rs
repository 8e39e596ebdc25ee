//! Bearer tokens: who holds one and what they may do. Tokens are stored as SHA-256 of the secret
//! in `api_tokens` ([`create_token`] makes them); [`TokenVerifier`] is the seam both services
//! check them through ([`PgTokenVerifier`] on the table, [`StaticTokens`] in tests), and the
//! [`Auth`] extractor reads them from requests.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use futures::future::BoxFuture;
use optimizer::model::{CourierId, RestaurantId};
use rand::Rng as _;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::cache::TtlCache;
use crate::error::ApiError;

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Support staff: may see and correct everything.
    Staff,
    /// A kitchen: places orders for, and sees, its restaurants only.
    Kitchen {
        /// The restaurants the token acts for.
        restaurants: Vec<RestaurantId>,
    },
    /// One courier.
    Courier(CourierId),
}

impl Principal {
    /// Whether this is staff.
    pub fn is_staff(&self) -> bool {
        matches!(self, Principal::Staff)
    }

    /// Staff may go on; anyone else gets a 403.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] ("staff only") for kitchens and couriers.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("staff only".into()))
        }
    }

    /// The courier, for a courier token.
    pub fn courier(&self) -> Option<&CourierId> {
        match self {
            Principal::Courier(id) => Some(id),
            _ => None,
        }
    }

    /// Whether this is staff or the courier `id`.
    pub fn may_act_for_courier(&self, id: &CourierId) -> bool {
        match self {
            Principal::Staff => true,
            Principal::Courier(own) => own == id,
            Principal::Kitchen { .. } => false,
        }
    }

    /// Whether this is staff or a kitchen holding restaurant `id`.
    pub fn may_see_restaurant(&self, id: &RestaurantId) -> bool {
        match self {
            Principal::Staff => true,
            Principal::Kitchen { restaurants } => restaurants.contains(id),
            Principal::Courier(_) => false,
        }
    }
}

/// The role column of `api_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Support staff.
    Staff,
    /// A kitchen, scoped to restaurants.
    Kitchen,
    /// One courier.
    Courier,
}

impl Role {
    /// The spelling in the database and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Kitchen => "kitchen",
            Role::Courier => "courier",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role other than `staff`, `kitchen` or `courier`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected staff, kitchen or courier")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "staff" => Ok(Role::Staff),
            "kitchen" => Ok(Role::Kitchen),
            "courier" => Ok(Role::Courier),
            other => Err(UnknownRole(other.to_string())),
        }
    }
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

/// Whether `token` could be a token at all (not empty, at most 512 bytes); anything else is
/// refused without a lookup.
pub fn is_plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 512
}

/// SHA-256 of a token's secret, as stored in `api_tokens.token_hash`.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// [`TokenVerifier`] on the `api_tokens` table, caching answers briefly (a revocation takes
/// effect within the cache's time to live).
pub struct PgTokenVerifier {
    /// Where `api_tokens` is read.
    pool: PgPool,
    /// Recent answers by hex token hash (the secret itself is never kept).
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

fn principal(role: &str, courier: Option<String>, restaurants: Vec<String>) -> Option<Principal> {
    match (role, courier) {
        ("staff", _) => Some(Principal::Staff),
        ("kitchen", _) => Some(Principal::Kitchen {
            restaurants: restaurants
                .into_iter()
                .filter_map(|r| RestaurantId::parse(r).ok())
                .collect(),
        }),
        ("courier", Some(c)) => CourierId::parse(c).ok().map(Principal::Courier),
        _ => None,
    }
}

impl TokenVerifier for PgTokenVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move {
            if !is_plausible(token) {
                return Ok(None);
            }
            let hash = token_hash(token);
            let key = hex::encode(hash);
            if let Some(hit) = self.cache.get(&key) {
                return Ok(hit);
            }
            let row: Option<(String, Option<String>, Vec<String>)> = sqlx::query_as(
                "SELECT role, courier_id, restaurants FROM api_tokens \
                 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(AuthError)?;
            let found =
                row.and_then(|(role, courier, restaurants)| principal(&role, courier, restaurants));
            self.cache.put(&key, found.clone());
            Ok(found)
        })
    }
}

/// A fixed set of tokens, for tests.
#[derive(Default)]
pub struct StaticTokens(pub HashMap<String, Principal>);

impl TokenVerifier for StaticTokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move { Ok(self.0.get(token).cloned()) })
    }
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTokenError {
    /// A courier token needs the courier it is for.
    #[error("a courier token needs --courier ID")]
    CourierRequired,
    /// A kitchen token needs at least one restaurant.
    #[error("a kitchen token needs at least one --restaurant ID")]
    RestaurantsRequired,
    /// A courier or restaurants were given for a role that has none.
    #[error("a {role} token takes no {what}")]
    UnexpectedScope {
        /// The role asked for.
        role: Role,
        /// `courier` or `restaurants`.
        what: &'static str,
    },
    /// The courier is not registered.
    #[error("unknown courier {0:?}")]
    UnknownCourier(String),
    /// The database refused or could not be reached.
    #[error("storing the token failed")]
    Database(#[source] sqlx::Error),
}

/// Checks that a token's scope fits its role: a courier token names its courier, a kitchen
/// token at least one restaurant, and no role carries the other's scope. Every token store
/// applies these rules before it keeps anything.
///
/// # Errors
/// [`CreateTokenError::CourierRequired`], [`CreateTokenError::RestaurantsRequired`] or
/// [`CreateTokenError::UnexpectedScope`].
pub fn check_scope(
    role: Role,
    courier: Option<&CourierId>,
    restaurants: &[RestaurantId],
) -> Result<(), CreateTokenError> {
    match (role, courier, restaurants.is_empty()) {
        (Role::Courier, None, _) => Err(CreateTokenError::CourierRequired),
        (Role::Kitchen, _, true) => Err(CreateTokenError::RestaurantsRequired),
        (Role::Staff | Role::Kitchen, Some(_), _) => Err(CreateTokenError::UnexpectedScope {
            role,
            what: "courier",
        }),
        (Role::Staff | Role::Courier, _, false) => Err(CreateTokenError::UnexpectedScope {
            role,
            what: "restaurants",
        }),
        _ => Ok(()),
    }
}

/// The principal a token of a checked scope ([`check_scope`]) speaks for.
pub fn principal_of(
    role: Role,
    courier: Option<&CourierId>,
    restaurants: &[RestaurantId],
) -> Option<Principal> {
    match role {
        Role::Staff => Some(Principal::Staff),
        Role::Kitchen => Some(Principal::Kitchen {
            restaurants: restaurants.to_vec(),
        }),
        Role::Courier => courier.cloned().map(Principal::Courier),
    }
}

/// A new token secret: 32 random bytes, hex-encoded (256 bits).
pub fn new_secret() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    hex::encode(secret)
}

/// Creates a token ([`new_secret`]) and stores its hash; returns the secret, which is not kept
/// anywhere.
///
/// # Errors
/// [`CreateTokenError::CourierRequired`] for a courier role without courier,
/// [`CreateTokenError::RestaurantsRequired`] for a kitchen without restaurants,
/// [`CreateTokenError::UnexpectedScope`] for a courier or restaurants on a role without them,
/// [`CreateTokenError::UnknownCourier`] when the courier is not registered and
/// [`CreateTokenError::Database`] for any other database failure.
pub async fn create_token(
    pool: &PgPool,
    role: Role,
    courier: Option<&CourierId>,
    restaurants: &[RestaurantId],
) -> Result<String, CreateTokenError> {
    check_scope(role, courier, restaurants)?;
    let secret = new_secret();
    let restaurants: Vec<&str> = restaurants.iter().map(RestaurantId::as_str).collect();
    sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, role, courier_id, restaurants) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&token_hash(&secret)[..])
    .bind(role.as_str())
    .bind(courier.map(CourierId::as_str))
    .bind(&restaurants)
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") => {
            CreateTokenError::UnknownCourier(courier.map_or_else(String::new, |c| c.to_string()))
        }
        _ => CreateTokenError::Database(e),
    })?;
    Ok(secret)
}

/// The authenticated principal of a request: from `Authorization: Bearer T`, or the query
/// parameter `token=T` (browsers cannot set headers on WebSockets).
///
/// Rejects with [`ApiError::Unauthorized`] when the token is missing or invalid and
/// [`ApiError::Unavailable`] when it cannot be checked now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth(pub Principal);

/// The request's token, from the header or else the query.
fn token_of(parts: &Parts) -> Option<String> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(t) = header {
        return Some(t.to_owned());
    }
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for Auth
where
    S: Send + Sync,
    Arc<dyn TokenVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = token_of(parts).ok_or(ApiError::Unauthorized)?;
        let verifier = Arc::<dyn TokenVerifier>::from_ref(state);
        match verifier.verify(&token).await {
            Ok(Some(p)) => Ok(Auth(p)),
            Ok(None) => Err(ApiError::Unauthorized),
            Err(e) => {
                tracing::warn!(error = %e, "Checking a token failed.");
                Err(ApiError::unavailable("the database is unreachable"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_secret() {
        assert_eq!(
            hex::encode(token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn roles_are_spelt_as_in_the_database() {
        for r in [Role::Staff, Role::Kitchen, Role::Courier] {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn principals_see_what_they_hold() {
        let c1 = CourierId::parse("c1").unwrap();
        let c2 = CourierId::parse("c2").unwrap();
        let r1 = RestaurantId::parse("r1").unwrap();
        let r2 = RestaurantId::parse("r2").unwrap();
        let kitchen = Principal::Kitchen {
            restaurants: vec![r1.clone()],
        };
        let courier = Principal::Courier(c1.clone());
        assert!(Principal::Staff.may_act_for_courier(&c2));
        assert!(Principal::Staff.may_see_restaurant(&r2));
        assert!(courier.may_act_for_courier(&c1) && !courier.may_act_for_courier(&c2));
        assert!(!courier.may_see_restaurant(&r1));
        assert!(kitchen.may_see_restaurant(&r1) && !kitchen.may_see_restaurant(&r2));
        assert!(!kitchen.may_act_for_courier(&c1));
        assert_eq!(courier.courier(), Some(&c1));
        assert!(Principal::Staff.require_staff().is_ok());
        assert!(matches!(
            kitchen.require_staff(),
            Err(ApiError::Forbidden(_))
        ));
    }

    struct Down;
    impl TokenVerifier for Down {
        fn verify<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
            Box::pin(async { Err(AuthError(sqlx::Error::PoolTimedOut)) })
        }
    }

    fn router(verifier: Arc<dyn TokenVerifier>) -> Router {
        Router::new()
            .route(
                "/",
                get(|Auth(p): Auth| async move { format!("{}", p.is_staff()) }),
            )
            .with_state(verifier)
    }

    async fn status(verifier: Arc<dyn TokenVerifier>, req: Request<Body>) -> StatusCode {
        router(verifier).oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn the_extractor_reads_the_header_or_the_query() {
        let tokens: Arc<dyn TokenVerifier> = Arc::new(StaticTokens(HashMap::from([(
            "s e/cret".to_string(),
            Principal::Staff,
        )])));
        let get = |uri: &str, auth: Option<&str>| {
            let mut r = Request::get(uri);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            r.body(Body::empty()).unwrap()
        };
        assert_eq!(
            status(tokens.clone(), get("/", Some("Bearer s e/cret"))).await,
            StatusCode::OK
        );
        assert_eq!(
            status(tokens.clone(), get("/?token=s+e%2Fcret", None)).await,
            StatusCode::OK
        );
        assert_eq!(
            status(tokens.clone(), get("/", None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(tokens, get("/?token=wrong", None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(Arc::new(Down), get("/", Some("Bearer x"))).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

//! Tokens on the real database: `create_token` stores a hash that `PgTokenVerifier` reads back,
//! kitchen tokens carry their restaurants, and bad scopes are refused.

use std::time::Duration;

use optimizer::model::{CourierId, RestaurantId};
use service::auth::{
    CreateTokenError, PgTokenVerifier, Principal, Role, TokenVerifier, create_token,
};

use crate::helpers::{TestDb, add_courier};

#[tokio::test]
async fn created_tokens_verify_with_their_scope() {
    let db = TestDb::new(false).await;
    add_courier(&db.pool, "c1", "phone-1", "bike").await;
    let verifier = PgTokenVerifier::new(db.pool.clone(), Duration::from_secs(60));
    let r1 = RestaurantId::parse("r1").unwrap();
    let c1 = CourierId::parse("c1").unwrap();

    let kitchen = create_token(&db.pool, Role::Kitchen, None, std::slice::from_ref(&r1))
        .await
        .unwrap();
    assert!(kitchen.len() >= 32, "at least 128 bits of secret");
    assert_eq!(
        verifier.verify(&kitchen).await.unwrap(),
        Some(Principal::Kitchen {
            restaurants: vec![r1.clone()]
        })
    );
    let courier = create_token(&db.pool, Role::Courier, Some(&c1), &[])
        .await
        .unwrap();
    assert_eq!(
        verifier.verify(&courier).await.unwrap(),
        Some(Principal::Courier(c1.clone()))
    );
    let staff = create_token(&db.pool, Role::Staff, None, &[])
        .await
        .unwrap();
    assert_eq!(
        verifier.verify(&staff).await.unwrap(),
        Some(Principal::Staff)
    );
    assert_eq!(verifier.verify("not-a-token").await.unwrap(), None);

    assert!(matches!(
        create_token(&db.pool, Role::Courier, None, &[]).await,
        Err(CreateTokenError::CourierRequired)
    ));
    assert!(matches!(
        create_token(&db.pool, Role::Kitchen, None, &[]).await,
        Err(CreateTokenError::RestaurantsRequired)
    ));
    let ghost = CourierId::parse("ghost").unwrap();
    assert!(matches!(
        create_token(&db.pool, Role::Courier, Some(&ghost), &[]).await,
        Err(CreateTokenError::UnknownCourier(_))
    ));
    // The schema itself refuses a new kitchen token without restaurants.
    let unscoped = sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, role) VALUES (gen_random_uuid(), $1, 'kitchen')",
    )
    .bind(&service::auth::token_hash("k")[..])
    .execute(&db.pool)
    .await;
    assert!(unscoped.is_err());
    db.drop_database().await;
}

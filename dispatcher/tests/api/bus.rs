//! Publishing with confirms and consuming on the real broker.

use std::time::Duration;

use dispatcher::bus::Publisher;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};

use crate::helpers::{connect, delete, topology};

#[tokio::test]
async fn kitchen_messages_are_confirmed_routed_and_dead_lettered_when_rejected() {
    let conn = connect().await;
    let topology = topology();
    let publisher = Publisher::new(&conn).await.expect("confirm channel");
    topology
        .declare(publisher.channel())
        .await
        .expect("declare");
    // Declaring twice is harmless (the service does it at every start).
    topology
        .declare(publisher.channel())
        .await
        .expect("declare again");

    let body = br#"{"order_id":"o1","ready_at":"2026-11-21T12:00:00Z"}"#;
    let mut headers = FieldTable::default();
    headers.insert("kitchen".into(), AMQPValue::LongString("k1".into()));
    publisher
        .publish(
            &topology.kitchen_exchange,
            "order.ready",
            "m-1",
            body,
            headers,
        )
        .await
        .expect("the broker confirms a routable persistent message");
    publisher
        .publish(
            &topology.kitchen_exchange,
            "order.created",
            "m-2",
            b"not json",
            FieldTable::default(),
        )
        .await
        .expect("confirmed");
    // A key nobody is bound to is still confirmed by the broker (and dropped by it).
    publisher
        .publish(
            &topology.kitchen_exchange,
            "menu.updated",
            "m-3",
            b"{}",
            FieldTable::default(),
        )
        .await
        .expect("confirmed");

    let consumer_channel = conn.create_channel().await.unwrap();
    consumer_channel
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consumer_channel
        .basic_consume(
            topology.kitchen_queue.as_str().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(first.routing_key.as_str(), "order.ready");
    assert_eq!(first.data, body);
    assert_eq!(
        first.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("m-1")
    );
    assert_eq!(first.properties.delivery_mode(), &Some(2));
    first.ack(Default::default()).await.unwrap();

    let second = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a second message within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(second.data, b"not json");
    second
        .nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await
        .unwrap();

    // The rejected message lands in the dead queue, with its id intact.
    let dead_channel = conn.create_channel().await.unwrap();
    let mut dead = dead_channel
        .basic_consume(
            topology.dead_queue.as_str().into(),
            "test-dead".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let dead_letter = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("the rejected message is dead-lettered within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(dead_letter.data, b"not json");
    assert_eq!(
        dead_letter
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str()),
        Some("m-2")
    );
    dead_letter.ack(Default::default()).await.unwrap();

    // Nothing else arrived: the unbound routing key never reached the kitchen queue.
    let nothing = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(nothing.is_err(), "unexpected delivery {nothing:?}");

    delete(&conn, &topology).await;
}

//! The Traccar Client's upload loop, replayed: it keeps fixes in a buffer and resends the oldest
//! until it gets a 2xx. Fixes the tracker filters out (too old, from a phone clock running fast,
//! (0, 0)) must be acknowledged, or the buffer never drains and the phone stops reporting.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::helpers::{TestApp, http};

/// Attempts per fix before the replay declares the phone stuck (the app would retry forever,
/// every 30 s).
const ATTEMPTS: usize = 3;

#[tokio::test]
async fn the_traccar_client_buffer_drains_and_the_good_fixes_are_stored() {
    let app = TestApp::spawn(true).await;
    app.courier("c1", "phone-1", "bike").await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let epoch = |t: OffsetDateTime| t.unix_timestamp().to_string();
    let good = [
        now - time::Duration::seconds(50),
        now - time::Duration::seconds(40),
        now - time::Duration::seconds(30),
    ];
    // Traccar's own `yyyy-MM-dd HH:mm:ss` form, in UTC.
    let traccar_form = good[2]
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap();
    let mut buffer: Vec<String> = vec![
        // Kept on the phone while it was offline for more than a week.
        format!(
            "id=phone-1&lat=52.5&lon=13.4&timestamp={}",
            epoch(now - time::Duration::days(8))
        ),
        // From a phone whose clock runs 20 minutes fast.
        format!(
            "id=phone-1&lat=52.5&lon=13.4&timestamp={}",
            epoch(now + time::Duration::minutes(20))
        ),
        // No GPS fix yet.
        format!("id=phone-1&lat=0&lon=0&timestamp={}", epoch(now)),
        format!(
            "id=phone-1&lat=52.5000&lon=13.4&timestamp={}&speed=0&accuracy=8&batt=80",
            epoch(good[0])
        ),
        // Unknown speed and battery, as some phones report them.
        format!(
            "id=phone-1&lat=52.5001&lon=13.4&timestamp={}&speed=-1&batt=-1",
            epoch(good[1])
        ),
        format!(
            "id=phone-1&lat=52.5002&lon=13.4&timestamp={}",
            form_urlencoded::byte_serialize(traccar_form.as_bytes()).collect::<String>()
        ),
    ];
    let mut reasons = Vec::new();
    let mut failures = 0;
    while let Some(oldest) = buffer.first() {
        // The app sends with POST and the parameters in the query string.
        let r = http(app.osmand, "POST", &format!("/?{oldest}"), &[], "")
            .await
            .unwrap();
        if (200..300).contains(&r.status) {
            let body = r.json();
            if let Some(reason) = body["rejected"][0]["reason"].as_str() {
                reasons.push(reason.to_string());
            }
            buffer.remove(0);
            failures = 0;
        } else {
            failures += 1;
            assert!(
                failures < ATTEMPTS,
                "the phone is stuck on {oldest}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    assert_eq!(reasons, ["too_old", "future", "null_island"]);
    let stored: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT fix_time FROM positions WHERE courier_id = 'c1' ORDER BY fix_time",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, good);
    app.stop().await.drop_database().await;
}

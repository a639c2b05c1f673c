//! Hostile values in the shared jti denylist, over the real Redis server `scripts/test.sh`
//! starts: an expiry too large for the clock (found by the property
//! `jwt::redis::proptests::any_number_before_the_colon_is_parsed_or_ignored`) panicked, in
//! `connect` for a stored value and in the subscription task for a message.

use std::time::{Duration, Instant, SystemTime};

use tollgate::jwt::Revocation;
use tollgate::jwt::redis::RedisRevocation;

use crate::servers::{redis_url, unique};

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn in_ten_minutes() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

#[tokio::test]
async fn stored_expiries_past_the_clock_load_as_revoked_not_a_panic() {
    let prefix = unique("tollgate-test:jti");
    let mut connection = redis().await;
    for (jti, value) in [
        ("u64-max", b"18446744073709551615".as_slice()),
        ("two-to-the-63", b"9223372036854775808"),
        ("not-a-number", b"soon"),
        ("not-utf8", b"\xff\xfe"),
    ] {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}:{jti}"))
            .arg(value)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let node = RedisRevocation::builder()
        .prefix(&prefix)
        .connect(&redis_url())
        .await
        .unwrap();
    assert!(node.is_revoked("u64-max"));
    assert!(node.is_revoked("two-to-the-63"));
    assert!(!node.is_revoked("not-a-number"));
    assert!(!node.is_revoked("not-utf8"));
}

#[tokio::test]
async fn a_message_past_the_clock_does_not_stop_later_revocations() {
    let prefix = unique("tollgate-test:jti");
    let (sender, receiver) = (
        RedisRevocation::builder()
            .prefix(&prefix)
            .connect(&redis_url())
            .await
            .unwrap(),
        RedisRevocation::builder()
            .prefix(&prefix)
            .connect(&redis_url())
            .await
            .unwrap(),
    );
    let mut connection = redis().await;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&prefix)
        .arg("18446744073709551615:hostile")
        .query_async(&mut connection)
        .await
        .unwrap();
    sender.revoke("later", in_ten_minutes()).await.unwrap();
    // Messages arrive in order: once `later` is in, `hostile` was handled before it.
    let started = Instant::now();
    while !receiver.is_revoked("later") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the subscription stopped mirroring revocations"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(receiver.is_revoked("hostile"));
    assert_eq!(receiver.local().len(), 2);
}

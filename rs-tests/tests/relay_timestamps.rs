//! Frame timestamps through the relay: a moq-lite-05 publisher's timestamps
//! reach moq-lite-05 and -06 subscribers unchanged, and a moq-lite-04
//! subscriber gets the same payloads without them (its wire has no place
//! for them).

use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::model::{OriginProducer, Track, TrackConsumer};
use rs_tests::{TestRelay, subscribe};

const LIMIT: Duration = Duration::from_secs(30);

/// Every frame of the next group: payload and timestamp.
async fn next_group(consumer: &mut TrackConsumer) -> Vec<(Bytes, Option<u64>)> {
    let mut group = consumer.next_group().await.unwrap().expect("track open");
    let mut frames = Vec::new();
    while let Some(mut frame) = group.next_frame().await.unwrap() {
        let timestamp = frame.timestamp();
        frames.push((frame.read_all().await.unwrap(), timestamp));
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_cross_the_relay_to_lite05_and_06_and_drop_to_lite04() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        for scheme in ["moqt", "https"] {
            let published = OriginProducer::new();
            let broadcast = published.create_broadcast(format!("cam-{scheme}")).unwrap();
            let mut track = broadcast.create_track(Track::new("video"));
            let publish = SessionConfig {
                publish: Some(published.consume()),
                ..Default::default()
            };
            let (_p, _pc) = relay.connect_speaking(scheme, "moq-lite-05", publish).await;

            let mut consumers = Vec::new();
            let mut keep = Vec::new();
            for protocol in ["moq-lite-05", "moq-lite-06", "moq-lite-04"] {
                let received = OriginProducer::new();
                let config = SessionConfig {
                    subscribe: Some(received.clone()),
                    ..Default::default()
                };
                keep.push(relay.connect_speaking(scheme, protocol, config).await);
                consumers.push(subscribe(&received, &format!("cam-{scheme}"), "video").await);
            }
            // Both subscriptions reached the publisher (one upstream, shared).
            while track.is_unused() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut group = track.append_group().unwrap();
            group
                .write_frame_at(Bytes::from_static(b"key"), 40_000_000)
                .unwrap();
            group
                .write_frame_at(Bytes::from_static(b"delta"), 40_033_366)
                .unwrap();
            group.finish().unwrap();

            for consumer in &mut consumers[..2] {
                assert_eq!(
                    next_group(consumer).await,
                    vec![
                        (Bytes::from_static(b"key"), Some(40_000_000)),
                        (Bytes::from_static(b"delta"), Some(40_033_366)),
                    ],
                    "{scheme}"
                );
            }
            let lite04 = next_group(&mut consumers[2]).await;
            assert_eq!(
                lite04,
                vec![
                    (Bytes::from_static(b"key"), None),
                    (Bytes::from_static(b"delta"), None)
                ],
                "{scheme}"
            );
        }
    })
    .await
    .expect("timed out");
}

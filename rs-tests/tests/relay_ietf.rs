//! IETF moq-transport clients through the relay, mixed with moq-lite ones:
//! the relay serves both on one port and maps both onto one origin.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::endpoint::Client;
use moq_lite::model::{OriginProducer, Track, TrackConsumer};
use rs_tests::{TestRelay, subscribe};

const LIMIT: Duration = Duration::from_secs(30);

/// A session to `relay` speaking exactly `protocol`.
async fn connect(
    relay: &TestRelay,
    scheme: &str,
    protocol: &str,
    config: SessionConfig,
) -> (moq_transport_compat::Session, Client) {
    relay.connect_speaking(scheme, protocol, config).await
}

fn frame(group: u64, object: u64) -> Bytes {
    Bytes::from(format!("group {group} object {object}"))
}

/// Writes 3 groups x 5 objects once the subscriber is there and checks every
/// object arrives, in order within its group.
async fn deliver(track: &mut moq_lite::model::TrackProducer, consumer: &mut TrackConsumer) {
    while track.is_unused() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for group in 0..3 {
        let mut writer = track.append_group().unwrap();
        for object in 0..5 {
            writer.write_frame(frame(group, object)).unwrap();
        }
        writer.finish().unwrap();
    }
    let mut seen = 0;
    while seen < 3 {
        let mut group = consumer.next_group().await.unwrap().expect("track open");
        let sequence = group.sequence();
        for object in 0..5 {
            assert_eq!(
                group.read_frame().await.unwrap().unwrap(),
                frame(sequence, object)
            );
        }
        seen += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_and_lite_clients_share_the_relay() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        for (scheme, ietf) in [
            ("moql", "moq-00"),
            ("https", "moqt-15"),
            ("moql", "moqt-16"),
            ("https", "moq-00"),
            ("moql", "moqt-17"),
            ("https", "moqt-17"),
        ] {
            // IETF publisher -> relay -> lite subscriber.
            let published = OriginProducer::new();
            let broadcast = published.new_broadcast();
            let mut track = broadcast.create_track(Track::new("video"));
            let path = format!("from-{ietf}-{scheme}");
            published.publish(path.as_str(), &broadcast.consume()).unwrap();
            let (_p, _pc) = connect(
                &relay,
                scheme,
                ietf,
                SessionConfig {
                    publish: Some(published.consume()),
                    ..Default::default()
                },
            )
            .await;
            let lite = OriginProducer::new();
            let (_s, _sc) = relay.connect(&relay.url("moql", "/"), None, Some(&lite)).await;
            let mut consumer = subscribe(&lite, &path, "video").await;
            deliver(&mut track, &mut consumer).await;

            // Lite publisher -> relay -> IETF subscriber.
            let published = OriginProducer::new();
            let broadcast = published.new_broadcast();
            let mut track = broadcast.create_track(Track::new("audio"));
            let path = format!("to-{ietf}-{scheme}");
            published.publish(path.as_str(), &broadcast.consume()).unwrap();
            let (_p2, _pc2) = relay
                .connect(&relay.url("https", "/"), Some(&published), None)
                .await;
            let received = OriginProducer::new();
            let (_s2, _sc2) = connect(
                &relay,
                scheme,
                ietf,
                SessionConfig {
                    subscribe: Some(received.clone()),
                    ..Default::default()
                },
            )
            .await;
            let mut consumer = subscribe(&received, &path, "audio").await;
            deliver(&mut track, &mut consumer).await;
        }
    })
    .await
    .expect("timed out");
}

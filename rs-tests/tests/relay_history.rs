//! History through the relay: a subscriber asking for groups older than what
//! the relay's upstream subscription covers gets them from the publisher
//! (fetched once, into the relay's cache: moq-lite FETCH per group, or one
//! IETF FETCH), while the one upstream subscription keeps carrying live data.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::model::{OriginProducer, Track, TrackConsumer, TrackProducer};
use rs_tests::{TestRelay, subscribe, subscribe_from};

const LIMIT: Duration = Duration::from_secs(30);

fn frame(group: u64, index: u64) -> Bytes {
    Bytes::from(format!("g{group}f{index}"))
}

fn write_group(track: &mut TrackProducer, sequence: u64) {
    let mut group = track.create_group(sequence).unwrap();
    for index in 0..2 {
        group.write_frame(frame(sequence, index)).unwrap();
    }
    group.finish().unwrap();
}

/// A publisher of `path` / track "t" (holding `groups`) connected to
/// `relay` speaking `protocol`.
struct Publisher {
    track: TrackProducer,
    _keep: (
        OriginProducer,
        moq_lite::model::BroadcastProducer,
        moq_transport_compat::Session,
        moq_lite::endpoint::Client,
    ),
}

async fn publish_at(
    relay: &TestRelay,
    scheme: &str,
    protocol: &str,
    path: &str,
    groups: std::ops::Range<u64>,
) -> Publisher {
    let published = OriginProducer::new();
    let broadcast = published.new_broadcast();
    let mut track = broadcast.create_track(Track::new("t"));
    for sequence in groups {
        write_group(&mut track, sequence);
    }
    published.publish(path, &broadcast.consume()).unwrap();
    let config = SessionConfig {
        publish: Some(published.consume()),
        ..Default::default()
    };
    let (session, client) = relay.connect_speaking(scheme, protocol, config).await;
    Publisher {
        track,
        _keep: (published, broadcast, session, client),
    }
}

/// A subscriber session to `relay` speaking `protocol`, bringing what it
/// reads into `origin`; keep what it returns.
async fn subscribe_at(
    relay: &TestRelay,
    scheme: &str,
    protocol: &str,
    origin: &OriginProducer,
) -> (moq_transport_compat::Session, moq_lite::endpoint::Client) {
    let config = SessionConfig {
        subscribe: Some(origin.clone()),
        ..Default::default()
    };
    relay.connect_speaking(scheme, protocol, config).await
}

/// Reads groups until every one of `expected` arrived (groups travel on
/// their own streams, so they may arrive in any order), checking each one's
/// frames and that nothing else arrives.
async fn read_all(consumer: &mut TrackConsumer, expected: std::ops::RangeInclusive<u64>) {
    let mut seen = std::collections::BTreeSet::new();
    while !expected.clone().all(|sequence| seen.contains(&sequence)) {
        let mut group = consumer.next_group().await.unwrap().expect("track open");
        let sequence = group.sequence();
        assert!(
            expected.contains(&sequence),
            "group {sequence} is not in {expected:?}"
        );
        for index in 0..2 {
            assert_eq!(group.read_frame().await.unwrap().unwrap(), frame(sequence, index));
        }
        assert!(seen.insert(sequence), "group {sequence} twice");
    }
}

/// The publisher holds groups 0..=9; a live subscriber makes the relay
/// subscribe upstream at group 9; then subscribers asking for group 3 and
/// group 0 (moq-lite and IETF, raw QUIC and WebTransport) get everything from
/// there, in order, through one upstream subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_start_is_fetched_from_the_publisher_behind_the_relay() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        for (publisher_protocol, scheme, late_protocol) in [
            ("moq-lite-06", "moql", "moq-lite-06"),
            ("moq-lite-05", "https", "moqt-20"),
            ("moq-lite-04", "moql", "moq-lite-03"),
            ("moq-lite-03", "https", "moqt-17"),
            // An IETF publisher: the relay asks it with FETCH.
            ("moq-00", "https", "moq-lite-05"),
            ("moqt-16", "moql", "moqt-15"),
            ("moqt-17", "moql", "moqt-18"),
            ("moqt-18", "https", "moq-lite-06"),
            ("moqt-20", "https", "moq-lite-06"),
            ("moqt-22", "moql", "moqt-16"),
        ] {
            let path = format!("history-{publisher_protocol}-{scheme}");
            let mut publisher = publish_at(&relay, scheme, publisher_protocol, &path, 0..10).await;
            let track = &mut publisher.track;

            // At the live edge: the relay subscribes upstream from group 9.
            let live_origin = OriginProducer::new();
            let (_l, _lc) = relay
                .connect(&relay.url(scheme, "/"), None, Some(&live_origin))
                .await;
            let mut live = subscribe(&live_origin, &path, "t").await;
            read_all(&mut live, 9..=9).await;
            write_group(track, 10);
            read_all(&mut live, 10..=10).await;
            // What one upstream subscription costs the publisher (an IETF
            // session's served subscription holds a second reader).
            let subscribed = track.consumer_count();

            // The HTTP side asks for group 5: fetched upstream, once.
            let (status, body) = relay.get(&format!("/fetch/{path}/t?group=5")).await;
            assert!(status.contains("200"), "{status}");
            assert_eq!(body, b"g5f0g5f1");

            // Later subscribers ask for older groups: 3 (moq-lite), then 0.
            let early_origin = OriginProducer::new();
            let (_e, _ec) = relay
                .connect(&relay.url(scheme, "/"), None, Some(&early_origin))
                .await;
            let mut early = subscribe_from(&early_origin, &path, "t", Some(3)).await;
            read_all(&mut early, 3..=10).await;

            let late_origin = OriginProducer::new();
            let (_s, _sc) = subscribe_at(&relay, scheme, late_protocol, &late_origin).await;
            let mut late = subscribe_from(&late_origin, &path, "t", Some(0)).await;
            read_all(&mut late, 0..=10).await;

            // Live data still flows to everyone, over one upstream subscription.
            write_group(track, 11);
            for consumer in [&mut live, &mut early, &mut late] {
                read_all(consumer, 11..=11).await;
            }
            // Still one upstream subscription; the FETCHes' own readers go
            // once their answers are written.
            while track.consumer_count() > subscribed {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await
    .expect("timed out");
}

/// Two relays: the publisher at the first, subscribers at the second. A
/// start older than what the second relay's track covers is fetched from the
/// first, which fetches it from the publisher in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_crosses_a_cluster_of_relays() {
    tokio::time::timeout(LIMIT, async {
        let origin_relay = TestRelay::start(|_| {}).await;
        let urls = vec![origin_relay.cluster_url()];
        let edge = TestRelay::start(|config| {
            config.cluster_connect = urls;
            config.cluster_tls_disable_verify = true;
        })
        .await;

        let published = OriginProducer::new();
        let broadcast = published.new_broadcast();
        let mut track = broadcast.create_track(Track::new("t"));
        for sequence in 0..8 {
            write_group(&mut track, sequence);
        }
        published.publish("far", &broadcast.consume()).unwrap();
        let (_p, _pc) = origin_relay
            .connect(&origin_relay.url("moql", "/"), Some(&published), None)
            .await;

        let live_origin = OriginProducer::new();
        let (_l, _lc) = edge
            .connect(&edge.url("https", "/"), None, Some(&live_origin))
            .await;
        let mut live = subscribe(&live_origin, "far", "t").await;
        read_all(&mut live, 7..=7).await;

        let early_origin = OriginProducer::new();
        let (_e, _ec) = edge
            .connect(&edge.url("moql", "/"), None, Some(&early_origin))
            .await;
        let mut early = subscribe_from(&early_origin, "far", "t", Some(2)).await;
        read_all(&mut early, 2..=7).await;
        write_group(&mut track, 8);
        read_all(&mut early, 8..=8).await;
        read_all(&mut live, 8..=8).await;
        assert_eq!(track.consumer_count(), 1);
    })
    .await
    .expect("timed out");
}

/// Groups the publisher says will not come reach the subscriber behind the
/// relay as skipped, by sequence (moq-lite-05+ SUBSCRIBE_DROP on both hops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_groups_are_reported_through_the_relay() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        for (protocol, scheme) in [("moq-lite-06", "moql"), ("moq-lite-05", "https")] {
            let path = format!("drops-{protocol}");
            let mut publisher = publish_at(&relay, scheme, protocol, &path, 0..1).await;
            let track = &mut publisher.track;
            let received = OriginProducer::new();
            let (_s, _sc) = subscribe_at(&relay, scheme, protocol, &received).await;
            let mut consumer = subscribe(&received, &path, "t").await;
            read_all(&mut consumer, 0..=0).await;

            track.drop_groups(1..=2);
            write_group(track, 3);
            read_all(&mut consumer, 3..=3).await;
            // The word may come after group 3 (another stream): wait for it.
            let mut lost = Vec::new();
            while lost.len() < 2 {
                let _ = tokio::time::timeout(Duration::from_millis(20), consumer.next_group()).await;
                lost.extend(consumer.take_skipped_groups());
            }
            assert_eq!(lost, vec![1, 2], "{protocol}");
            assert_eq!(consumer.skipped(), 2, "{protocol}");
        }
    })
    .await
    .expect("timed out");
}

//! Relays linked into a cluster, in one process: broadcasts published at one
//! relay reach subscribers at another, with one subscription per track per
//! link, no loops, withdrawal when a relay dies and recovery when it returns.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::model::{OriginProducer, Track, TrackProducer};
use rs_tests::{TestRelay, subscribe};

const LIMIT: Duration = Duration::from_secs(30);

/// A relay linked to `peers`.
async fn relay(peers: &[&TestRelay]) -> TestRelay {
    let urls: Vec<String> = peers.iter().map(|p| p.cluster_url()).collect();
    TestRelay::start(|config| {
        config.cluster_connect = urls;
        config.cluster_tls_disable_verify = true;
    })
    .await
}

/// A publisher of `path`/`track` connected to `relay`; keep what it returns.
async fn publish(
    relay: &TestRelay,
    path: &str,
) -> (
    TrackProducer,
    moq_lite::model::BroadcastProducer,
    moq_lite::Session,
    moq_lite::endpoint::Client,
) {
    let origin = OriginProducer::new();
    let broadcast = origin.new_broadcast();
    let track = broadcast.create_track(Track::new("t"));
    origin.publish(path, &broadcast.consume()).unwrap();
    let (session, client) = relay.connect(&relay.url("moql", "/"), Some(&origin), None).await;
    (track, broadcast, session, client)
}

/// Writes groups until `consumer` has read one, and checks its frame.
async fn flows(track: &mut TrackProducer, consumer: &mut moq_lite::model::TrackConsumer) {
    let write = async {
        let mut n = 0u64;
        loop {
            let mut group = track.append_group().unwrap();
            group.write_frame(Bytes::from(format!("frame {n}"))).unwrap();
            group.finish().unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let read = async {
        let mut group = consumer.next_group().await.unwrap().expect("track open");
        let frame = group.read_frame().await.unwrap().unwrap();
        assert!(frame.starts_with(b"frame "), "{frame:?}");
    };
    tokio::select! {
        _ = write => unreachable!(),
        _ = read => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_carries_a_broadcast_end_to_end_with_one_subscription_per_link() {
    tokio::time::timeout(LIMIT, async {
        let a = relay(&[]).await;
        let b = relay(&[&a]).await;
        let c = relay(&[&b]).await;
        let (mut track, _broadcast, _ps, _pc) = publish(&a, "live/cam").await;

        let mut viewers = Vec::new();
        for _ in 0..4 {
            let origin = OriginProducer::new();
            let (session, client) = c.connect(&c.url("https", "/"), None, Some(&origin)).await;
            let consumer = subscribe(&origin, "live/cam", "t").await;
            viewers.push((consumer, session, client, origin));
        }
        for (consumer, ..) in &mut viewers {
            flows(&mut track, consumer).await;
        }
        // Four viewers at C, one subscription across each link, one at the publisher.
        assert_eq!(track.consumer_count(), 1);

        // The announcement at C went through A then B.
        let (_, _, _, origin) = &viewers[0];
        let broadcast = origin.consume().consume_broadcast("live/cam").unwrap();
        assert_eq!(
            broadcast.hops().len(),
            3,
            "A, B and C stamp it: {:?}",
            broadcast.hops()
        );
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triangle_has_no_loops() {
    tokio::time::timeout(LIMIT, async {
        let a = relay(&[]).await;
        let b = relay(&[&a]).await;
        let c = relay(&[&a, &b]).await;
        let (mut track, broadcast, _ps, _pc) = publish(&a, "room").await;

        for relay in [&b, &c] {
            let origin = OriginProducer::new();
            let (_s, _c) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
            let mut consumer = subscribe(&origin, "room", "t").await;
            flows(&mut track, &mut consumer).await;
            // The direct route from A is the one in use.
            let active = origin.consume().consume_broadcast("room").unwrap();
            assert_eq!(active.hops(), vec![a.hop_id, relay.hop_id]);
        }

        // Let announcements settle, then count what a watcher at C sees: one
        // broadcast, announced once, whatever routes exist.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let origin = OriginProducer::new();
        let (_s, _c) = c.connect(&c.url("moql", "/"), None, Some(&origin)).await;
        let mut watcher = origin.consume();
        assert!(watcher.announced().await.unwrap().broadcast.is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(watcher.try_announced().is_none(), "no churn from loops");

        // The publisher leaves: every relay withdraws it, no ghost remains.
        drop(broadcast);
        drop(track);
        let ended = watcher.announced().await.unwrap();
        assert!(ended.broadcast.is_none());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(watcher.try_announced().is_none(), "no ghost route");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_middle_relay_withdraws_and_restarting_restores() {
    tokio::time::timeout(LIMIT, async {
        let a = relay(&[]).await;
        let b = relay(&[&a]).await;
        let (b_addr, b_http) = (b.addr, b.http);
        let c = relay(&[&b]).await;
        let (mut track, _broadcast, _ps, _pc) = publish(&a, "news").await;

        let origin = OriginProducer::new();
        let (_s, _cl) = c.connect(&c.url("moql", "/"), None, Some(&origin)).await;
        let mut watcher = origin.consume();
        let mut consumer = subscribe(&origin, "news", "t").await;
        flows(&mut track, &mut consumer).await;
        assert!(watcher.announced().await.unwrap().broadcast.is_some());

        b.kill().await;
        let ended = watcher.announced().await.unwrap();
        assert!(ended.broadcast.is_none(), "withdrawn at C");

        // B comes back on the same addresses; A and C links come back with it.
        let _b = TestRelay::restart(|config| {
            config.bind = b_addr;
            config.http_bind = b_http.to_string();
            config.cluster_connect = vec![a.cluster_url()];
            config.cluster_tls_disable_verify = true;
        })
        .await;
        let back = watcher.announced().await.unwrap();
        assert!(back.broadcast.is_some(), "restored at C");
        let mut consumer = subscribe(&origin, "news", "t").await;
        flows(&mut track, &mut consumer).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_publisher_on_another_relay_takes_over() {
    tokio::time::timeout(LIMIT, async {
        let a = relay(&[]).await;
        let b = relay(&[&a]).await;
        let c = relay(&[&b]).await;
        let (mut first, first_broadcast, first_session, first_client) = publish(&a, "stage").await;

        let origin = OriginProducer::new();
        let (_s, _cl) = b.connect(&b.url("moql", "/"), None, Some(&origin)).await;
        let mut consumer = subscribe(&origin, "stage", "t").await;
        flows(&mut first, &mut consumer).await;

        // A second publisher of the same path at C: a backup route at B.
        let (mut second, _second_broadcast, _ss, _sc) = publish(&c, "stage").await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // The first leaves; subscribers at B get the broadcast from C.
        drop(first_broadcast);
        drop(first);
        drop(first_session);
        drop(first_client);
        let mut consumer = loop {
            let candidate = subscribe(&origin, "stage", "t").await;
            let broadcast = origin.consume().consume_broadcast("stage").unwrap();
            if broadcast.hops().contains(&c.hop_id) {
                break candidate;
            }
        };
        flows(&mut second, &mut consumer).await;
    })
    .await
    .expect("timed out");
}

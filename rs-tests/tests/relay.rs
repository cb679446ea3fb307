//! Clients through one in-process relay: fan-out, one upstream subscription
//! per track, late join, publisher leaving, the HTTP side, shutdown.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::Error;
use moq_lite::model::{OriginProducer, Track};
use rs_tests::{TestRelay, subscribe};

const LIMIT: Duration = Duration::from_secs(20);

fn payload(group: u64, frame: u64) -> Bytes {
    Bytes::from(format!("g{group}f{frame}").repeat(1 + (group as usize % 50)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_with_one_upstream_subscription() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let publisher = OriginProducer::new();
        let (_pub_session, _pub_client) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("room/alice").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        track.append_group().unwrap().write_frame(payload(0, 0)).unwrap();

        // Ten subscribers, half over raw QUIC, half over WebTransport.
        let mut subscribers = Vec::new();
        for i in 0..10 {
            let scheme = if i % 2 == 0 { "moql" } else { "https" };
            let origin = OriginProducer::new();
            let (session, client) = relay.connect(&relay.url(scheme, "/"), None, Some(&origin)).await;
            let consumer = subscribe(&origin, "room/alice", "video").await;
            subscribers.push((consumer, session, client, origin));
        }
        // Late joiners all start at the latest group (0).
        for (consumer, ..) in &mut subscribers {
            let mut group = consumer.next_group().await.unwrap().unwrap();
            assert_eq!(group.sequence(), 0);
            assert_eq!(group.read_frame().await.unwrap().unwrap(), payload(0, 0));
        }
        // One upstream subscription for ten downstream subscribers.
        assert_eq!(track.consumer_count(), 1);

        for sequence in 1..=10 {
            let mut group = track.append_group().unwrap();
            for frame in 0..3 {
                group.write_frame(payload(sequence, frame)).unwrap();
            }
            group.finish().unwrap();
        }
        for (consumer, ..) in &mut subscribers {
            let mut seen = std::collections::BTreeSet::new();
            while seen.len() < 10 {
                let mut group = consumer.next_group().await.unwrap().unwrap();
                let sequence = group.sequence();
                for frame in 0..3 {
                    assert_eq!(
                        group.read_frame().await.unwrap().unwrap(),
                        payload(sequence, frame)
                    );
                }
                assert_eq!(group.read_frame().await.unwrap(), None);
                seen.insert(sequence);
            }
            assert_eq!(seen, (1..=10).collect());
        }

        // When every subscriber leaves, the upstream subscription is released.
        drop(subscribers);
        track.unused().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_leaving_ends_the_broadcast_everywhere() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let publisher = OriginProducer::new();
        let (pub_session, pub_client) = relay
            .connect(&relay.url("https", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("show").unwrap();
        let mut track = broadcast.create_track(Track::new("audio"));
        let mut group = track.append_group().unwrap();
        group.write_frame(payload(0, 0)).unwrap();

        let origin = OriginProducer::new();
        let (_session, _client) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
        let mut consumer = subscribe(&origin, "show", "audio").await;
        let mut reading = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(reading.read_frame().await.unwrap().unwrap(), payload(0, 0));
        let mut announced = origin.consume();
        assert!(announced.announced().await.unwrap().broadcast.is_some());

        // The publisher's connection goes away mid-group.
        drop(pub_session);
        drop(pub_client);
        assert!(reading.read_frame().await.is_err(), "the open group is aborted");
        let ended = announced.announced().await.unwrap();
        assert!(ended.broadcast.is_none());
        // The track ends one way or the other (aborted, or finished).
        match consumer.next_group().await {
            Err(_) | Ok(None) => {}
            Ok(Some(group)) => panic!("unexpected group {}", group.sequence()),
        }

        // A new publisher at the same path is found again.
        let (_again, _again_client) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let back = announced.announced().await.unwrap();
        assert_eq!(back.path.as_str(), "show");
        assert!(back.broadcast.is_some());
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_path_is_the_session_root() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let publisher = OriginProducer::new();
        let (_p, _pc) = relay
            .connect(&relay.url("https", "/room"), Some(&publisher), None)
            .await;
        let _broadcast = publisher.create_broadcast("alice").unwrap();

        // Seen as room/alice from the root, as alice from /room.
        let from_root = OriginProducer::new();
        let (_a, _ac) = relay
            .connect(&relay.url("https", "/"), None, Some(&from_root))
            .await;
        let from_room = OriginProducer::new();
        let (_b, _bc) = relay
            .connect(&relay.url("https", "/room"), None, Some(&from_room))
            .await;
        assert_eq!(
            from_root.consume().announced().await.unwrap().path.as_str(),
            "room/alice"
        );
        assert_eq!(
            from_room.consume().announced().await.unwrap().path.as_str(),
            "alice"
        );
        let (status, body) = relay.get("/announced/room").await;
        assert!(status.contains("200"));
        assert_eq!(body, b"room/alice\n");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_side_answers() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let (status, body) = relay.get("/certificate.sha256").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(String::from_utf8(body).unwrap(), relay.fingerprint);
        let (status, body) = relay.get("/health").await;
        assert!(status.contains("200"));
        assert_eq!(body, b"ok\n");
        let (status, _) = relay.get("/nope").await;
        assert!(status.contains("404"));

        let publisher = OriginProducer::new();
        let (_p, _pc) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("cam").unwrap();
        let mut track = broadcast.create_track(Track::new("jpeg"));
        let mut group = track.append_group().unwrap();
        group.write_frame(Bytes::from_static(b"abc")).unwrap();
        group.write_frame(Bytes::from_static(b"def")).unwrap();
        group.finish().unwrap();
        let mut next = track.append_group().unwrap();
        next.write_frame(Bytes::from_static(b"xyz")).unwrap();
        next.finish().unwrap();

        // The broadcast shows up, then its latest group and a given group.
        loop {
            let (_, body) = relay.get("/announced").await;
            if body == b"cam\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, body) = relay.get("/fetch/cam/jpeg").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"xyz");
        // A group older than the latest, of a track the relay has not
        // subscribed to: it asks the publisher from that group on (a
        // SUBSCRIBE start group), and the publisher still holds it.
        let mut old = broadcast.create_track(Track::new("old"));
        for payload in [&b"zero"[..], b"one", b"two"] {
            let mut group = old.append_group().unwrap();
            group.write_frame(Bytes::from_static(payload)).unwrap();
            group.finish().unwrap();
        }
        let (status, body) = relay.get("/fetch/cam/old?group=0").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"zero");
        // A group that comes later.
        let mut later = track.append_group().unwrap();
        later.write_frame(Bytes::from_static(b"abc")).unwrap();
        later.write_frame(Bytes::from_static(b"def")).unwrap();
        later.finish().unwrap();
        let (_, body) = relay.get("/fetch/cam/jpeg?group=2").await;
        assert_eq!(body, b"abcdef");
        let (status, _) = relay.get("/fetch/cam/missing").await;
        assert!(status.contains("404"));

        let (_, metrics) = relay.get("/metrics").await;
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(metrics.contains("moq_relay_sessions_active 1"), "{metrics}");
        assert!(metrics.contains("moq_relay_broadcasts_active 1"), "{metrics}");
        assert!(!metrics.contains("moq_relay_bytes_out_total 0\n"), "{metrics}");
        // The /fetch requests pulled frames from the publisher through the relay.
        assert!(!metrics.contains("moq_relay_frames_in_total 0\n"), "{metrics}");
        assert!(!metrics.contains("moq_relay_groups_in_total 0\n"), "{metrics}");
        assert!(metrics.contains("moq_relay_cache_bytes "), "{metrics}");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_and_sessions_end() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let origin = OriginProducer::new();
        let (session, _client) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
        let stopping = tokio::spawn(relay.stop());
        // GOAWAY, then the peer (us) closes; the relay finishes its drain.
        let reason = session.closed().await;
        assert!(matches!(reason, Error::Cancel | Error::Transport), "{reason:?}");
        stopping.await.unwrap();
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_drain_time_whatever_clients_do() {
    use moq_lite::endpoint::{ClientConfig, QuicConfig};
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        // This client grants the relay no bidirectional stream, so the relay
        // cannot even open its GOAWAY stream to it.
        let client = relay.client_with(ClientConfig {
            quic: QuicConfig {
                max_bidi_streams: 0,
                ..Default::default()
            },
            ..Default::default()
        });
        let connected = client.connect(&relay.url("moql", "/")).await.unwrap();
        let _session = moq_lite::Session::connect(connected.session, None, None)
            .await
            .unwrap();
        let (_other, _other_client) = relay.connect(&relay.url("moql", "/"), None, None).await;

        // The test relay drains for 2 s at most; before the fix this hung.
        tokio::time::timeout(Duration::from_secs(6), relay.stop())
            .await
            .expect("shutdown finished");
    })
    .await
    .expect("timed out");
}

/// The HTTP side's bounds: a request head over 8 KiB is refused, a client
/// that never finishes its head is dropped after the 5 s request timeout,
/// and only GET is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_side_bounds_request_size_time_and_method() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let exchange = |request: Vec<u8>| async move {
            let mut stream = tokio::net::TcpStream::connect(relay.http).await.unwrap();
            // The relay may stop reading (and reset) once it has refused.
            let _ = stream.write_all(&request).await;
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response).await;
            String::from_utf8_lossy(&response).to_string()
        };

        let huge = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(16 * 1024)
        );
        let response = exchange(huge.into_bytes()).await;
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 431"),
            "an oversized head is refused: {response:?}"
        );

        let response =
            exchange(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        assert!(response.starts_with("HTTP/1.1 405"), "{response}");

        // Half a request head, then silence: closed by the relay, not held.
        let mut slow = tokio::net::TcpStream::connect(relay.http).await.unwrap();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let _ = slow.read_to_end(&mut rest).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow client was held for {:?}",
            started.elapsed()
        );

        // Still serving.
        let (status, body) = relay.get("/health").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"ok\n");
    })
    .await
    .expect("timed out");
}

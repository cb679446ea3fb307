//! Loopback sessions over raw QUIC and WebTransport, for every version:
//! what a subscriber receives from a publisher on the other end.

#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use moq_lite::endpoint::{Client, Server};
use moq_lite::lite::Version;
use moq_lite::model::{OriginConsumer, OriginProducer, Path, Track, TrackConsumer};
use moq_lite::{Error, Session};
use url::Url;

const LIMIT: Duration = Duration::from_secs(20);

/// The ways a client can reach the server, and the version each must give.
fn cases() -> Vec<(&'static str, Vec<&'static str>, Version)> {
    let mut cases = Vec::new();
    for scheme in ["moql", "https"] {
        cases.push((
            scheme,
            vec!["moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03", "moql"],
            Version::Lite06,
        ));
        cases.push((
            scheme,
            vec!["moq-lite-05", "moq-lite-04", "moq-lite-03", "moql"],
            Version::Lite05,
        ));
        cases.push((
            scheme,
            vec!["moq-lite-04", "moq-lite-03", "moql"],
            Version::Lite04,
        ));
        cases.push((scheme, vec!["moq-lite-03"], Version::Lite03));
        cases.push((scheme, vec!["moql"], Version::Lite02));
    }
    // WebTransport with no protocol at all falls back to SETUP.
    cases.push(("https", vec![], Version::Lite02));
    cases
}

struct Pair {
    client: Session,
    server: Session,
    _endpoints: (Client, Server),
}

/// A loopback server with a generated certificate, a client that pins it
/// and offers `protocols`, and the server's URL for `scheme`.
fn endpoints(scheme: &str, protocols: &[&str]) -> (Server, Client, Url) {
    let server = loopback::server();
    let client = loopback::client_offering(&server, protocols);
    let port = server.local_addr().unwrap().port();
    let url = Url::parse(&format!("{scheme}://127.0.0.1:{port}/")).unwrap();
    (server, client, url)
}

/// A server and a client session on loopback.
async fn pair(
    scheme: &str,
    protocols: &[&str],
    server_origins: (Option<OriginConsumer>, Option<OriginProducer>),
    client_origins: (Option<OriginConsumer>, Option<OriginProducer>),
) -> Pair {
    let (server, client, url) = endpoints(scheme, protocols);
    let accept = async {
        let incoming = server.accept().await.expect("incoming");
        let accepted = incoming.accept().await.expect("handshake");
        Session::accept(accepted.session, server_origins.0, server_origins.1).await
    };
    let connect = async {
        let connected = client.connect(&url).await.expect("connects");
        Session::connect(connected.session, client_origins.0, client_origins.1).await
    };
    let (server_session, client_session) = tokio::join!(accept, connect);
    Pair {
        client: client_session.expect("client session"),
        server: server_session.expect("server session"),
        _endpoints: (client, server),
    }
}

/// Waits for `path` to be announced active and subscribes to `track`.
async fn subscribe(origin: &OriginProducer, path: &str, track: &str) -> TrackConsumer {
    let mut announced = origin.consume();
    loop {
        let next = announced.announced().await.expect("origin open");
        if next.path == Path::new(path) {
            if let Some(broadcast) = next.broadcast {
                return broadcast.subscribe_track(&Track::new(track)).expect("subscribes");
            }
        }
    }
}

/// A server session publishing `path` / `name`, and a client session
/// subscribed to it, on loopback.
struct Served {
    pair: Pair,
    /// The server's and the client's origins, alive as long as the test.
    _origins: (OriginProducer, OriginProducer),
    _broadcast: moq_lite::model::BroadcastProducer,
    track: moq_lite::model::TrackProducer,
    consumer: TrackConsumer,
}

async fn served(scheme: &str, protocols: &[&str], path: &str, name: &str) -> Served {
    let server_origin = OriginProducer::new();
    let client_origin = OriginProducer::new();
    let pair = pair(
        scheme,
        protocols,
        (Some(server_origin.consume()), None),
        (None, Some(client_origin.clone())),
    )
    .await;
    let broadcast = server_origin.create_broadcast(path).unwrap();
    let track = broadcast.create_track(Track::new(name));
    let consumer = subscribe(&client_origin, path, name).await;
    Served {
        pair,
        _origins: (server_origin, client_origin),
        _broadcast: broadcast,
        track,
        consumer,
    }
}

/// Reads `count` groups, returning each group's frames by sequence.
async fn read_groups(track: &mut TrackConsumer, count: usize) -> BTreeMap<u64, Vec<Bytes>> {
    let mut groups = BTreeMap::new();
    while groups.len() < count {
        let mut group = track.next_group().await.expect("no error").expect("track open");
        let mut frames = Vec::new();
        while let Some(frame) = group.read_frame().await.expect("group intact") {
            frames.push(frame);
        }
        groups.insert(group.sequence(), frames);
    }
    groups
}

fn frame(group: u64, index: usize) -> Bytes {
    // Sizes vary to cross chunk boundaries: up to ~70 KB.
    let size = (group as usize * 7919 + index * 104_729) % 70_000;
    Bytes::from(vec![(group as u8).wrapping_add(index as u8); size])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_subscribe_every_version_and_transport() {
    for (scheme, protocols, version) in cases() {
        let run = async {
            let server_origin = OriginProducer::new();
            let client_origin = OriginProducer::new();
            let pair = pair(
                scheme,
                &protocols,
                (Some(server_origin.consume()), None),
                (None, Some(client_origin.clone())),
            )
            .await;
            assert_eq!(pair.client.version(), version, "{scheme} {protocols:?}");
            assert_eq!(pair.server.version(), version, "{scheme} {protocols:?}");

            let broadcast = server_origin.create_broadcast("room/alice").unwrap();
            let mut track = broadcast.create_track(Track::new("video"));
            // Written before anyone subscribes: a late joiner starts here.
            let mut first = track.append_group().unwrap();
            first.write_frame(frame(0, 0)).unwrap();
            first.write_frame(frame(0, 1)).unwrap();
            first.finish().unwrap();

            let mut consumer = subscribe(&client_origin, "room/alice", "video").await;
            let late = read_groups(&mut consumer, 1).await;
            assert_eq!(late[&0], vec![frame(0, 0), frame(0, 1)]);

            for sequence in 1..=20u64 {
                let mut group = track.append_group().unwrap();
                for index in 0..5 {
                    group.write_frame(frame(sequence, index)).unwrap();
                }
                group.finish().unwrap();
            }
            let groups = read_groups(&mut consumer, 20).await;
            for (sequence, frames) in groups {
                let expected: Vec<Bytes> = (0..5).map(|i| frame(sequence, i)).collect();
                assert_eq!(frames, expected, "group {sequence} over {scheme} {version:?}");
            }

            // The publisher ends the track: the subscriber sees the end.
            drop(track);
            drop(broadcast);
            assert!(consumer.next_group().await.unwrap().is_none());
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{scheme} {protocols:?} timed out"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_before_publish_and_client_publishes() {
    // Roles reversed: the client publishes, the server subscribes; the
    // subscriber is waiting before the broadcast exists.
    for (scheme, protocols, _) in cases() {
        let run = async {
            let server_origin = OriginProducer::new();
            let client_origin = OriginProducer::new();
            let _pair = pair(
                scheme,
                &protocols,
                (None, Some(server_origin.clone())),
                (Some(client_origin.consume()), None),
            )
            .await;
            let waiting = tokio::spawn({
                let server_origin = server_origin.clone();
                async move {
                    let mut track = subscribe(&server_origin, "cam", "audio").await;
                    read_groups(&mut track, 3).await
                }
            });
            // The track exists before the broadcast is announced, so an early
            // SUBSCRIBE finds it.
            let broadcast = client_origin.new_broadcast();
            let mut track = broadcast.create_track(Track::new("audio"));
            client_origin.publish("cam", &broadcast.consume()).unwrap();
            // Keep writing until the subscriber has three groups.
            let mut sequence = 0;
            while !waiting.is_finished() {
                let mut group = track.append_group().unwrap();
                group.write_frame(frame(sequence, 0)).unwrap();
                group.finish().unwrap();
                sequence += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let groups = waiting.await.unwrap();
            for (sequence, frames) in groups {
                assert_eq!(frames, vec![frame(sequence, 0)]);
            }
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{scheme} {protocols:?} timed out"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_releases_the_publishers_track() {
    let run = async {
        let server_origin = OriginProducer::new();
        let client_origin = OriginProducer::new();
        let _pair = pair(
            "moql",
            &["moq-lite-04"],
            (Some(server_origin.consume()), None),
            (None, Some(client_origin.clone())),
        )
        .await;
        let broadcast = server_origin.create_broadcast("b").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        track.append_group().unwrap().write_frame(frame(0, 0)).unwrap();
        let mut consumer = subscribe(&client_origin, "b", "t").await;
        read_groups(&mut consumer, 1).await;
        assert!(!track.is_unused());
        drop(consumer);
        // The subscription is cancelled on the wire and the remote consumer goes.
        track.unused().await;
    };
    tokio::time::timeout(LIMIT, run).await.expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_track_is_not_found_and_broadcast_end_is_announced() {
    for protocols in [vec!["moq-lite-04"], vec!["moq-lite-03"], vec!["moql"]] {
        let run = async {
            let server_origin = OriginProducer::new();
            let client_origin = OriginProducer::new();
            let _pair = pair(
                "moql",
                &protocols,
                (Some(server_origin.consume()), None),
                (None, Some(client_origin.clone())),
            )
            .await;
            let broadcast = server_origin.create_broadcast("live/x").unwrap();
            let mut missing = subscribe(&client_origin, "live/x", "nope").await;
            assert_eq!(missing.next_group().await.err(), Some(Error::NotFound));

            let mut announced = client_origin.consume();
            let first = announced.announced().await.unwrap();
            assert_eq!(first.path, Path::new("live/x"));
            drop(broadcast);
            let ended = announced.announced().await.unwrap();
            assert_eq!(ended.path, Path::new("live/x"));
            assert!(ended.broadcast.is_none());
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{protocols:?} timed out"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_disconnect_ends_broadcasts_and_tracks() {
    let run = async {
        let server_origin = OriginProducer::new();
        let client_origin = OriginProducer::new();
        let pair = pair(
            "https",
            &["moq-lite-04"],
            (Some(server_origin.consume()), None),
            (None, Some(client_origin.clone())),
        )
        .await;
        let broadcast = server_origin.create_broadcast("gone").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let mut group = track.append_group().unwrap();
        group.write_frame(frame(1, 1)).unwrap();
        let mut consumer = subscribe(&client_origin, "gone", "t").await;
        let mut reading = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(reading.read_frame().await.unwrap().unwrap(), frame(1, 1));

        let mut announced = client_origin.consume();
        announced.announced().await.unwrap();
        drop(pair.server);
        // The group in flight is aborted, the track and broadcast end.
        let after = reading.read_frame().await;
        assert!(after.is_err(), "{after:?}");
        assert!(consumer.closed().await.is_err());
        let ended = announced.announced().await.unwrap();
        assert!(ended.broadcast.is_none());
        // And the client's session ends with the connection.
        let reason = pair.client.closed().await;
        assert!(matches!(reason, Error::Transport | Error::Cancel), "{reason:?}");
    };
    tokio::time::timeout(LIMIT, run).await.expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_announcements_are_refused_without_closing_the_session() {
    let run = async {
        let (server, client, url) = endpoints("moql", moq_lite::endpoint::LITE_PROTOCOLS);

        // The client announces three broadcasts; the server takes two.
        let published = OriginProducer::new();
        let _a = published.create_broadcast("a").unwrap();
        let _b = published.create_broadcast("b").unwrap();
        let received = OriginProducer::new();
        let accept = async {
            let accepted = server.accept().await.unwrap().accept().await.unwrap();
            let config = moq_lite::SessionConfig {
                subscribe: Some(received.clone()),
                max_announced: Some(2),
                ..Default::default()
            };
            Session::accept_with(accepted.session, config).await.unwrap()
        };
        let connect = async {
            let connected = client.connect(&url).await.unwrap();
            Session::connect(connected.session, published.consume(), None)
                .await
                .unwrap()
        };
        let (server_session, _client_session) = tokio::join!(accept, connect);
        let mut seen = received.consume();
        assert!(seen.announced().await.unwrap().broadcast.is_some());
        assert!(seen.announced().await.unwrap().broadcast.is_some());

        // A third is over the limit: the announce stream is refused, so what
        // it brought ends, but the session stays up.
        let _c = published.create_broadcast("c").unwrap();
        assert!(seen.announced().await.unwrap().broadcast.is_none());
        assert!(seen.announced().await.unwrap().broadcast.is_none());
        assert!(
            tokio::time::timeout(Duration::from_millis(200), server_session.closed())
                .await
                .is_err(),
            "the session stays open"
        );
    };
    tokio::time::timeout(LIMIT, run).await.expect("timed out");
}

/// A subscriber that stops reading stops granting streams: here it grants
/// none at all, so nothing depends on how many groups fit in its windows or
/// how fast its QUIC stack acknowledges them. The publisher keeps at most
/// `MAX_INFLIGHT_GROUPS` groups waiting for a stream and drops the rest
/// (counted) instead of queueing them, and the track's writer never blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_pins_a_bounded_number_of_groups() {
    use moq_lite::delivery::MAX_INFLIGHT_GROUPS;
    use moq_lite::endpoint::{ClientConfig, QuicConfig};
    use moq_lite::lite::{ControlStream, Message, Subscribe};

    const GROUPS: u64 = 200;

    let run = async {
        let server = loopback::server();
        let client = loopback::client(
            &server,
            ClientConfig {
                protocols: vec!["moq-lite-04".into()],
                quic: QuicConfig {
                    max_uni_streams: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let url = Url::parse(&format!(
            "moql://127.0.0.1:{}/",
            server.local_addr().unwrap().port()
        ))
        .unwrap();
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("b").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let accept = async {
            let accepted = server.accept().await.unwrap().accept().await.unwrap();
            Session::accept(accepted.session, origin.consume(), None)
                .await
                .unwrap()
        };
        let (server_session, raw) = tokio::join!(accept, async { client.connect(&url).await.unwrap() });

        // SUBSCRIBE by hand, then never accept a single group stream.
        let (mut send, _recv) = raw.session.open_bi().await.unwrap();
        let mut buf = Vec::new();
        ControlStream::Subscribe
            .encode(Version::Lite04, &mut buf)
            .unwrap();
        let msg = Subscribe {
            id: 1,
            broadcast: Path::new("b"),
            track: "t".into(),
            ..Default::default()
        };
        msg.encode(Version::Lite04, &mut buf).unwrap();
        send.write_all(&buf).await.unwrap();
        while track.is_unused() {
            tokio::task::yield_now().await;
        }

        // 12.8 MB of groups: writing them never waits for the subscriber.
        for _ in 0..GROUPS {
            let mut group = track.append_group().unwrap();
            group.write_frame(Bytes::from(vec![0u8; 64 * 1024])).unwrap();
            group.finish().unwrap();
            tokio::task::yield_now().await;
        }

        // Every group is either waiting in flight (the newest
        // MAX_INFLIGHT_GROUPS) or dropped and counted.
        let dropped = GROUPS - MAX_INFLIGHT_GROUPS as u64;
        let stats = server_session.stats();
        let mut snapshot = stats.snapshot();
        while snapshot.groups_dropped < dropped {
            tokio::time::sleep(Duration::from_millis(10)).await;
            snapshot = stats.snapshot();
        }
        assert_eq!(snapshot.groups_dropped, dropped, "{snapshot:?}");
        assert_eq!(snapshot.groups_out, 0, "no stream was granted: {snapshot:?}");
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("the publisher never dropped the groups it could not send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_timestamps_cross_lite05_and_not_lite04() {
    for (protocols, carried) in [
        (vec!["moq-lite-06"], true),
        (vec!["moq-lite-05"], true),
        (vec!["moq-lite-04"], false),
    ] {
        for scheme in ["moql", "https"] {
            let run = async {
                // Bound whole: the sessions live as long as `served`.
                let mut served = served(scheme, &protocols, "clock", "seconds").await;
                let (track, consumer) = (&mut served.track, &mut served.consumer);
                // Times in microseconds, going back once, and a frame without one.
                let mut group = track.append_group().unwrap();
                group.write_frame_at(Bytes::from_static(b"a"), 1_000_000).unwrap();
                group.write_frame_at(Bytes::from_static(b"b"), 1_033_000).unwrap();
                group.write_frame_at(Bytes::from_static(b"c"), 1_016_000).unwrap();
                group.write_frame(Bytes::from_static(b"d")).unwrap();
                group.finish().unwrap();

                let mut group = consumer.next_group().await.unwrap().unwrap();
                let mut got = Vec::new();
                while let Some(mut frame) = group.next_frame().await.unwrap() {
                    let timestamp = frame.timestamp();
                    got.push((frame.read_all().await.unwrap(), timestamp));
                }
                let expected: Vec<(Bytes, Option<u64>)> = [
                    (&b"a"[..], 1_000_000),
                    (b"b", 1_033_000),
                    (b"c", 1_016_000),
                    // Without a timestamp, the previous one is repeated.
                    (b"d", 1_016_000),
                ]
                .into_iter()
                .map(|(p, t)| (Bytes::from_static(p), carried.then_some(t)))
                .collect();
                assert_eq!(got, expected, "{scheme} {protocols:?}");
            };
            tokio::time::timeout(LIMIT, run)
                .await
                .unwrap_or_else(|_| panic!("{scheme} {protocols:?} timed out"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_groups_cross_lite05_and_06_as_datagrams_and_lite04_as_streams() {
    for protocols in [vec!["moq-lite-06"], vec!["moq-lite-05"], vec!["moq-lite-04"]] {
        for scheme in ["moql", "https"] {
            let run = async {
                let mut served = served(scheme, &protocols, "pos", "xy").await;
                let (pair, track, consumer) = (&served.pair, &mut served.track, &mut served.consumer);
                while track.is_unused() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let sequence = track.write_datagram(Bytes::from_static(b"1,2"), 5_000).unwrap();
                let mut group = consumer.next_group().await.unwrap().unwrap();
                assert_eq!(group.sequence(), sequence);
                let carried = protocols[0] != "moq-lite-04";
                // Kept a datagram on the far side (a relay would forward it as one).
                assert_eq!(group.is_datagram(), carried, "{scheme} {protocols:?}");
                let mut frame = group.next_frame().await.unwrap().unwrap();
                assert_eq!(frame.timestamp(), carried.then_some(5_000));
                assert_eq!(frame.read_all().await.unwrap(), Bytes::from_static(b"1,2"));
                assert!(group.next_frame().await.unwrap().is_none());
                let sent = pair.server.stats().snapshot();
                assert_eq!(sent.groups_out, 1, "{scheme} {protocols:?}");
            };
            tokio::time::timeout(LIMIT, run)
                .await
                .unwrap_or_else(|_| panic!("{scheme} {protocols:?} timed out"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_costs_add_the_link_price_on_lite06() {
    // (protocol, the client's configured link cost, the cost each side reads)
    for (protocol, link_cost, expected) in [
        (
            "moq-lite-06",
            Some(5),
            moq_lite::model::RouteCost { warm: 5, cold: 5 },
        ),
        (
            "moq-lite-06",
            None,
            moq_lite::model::RouteCost { warm: 1, cold: 1 },
        ),
        (
            "moq-lite-05",
            Some(5),
            moq_lite::model::RouteCost {
                warm: 5,
                cold: moq_lite::model::RouteCost::MAX,
            },
        ),
    ] {
        let run = async {
            let (server, client, url) = endpoints("moql", &[protocol]);
            let (server_out, server_in) = (OriginProducer::new(), OriginProducer::new());
            let (client_out, client_in) = (OriginProducer::new(), OriginProducer::new());
            let _a = server_out.create_broadcast("from-server").unwrap();
            let _b = client_out.create_broadcast("from-client").unwrap();
            let accept = async {
                let accepted = server.accept().await.unwrap().accept().await.unwrap();
                let config = moq_lite::SessionConfig {
                    publish: Some(server_out.consume()),
                    subscribe: Some(server_in.clone()),
                    ..Default::default()
                };
                Session::accept_with(accepted.session, config).await.unwrap()
            };
            let connect = async {
                let connected = client.connect(&url).await.unwrap();
                let config = moq_lite::SessionConfig {
                    publish: Some(client_out.consume()),
                    subscribe: Some(client_in.clone()),
                    link_cost,
                    ..Default::default()
                };
                Session::connect_with(connected.session, config).await.unwrap()
            };
            let _sessions = tokio::join!(accept, connect);
            // The server priced the client's route with the client's declared
            // Cost; the client priced the server's with its own.
            for (origin, path) in [(&server_in, "from-client"), (&client_in, "from-server")] {
                let mut announced = origin.consume();
                let broadcast = loop {
                    let next = announced.announced().await.unwrap();
                    if let Some(b) = next.broadcast.filter(|_| next.path == Path::new(path)) {
                        break b;
                    }
                };
                assert_eq!(
                    broadcast.route_cost(),
                    expected,
                    "{protocol} {link_cost:?} {path}"
                );
            }
        };
        tokio::time::timeout(LIMIT, run).await.expect("timed out");
    }
}

/// Streams in flight past the initial concurrent-stream limit (8): 200
/// groups held open at once (ten tracks of twenty, none finished), so every
/// one needs its own stream open at the same time. The receiving side must
/// raise its limit as they come, in both directions and over both
/// transports, or the later groups never arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_in_flight_past_the_initial_stream_limit_all_arrive() {
    const TRACKS: u64 = 10;
    const GROUPS: u64 = 20;
    for scheme in ["moql", "https"] {
        for client_publishes in [false, true] {
            let run = async {
                let (server, client, url) = endpoints(scheme, &["moq-lite-06"]);
                let publisher = OriginProducer::new();
                let subscriber = OriginProducer::new();
                let (server_origins, client_origins) = if client_publishes {
                    (
                        (None, Some(subscriber.clone())),
                        (Some(publisher.consume()), None),
                    )
                } else {
                    (
                        (Some(publisher.consume()), None),
                        (None, Some(subscriber.clone())),
                    )
                };
                let accept = async {
                    let accepted = server.accept().await.unwrap().accept().await.unwrap();
                    let raw = accepted.session.clone();
                    let session = Session::accept(accepted.session, server_origins.0, server_origins.1);
                    (session.await.unwrap(), raw)
                };
                let connect = async {
                    let connected = client.connect(&url).await.unwrap();
                    let raw = connected.session.clone();
                    let session = Session::connect(connected.session, client_origins.0, client_origins.1);
                    (session.await.unwrap(), raw)
                };
                let ((_server_session, server_raw), (_client_session, client_raw)) =
                    tokio::join!(accept, connect);
                let (sending, receiving) = if client_publishes {
                    (client_raw, server_raw)
                } else {
                    (server_raw, client_raw)
                };
                let quic = moq_lite::endpoint::QuicConfig::default();
                let initial = (quic.initial_bidi_streams.into(), quic.initial_uni_streams.into());
                assert_eq!(receiving.stream_limits(), initial, "the initial limits");
                assert!(
                    TRACKS * GROUPS > initial.1 * 16,
                    "the test needs several doublings"
                );

                let broadcast = publisher.create_broadcast("b").unwrap();
                let mut tracks = Vec::new();
                let mut consumers = Vec::new();
                for t in 0..TRACKS {
                    let name = format!("t{t}");
                    tracks.push(broadcast.create_track(Track::new(name.as_str())));
                    consumers.push(subscribe(&subscriber, "b", &name).await);
                }
                // Each subscription has reached the publisher.
                for track in &tracks {
                    while track.is_unused() {
                        tokio::task::yield_now().await;
                    }
                }

                // Open every group and keep it open: one stream each.
                let mut open = Vec::new();
                for g in 0..GROUPS {
                    for (t, track) in tracks.iter_mut().enumerate() {
                        let mut group = track.append_group().unwrap();
                        group.write_frame(Bytes::from(format!("{t}/{g}"))).unwrap();
                        open.push(group);
                    }
                }

                // Newest first, as live delivery sends them: any order.
                for (t, consumer) in consumers.iter_mut().enumerate() {
                    let mut got = BTreeMap::new();
                    for _ in 0..GROUPS {
                        let mut group = consumer.next_group().await.unwrap().expect("track open");
                        let frame = group.read_frame().await.unwrap().expect("a frame");
                        got.insert(group.sequence(), frame);
                    }
                    let expected: BTreeMap<u64, Bytes> = (0..GROUPS)
                        .map(|g| (g, Bytes::from(format!("{t}/{g}"))))
                        .collect();
                    assert_eq!(got, expected, "{scheme} track {t}");
                }
                let (_, uni) = receiving.stream_limits();
                assert!(uni >= TRACKS * GROUPS, "{scheme}: uni limit {uni}");
                // Ten SUBSCRIBE streams open at once raised the publisher's
                // bidirectional limit too.
                let (bidi, _) = sending.stream_limits();
                assert!(bidi > initial.0, "{scheme}: bidi limit {bidi}");
                drop(open);
            };
            tokio::time::timeout(LIMIT, run)
                .await
                .unwrap_or_else(|_| panic!("{scheme}, client publishes: {client_publishes}: timed out"));
        }
    }
}

//! IETF sessions over loopback (raw QUIC and WebTransport) through the
//! unified `accept` / `connect` entry point, and a raw draft client that
//! speaks the wire directly for what the model cannot ask for (FETCH,
//! unknown namespaces, other sub-groups).

mod common;

use common::*;
use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::model::{OriginProducer, Path, Track};
use moq_transport_compat::control::{ControlMessage, Fetch, FetchType, PublishNamespace};
use moq_transport_compat::data::{ObjectContent, SubgroupHeader, SubgroupId, SubgroupObject, SubgroupWriter};
use moq_transport_compat::ietf::stream::Writer;
use moq_transport_compat::{
    Draft, KeyValuePairs, Location, Session, SubscriptionFilter, TrackNamespace, Version,
};

/// IETF publisher (server) -> IETF subscriber (client): 3 groups x 5 objects.
async fn ietf_to_ietf(scheme: &str, protocol: &str, draft: Draft) {
    let server_origin = OriginProducer::new();
    let client_origin = OriginProducer::new();
    let (server, client, _endpoints) = pair(
        scheme,
        &[protocol],
        publish(&server_origin),
        subscribe(&client_origin),
    )
    .await;
    assert_eq!(server.version(), Version::Ietf(draft));
    assert_eq!(client.version(), Version::Ietf(draft));

    let broadcast = server_origin.create_broadcast("room/alice").unwrap();
    let mut track = broadcast.create_track(Track::new("video"));
    let mut consumer = subscribe_track(&client_origin, "room/alice", "video").await;
    until_consumed(&track, 1).await;
    write_groups(&mut track, 3);
    let groups = read_groups(&mut consumer, 3).await;
    check_groups(&groups);

    // Both ends count what they carried, as moq-lite sessions do.
    let bytes: u64 = groups.values().flatten().map(|f| f.len() as u64).sum();
    let sent = server.stats().snapshot();
    let received = client.stats().snapshot();
    assert_eq!((sent.groups_out, sent.frames_out, sent.bytes_out), (3, 15, bytes));
    assert_eq!(
        (received.groups_in, received.frames_in, received.bytes_in),
        (3, 15, bytes)
    );
    assert_eq!(sent.subscriptions, 1, "the client's subscription is open");

    // A track the broadcast does not have: SUBSCRIBE_ERROR, the consumer fails.
    let broadcast = client_origin.consume().consume_broadcast("room/alice").unwrap();
    let mut missing = broadcast.subscribe_track(&Track::new("nope")).unwrap();
    assert!(missing.next_group().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_publisher_to_ietf_subscriber_every_draft_and_transport() {
    for scheme in ["moqt", "https"] {
        for draft in Draft::ALL {
            let protocol = draft.alpn();
            tokio::time::timeout(LIMIT, ietf_to_ietf(scheme, protocol, draft))
                .await
                .unwrap_or_else(|_| panic!("{scheme} {protocol} timed out"));
        }
    }
}

/// The client is the IETF publisher and the server subscribes (PUBLISH_NAMESPACE
/// flows client -> server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_client_publishes_to_server() {
    tokio::time::timeout(LIMIT, async {
        let server_origin = OriginProducer::new();
        let client_origin = OriginProducer::new();
        let (_server, _client, _endpoints) = pair(
            "moqt",
            &["moqt-16"],
            subscribe(&server_origin),
            publish(&client_origin),
        )
        .await;
        let broadcast = client_origin.create_broadcast("up/bob").unwrap();
        let mut track = broadcast.create_track(Track::new("audio"));
        let mut consumer = subscribe_track(&server_origin, "up/bob", "audio").await;
        until_consumed(&track, 1).await;
        write_groups(&mut track, 3);
        check_groups(&read_groups(&mut consumer, 3).await);
    })
    .await
    .expect("timed out");
}

/// Draft-14 through the `moql` SETUP path: a CLIENT_SETUP offering only
/// 0xff00000e reaches the IETF session; the unified client offering lite
/// versions too gets moq-lite-02.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft14_through_setup_path() {
    tokio::time::timeout(LIMIT, async {
        let server_origin = OriginProducer::new();
        let client_origin = OriginProducer::new();
        let srv = server(moq_transport_compat::ALL_PROTOCOLS);
        let cli = client(&srv, &["moql"]);
        let (s, c) = transports(&srv, &cli, "moqt").await;
        let (server, client) = tokio::join!(
            moq_transport_compat::accept(s, publish(&server_origin)),
            moq_transport_compat::ietf::Session::connect(c, Draft::D14, subscribe(&client_origin))
        );
        let server = server.unwrap();
        let _client = client.unwrap();
        assert_eq!(server.version(), Version::Ietf(Draft::D14));
        let broadcast = server_origin.create_broadcast("a/b").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let mut consumer = subscribe_track(&client_origin, "a/b", "t").await;
        until_consumed(&track, 1).await;
        write_groups(&mut track, 3);
        check_groups(&read_groups(&mut consumer, 3).await);

        // The unified client on `moql` offers lite-02 first.
        let (s, c) = transports(&srv, &cli, "moqt").await;
        let (server, client) = tokio::join!(
            moq_transport_compat::accept(s, SessionConfig::default()),
            moq_transport_compat::connect(c, SessionConfig::default())
        );
        assert_eq!(
            server.unwrap().version(),
            Version::Lite(moq_lite::lite::Version::Lite02)
        );
        assert_eq!(
            client.unwrap().version(),
            Version::Lite(moq_lite::lite::Version::Lite02)
        );
    })
    .await
    .expect("timed out");
}

/// A relay in-process: one origin, a lite publisher and an IETF subscriber
/// (and the other way round), over raw QUIC and WebTransport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_and_ietf_through_a_shared_origin() {
    for scheme in ["moqt", "https"] {
        for (publisher, subscriber) in [
            ("moq-lite-04", "moqt-16"),
            ("moq-00", "moq-lite-03"),
            ("moqt-15", "moq-00"),
            ("moq-lite-04", "moqt-17"),
            ("moqt-17", "moq-lite-03"),
            ("moqt-17", "moqt-16"),
        ] {
            tokio::time::timeout(LIMIT, async {
                let relay = OriginProducer::new();
                let relay_config = SessionConfig {
                    publish: Some(relay.consume()),
                    subscribe: Some(relay.clone()),
                    ..Default::default()
                };
                let pub_origin = OriginProducer::new();
                let sub_origin = OriginProducer::new();
                let (_s1, _c1, _e1) =
                    pair(scheme, &[publisher], relay_config.clone(), publish(&pub_origin)).await;
                let (_s2, _c2, _e2) = pair(scheme, &[subscriber], relay_config, subscribe(&sub_origin)).await;
                let broadcast = pub_origin.create_broadcast("live/cam").unwrap();
                let mut track = broadcast.create_track(Track::new("video"));
                let mut consumer = subscribe_track(&sub_origin, "live/cam", "video").await;
                until_consumed(&track, 1).await;
                write_groups(&mut track, 3);
                check_groups(&read_groups(&mut consumer, 3).await);
            })
            .await
            .unwrap_or_else(|_| panic!("{scheme} {publisher} -> {subscriber} timed out"));
        }
    }
}

/// Interop-runner cases against our server: PUBLISH_NAMESPACE -> OK,
/// SUBSCRIBE for an unknown namespace / track -> error, SUBSCRIBE with an
/// AbsoluteStart filter served from the cache, then a joining FETCH and a
/// standalone FETCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_announce_subscribe_error_and_fetch() {
    for draft in [Draft::D14, Draft::D15, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let origin = OriginProducer::new();
            let config = SessionConfig {
                publish: Some(origin.consume()),
                subscribe: Some(origin.clone()),
                ..Default::default()
            };
            let broadcast = origin.create_broadcast("cache/x").unwrap();
            let mut track = broadcast.create_track(Track::new("t"));
            write_groups(&mut track, 3);
            let (mut raw, _server, _endpoints) = raw_pair(draft, config).await;

            // PUBLISH_NAMESPACE -> OK.
            raw.send(ControlMessage::PublishNamespace(PublishNamespace {
                request_id: 0,
                required_request_id_delta: 0,
                namespace: TrackNamespace::from_path(&Path::new("mine/ns")).unwrap(),
                parameters: KeyValuePairs::new(),
            }))
            .await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::RequestOk(ref ok) if ok.request_id == 0),
                "{reply:?}"
            );

            // Unknown namespace, unknown track: errors. Draft-14's
            // SUBSCRIBE_ERROR says TRACK_DOES_NOT_EXIST (0x4); from 15 the
            // REQUEST_ERROR table says DOES_NOT_EXIST (0x10).
            let does_not_exist = if draft == Draft::D14 { 0x4 } else { 0x10 };
            for (id, ns, name) in [(2, "no/such", "t"), (4, "cache/x", "nope")] {
                raw.send(subscribe_msg(
                    id,
                    ns,
                    name,
                    SubscriptionFilter::LargestObject,
                    draft,
                ))
                .await;
                let reply = raw.recv().await;
                assert!(
                    matches!(reply, ControlMessage::RequestError(ref e)
                        if e.request_id == id && e.error_code == does_not_exist),
                    "{reply:?}"
                );
            }

            // SUBSCRIBE, latest object: it delivers the current group (2)
            // whole, so its Largest is what lies before it, {1, 4}.
            raw.send(subscribe_msg(
                6,
                "cache/x",
                "t",
                SubscriptionFilter::LargestObject,
                draft,
            ))
            .await;
            let reply = raw.recv().await;
            let ControlMessage::SubscribeOk(ok) = reply else {
                panic!("{reply:?}")
            };
            assert_eq!(ok.request_id, 6);
            let largest = match draft {
                Draft::D14 => ok.largest,
                _ => moq_transport_compat::control::location(
                    &ok.parameters,
                    moq_transport_compat::control::MessageParameter::LargestObject.code(),
                    draft,
                )
                .unwrap(),
            };
            assert_eq!(largest, Some(Location::new(1, 4)));

            // Joining FETCH: 2 groups back from the largest (clamped at 0),
            // up to it: what the subscription does not send.
            raw.send(ControlMessage::Fetch(Fetch {
                request_id: 8,
                required_request_id_delta: 0,
                subscriber_priority: 0,
                group_order: 0,
                fetch_type: FetchType::RelativeJoining {
                    joining_request_id: 6,
                    joining_start: 2,
                },
                parameters: KeyValuePairs::new(),
            }))
            .await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::FetchOk(ref ok) if ok.request_id == 8),
                "{reply:?}"
            );
            let objects = read_fetch(&raw).await;
            let expected: Vec<(u64, u64)> = (0..2).flat_map(|g| (0..5).map(move |o| (g, o))).collect();
            assert_eq!(
                objects.iter().map(|(g, o, _)| (*g, *o)).collect::<Vec<_>>(),
                expected
            );
            for (g, o, payload) in &objects {
                assert_eq!(payload, &object(*g, *o));
            }

            // Standalone FETCH of group 1, objects 1..=3.
            raw.send(ControlMessage::Fetch(Fetch {
                request_id: 10,
                required_request_id_delta: 0,
                subscriber_priority: 0,
                group_order: 0,
                fetch_type: FetchType::Standalone {
                    namespace: TrackNamespace::from_path(&Path::new("cache/x")).unwrap(),
                    name: Bytes::from_static(b"t"),
                    start: Location::new(1, 1),
                    end: Location::new(1, 4),
                },
                parameters: KeyValuePairs::new(),
            }))
            .await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::FetchOk(ref ok) if ok.request_id == 10),
                "{reply:?}"
            );
            let objects = read_fetch(&raw).await;
            assert_eq!(
                objects.iter().map(|(g, o, _)| (*g, *o)).collect::<Vec<_>>(),
                vec![(1, 1), (1, 2), (1, 3)]
            );
        })
        .await
        .unwrap_or_else(|_| panic!("{draft} timed out"));
    }
}

/// The raw client publishes (PUBLISH_NAMESPACE), our server subscribes on
/// demand; the data comes in sub-groups 0 and 1: sub-group 1 is dropped
/// and counted, the session lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_outside_subgroup_zero_are_dropped() {
    let draft = Draft::D16;
    tokio::time::timeout(LIMIT, async {
        let origin = OriginProducer::new();
        let (mut raw, server, _endpoints) = raw_pair(draft, subscribe(&origin)).await;
        raw.send(ControlMessage::PublishNamespace(PublishNamespace {
            request_id: 0,
            required_request_id_delta: 0,
            namespace: TrackNamespace::from_path(&Path::new("raw/pub")).unwrap(),
            parameters: KeyValuePairs::new(),
        }))
        .await;
        assert!(matches!(raw.recv().await, ControlMessage::RequestOk(_)));
        let broadcast = origin
            .consume()
            .consume_broadcast("raw/pub")
            .expect("published into the origin");
        let mut consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();
        accept_subscribe(&mut raw, 7).await;
        for subgroup in [SubgroupId::Explicit(1), SubgroupId::Zero] {
            let send = raw.session.open_uni().await.unwrap();
            let mut writer = Writer::new(send);
            let header = SubgroupHeader {
                track_alias: 7,
                group_id: 0,
                subgroup_id: subgroup,
                publisher_priority: Some(0),
                extensions: false,
                end_of_group: false,
                first_object: true,
            };
            let mut objects = SubgroupWriter::new(&header);
            writer.encode(|b| header.encode(draft, b)).await.unwrap();
            for o in 0..3 {
                let obj = SubgroupObject {
                    object_id: o,
                    extensions: KeyValuePairs::new(),
                    content: ObjectContent::Payload(object(0, o)),
                };
                writer.encode(|b| objects.encode(&obj, draft, b)).await.unwrap();
            }
            writer.finish().unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let groups = read_groups(&mut consumer, 1).await;
        assert_eq!(groups[&0], (0..3).map(|o| object(0, o)).collect::<Vec<_>>());
        let Session::Ietf(ietf) = &server else {
            panic!("not IETF")
        };
        assert_eq!(ietf.dropped_objects(), 3);
    })
    .await
    .expect("timed out");
}

/// Draft-17 end to end, both directions of publishing over both
/// transports: the client publishes (PUBLISH_NAMESPACE on a request stream),
/// the server subscribes on demand; the subscriber unsubscribing resets
/// the request stream and the publisher sees its consumer go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft17_client_publishes_and_unsubscribes() {
    for scheme in ["moqt", "https"] {
        tokio::time::timeout(LIMIT, async {
            let server_origin = OriginProducer::new();
            let client_origin = OriginProducer::new();
            let (server, client, _endpoints) = pair(
                scheme,
                &["moqt-17"],
                subscribe(&server_origin),
                publish(&client_origin),
            )
            .await;
            assert_eq!(server.version(), Version::Ietf(Draft::D17));
            assert_eq!(client.version(), Version::Ietf(Draft::D17));
            let broadcast = client_origin.create_broadcast("up/carol").unwrap();
            let mut track = broadcast.create_track(Track::new("audio"));
            let mut consumer = subscribe_track(&server_origin, "up/carol", "audio").await;
            until_consumed(&track, 1).await;
            write_groups(&mut track, 3);
            check_groups(&read_groups(&mut consumer, 3).await);
            drop(consumer);
            tokio::time::timeout(Duration::from_secs(5), async {
                while track.consumer_count() > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("unsubscribed");

            // Withdrawing the broadcast ends the PUBLISH_NAMESPACE stream and
            // the server's copy of the broadcast, over both transports.
            let announced = following(&server_origin, "up/carol").await;
            drop(track);
            drop(broadcast);
            until_withdrawn(announced, "up/carol").await;
        })
        .await
        .unwrap_or_else(|_| panic!("{scheme} timed out"));
    }
}

/// An origin consumer that already reported `path` as active: its watcher
/// is registered, so a withdrawal that comes at once is not missed (a
/// consumer only starts following at its first poll, and its replay does
/// not include what already ended).
async fn following(origin: &OriginProducer, path: &str) -> moq_lite::model::OriginConsumer {
    let mut announced = origin.consume();
    loop {
        let next = announced.announced().await.expect("origin open");
        if next.path == Path::new(path) && next.broadcast.is_some() {
            return announced;
        }
    }
}

/// Waits until `announced` reports `path` ended.
async fn until_withdrawn(mut announced: moq_lite::model::OriginConsumer, path: &str) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let next = announced.announced().await.expect("origin open");
            if next.path == Path::new(path) && next.broadcast.is_none() {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{path} not withdrawn"));
}

/// Draft-17: a withdrawn broadcast ends in the subscriber's origin, over
/// raw QUIC and WebTransport, whichever side publishes, with and without a
/// live subscription at the time (the subscriber's session then holds the
/// track's producer and its request streams are still open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft17_withdrawal_ends_the_broadcast_downstream() {
    for scheme in ["moqt", "https"] {
        for server_publishes in [false, true] {
            for live in [false, true] {
                tokio::time::timeout(LIMIT, async {
                    let pub_origin = OriginProducer::new();
                    let sub_origin = OriginProducer::new();
                    let (server_config, client_config) = match server_publishes {
                        true => (publish(&pub_origin), relay_config(&sub_origin)),
                        false => (relay_config(&sub_origin), publish(&pub_origin)),
                    };
                    let (_server, _client, _endpoints) =
                        pair(scheme, &["moqt-17"], server_config, client_config).await;
                    let broadcast = pub_origin.create_broadcast("w/d").unwrap();
                    let mut track = broadcast.create_track(Track::new("t"));
                    let mut consumer = subscribe_track(&sub_origin, "w/d", "t").await;
                    until_consumed(&track, 1).await;
                    write_groups(&mut track, 3);
                    check_groups(&read_groups(&mut consumer, 3).await);
                    if !live {
                        drop(consumer);
                        while track.consumer_count() > 0 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    let announced = following(&sub_origin, "w/d").await;
                    drop(track);
                    drop(broadcast);
                    until_withdrawn(announced, "w/d").await;
                })
                .await
                .unwrap_or_else(|_| {
                    panic!("{scheme} server_publishes={server_publishes} live={live} timed out")
                });
            }
        }
    }
}

/// Raw QUIC has no request line, so an IETF client sends its URL in SETUP:
/// "When connecting to a server using a URI with the 'moqt' scheme, the
/// client MUST set the PATH parameter to the path-abempty portion of the
/// URI; if query is present, the client MUST concatenate ?, followed by
/// the query", and AUTHORITY "to the authority portion". Checked on the
/// bytes a raw server reads, for the control-stream drafts and draft-17's
/// SETUP stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_quic_clients_send_path_and_authority() {
    use moq_transport_compat::control::{Decoded, SetupParameter};
    use moq_transport_compat::ietf::stream::Reader;
    for (alpn, draft) in [
        ("moq-00", Draft::D14),
        ("moqt-16", Draft::D16),
        ("moqt-17", Draft::D17),
    ] {
        tokio::time::timeout(LIMIT, async {
            let srv = server(&[alpn]);
            let cli = client(&srv, &[alpn]);
            let (s, c) = transports(&srv, &cli, "moqt").await;
            let dialled = url::Url::parse("moqt://relay.example:4443/room/a?jwt=x.y.z").unwrap();
            let config = SessionConfig {
                raw_quic_url: Some(dialled),
                ..Default::default()
            };
            let _client = tokio::spawn(moq_transport_compat::connect(c, config));
            let params = if draft == Draft::D17 {
                let recv = web_transport_trait::Session::accept_uni(&s).await.unwrap();
                let msg = Reader::new(recv)
                    .decode_required(|b| ControlMessage::decode(b, draft))
                    .await
                    .unwrap();
                let Decoded::Message(ControlMessage::Setup(setup)) = msg else {
                    panic!("{msg:?}")
                };
                setup.options
            } else {
                let (_send, recv) = web_transport_trait::Session::accept_bi(&s).await.unwrap();
                let msg = Reader::new(recv)
                    .decode_required(|b| ControlMessage::decode(b, draft))
                    .await
                    .unwrap();
                let Decoded::Message(ControlMessage::ClientSetup(setup)) = msg else {
                    panic!("{msg:?}")
                };
                setup.parameters
            };
            assert_eq!(
                params.get_bytes(SetupParameter::Path.code()).map(|b| &b[..]),
                Some(&b"/room/a?jwt=x.y.z"[..]),
                "{draft}"
            );
            assert_eq!(
                params.get_bytes(SetupParameter::Authority.code()).map(|b| &b[..]),
                Some(&b"relay.example:4443"[..]),
                "{draft}"
            );
        })
        .await
        .unwrap_or_else(|_| panic!("{draft} timed out"));
    }
}

//! The IETF interop-runner cases not covered in `session.rs`, run by a raw
//! draft-14 client against a relay-like server (one shared origin served by
//! `accept`), and the paths that had no test: every subscription filter
//! from the cache, absolute joining FETCH, TRACK_STATUS, GOAWAY, datagrams.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use moq_lite::model::{OriginProducer, Path, Track};
use moq_transport_compat::control::{
    ControlMessage, Fetch, FetchType, GoAway, PublishNamespace, PublishNamespaceDone, Subscribe,
};
use moq_transport_compat::data::{ObjectContent, ObjectDatagram};
use moq_transport_compat::{Draft, KeyValuePairs, Location, SubscriptionFilter, TrackNamespace};

const D14: Draft = Draft::D14;

fn ns(path: &str) -> TrackNamespace {
    TrackNamespace::from_path(&Path::new(path)).unwrap()
}

/// A relay origin holding "cache/x" track "t" with groups 0..3 of 5 objects.
fn cached_origin() -> (
    OriginProducer,
    moq_lite::model::BroadcastProducer,
    moq_lite::model::TrackProducer,
) {
    let origin = OriginProducer::new();
    let broadcast = origin.create_broadcast("cache/x").unwrap();
    let mut track = broadcast.create_track(Track::new("t"));
    write_groups(&mut track, 3);
    (origin, broadcast, track)
}

async fn subscribe_ok(raw: &mut Raw, id: u64, filter: SubscriptionFilter) -> u64 {
    raw.send(subscribe_msg(id, "cache/x", "t", filter, D14)).await;
    let reply = raw.recv().await;
    let ControlMessage::SubscribeOk(ok) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(ok.request_id, id);
    // "Group Order: Indicates the subscription will be delivered in
    // Ascending (0x1) or Descending (0x2) order": newest first, as the
    // subscriber asked for the publisher's order (0).
    assert_eq!(ok.group_order, 2);
    ok.track_alias
}

/// publish-namespace-done: PUBLISH_NAMESPACE -> OK, a lite subscriber of
/// the same relay sees the broadcast; PUBLISH_NAMESPACE_DONE withdraws it
/// and the lite subscriber sees it end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_publish_namespace_done() {
    tokio::time::timeout(LIMIT, async {
        let relay = OriginProducer::new();
        let (mut raw, _server, _e1) = raw_pair(D14, relay_config(&relay)).await;
        let lite_origin = OriginProducer::new();
        let (_s2, _lite, _e2) = pair(
            "moqt",
            &["moq-lite-04"],
            relay_config(&relay),
            subscribe(&lite_origin),
        )
        .await;
        let mut announced = lite_origin.consume();

        raw.send(ControlMessage::PublishNamespace(PublishNamespace {
            request_id: 0,
            required_request_id_delta: 0,
            namespace: ns("pnd/ns"),
            parameters: KeyValuePairs::new(),
        }))
        .await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::RequestOk(ref ok) if ok.request_id == 0),
            "{reply:?}"
        );
        loop {
            let next = announced.announced().await.expect("origin open");
            if next.path == Path::new("pnd/ns") {
                assert!(next.broadcast.is_some(), "announced first");
                break;
            }
        }

        raw.send(ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
            namespace: ns("pnd/ns"),
            request_id: 0,
        }))
        .await;
        loop {
            let next = announced.announced().await.expect("origin open");
            if next.path == Path::new("pnd/ns") {
                assert!(next.broadcast.is_none(), "withdrawn");
                break;
            }
        }
        assert!(relay.consume().consume_broadcast("pnd/ns").is_none());
    })
    .await
    .expect("timed out");
}

/// subscribe-before-announce: the subscriber asks first, the publisher
/// announces 500 ms later. Each SUBSCRIBE gets a prompt answer (a clean
/// error while the namespace is unknown, never a hang), and the
/// subscription eventually succeeds and carries the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_subscribe_before_announce() {
    tokio::time::timeout(LIMIT, async {
        let relay = OriginProducer::new();
        let (mut raw, _server, _e1) = raw_pair(D14, relay_config(&relay)).await;
        let pub_origin = OriginProducer::new();
        let publisher = {
            let relay = relay.clone();
            let pub_origin = pub_origin.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let sessions = pair("moqt", &["moq-00"], relay_config(&relay), publish(&pub_origin)).await;
                let broadcast = pub_origin.create_broadcast("late/ns").unwrap();
                let track = broadcast.create_track(Track::new("t"));
                (sessions, broadcast, track)
            })
        };

        let mut id = 0;
        let mut errors = 0;
        let alias = loop {
            raw.send(subscribe_msg(
                id,
                "late/ns",
                "t",
                SubscriptionFilter::LargestObject,
                D14,
            ))
            .await;
            let reply = tokio::time::timeout(Duration::from_secs(5), raw.recv())
                .await
                .expect("SUBSCRIBE answered promptly");
            match reply {
                ControlMessage::SubscribeOk(ok) => {
                    assert_eq!(ok.request_id, id);
                    break ok.track_alias;
                }
                ControlMessage::RequestError(err) => {
                    assert_eq!(err.request_id, id);
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{other:?}"),
            }
            id += 2;
        };
        assert!(errors >= 1, "the first SUBSCRIBE came before the announce");

        let (_sessions, _broadcast, mut track) = publisher.await.unwrap();
        until_consumed(&track, 1).await;
        write_groups(&mut track, 3);
        let groups = read_subgroups(&raw, alias, 3).await;
        for (g, objects) in groups {
            assert_eq!(objects, expected_objects(g, 0), "group {g}");
        }
    })
    .await
    .expect("timed out");
}

/// AbsoluteRange, AbsoluteStart and NextGroupStart honoured from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_filters_from_the_cache() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, mut track) = cached_origin();
        let (mut raw, _server, _e) = raw_pair(D14, relay_config(&origin)).await;

        // AbsoluteRange {0, 1} to group 1: group 0 from object 1, all of
        // group 1, then PUBLISH_DONE.
        let range = SubscriptionFilter::AbsoluteRange {
            start: Location::new(0, 1),
            end_group: 1,
        };
        let alias = subscribe_ok(&mut raw, 0, range).await;
        let mut groups = read_subgroups(&raw, alias, 2).await;
        groups.sort_by_key(|(g, _)| *g);
        assert_eq!(
            groups,
            vec![(0, expected_objects(0, 1)), (1, expected_objects(1, 0))]
        );
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::PublishDone(ref d) if d.request_id == 0),
            "{reply:?}"
        );

        // A range ending before it starts: INVALID_RANGE.
        let bad = SubscriptionFilter::AbsoluteRange {
            start: Location::new(2, 0),
            end_group: 1,
        };
        raw.send(subscribe_msg(2, "cache/x", "t", bad, D14)).await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::RequestError(ref e) if e.request_id == 2
                && e.error_code == 0x5), // draft-14 SUBSCRIBE_ERROR: INVALID_RANGE
            "{reply:?}"
        );

        // AbsoluteStart {1, 2}: group 1 from object 2, then group 2.
        let alias = subscribe_ok(
            &mut raw,
            4,
            SubscriptionFilter::AbsoluteStart(Location::new(1, 2)),
        )
        .await;
        let mut groups = read_subgroups(&raw, alias, 2).await;
        groups.sort_by_key(|(g, _)| *g);
        assert_eq!(
            groups,
            vec![(1, expected_objects(1, 2)), (2, expected_objects(2, 0))]
        );

        // NextGroupStart: nothing cached, the next group (3) only.
        let next = subscribe_ok(&mut raw, 6, SubscriptionFilter::NextGroupStart).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut group = track.create_group(3).unwrap();
        for o in 0..5 {
            group.write_frame(object(3, o)).unwrap();
        }
        group.finish().unwrap();
        let groups = read_subgroups(&raw, next, 1).await;
        assert_eq!(groups, vec![(3, expected_objects(3, 0))]);
    })
    .await
    .expect("timed out");
}

/// An absolute joining FETCH: from group 1 up to the subscription's largest,
/// which lies just before the group the subscription starts on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_joining_fetch() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, _server, _e) = raw_pair(D14, relay_config(&origin)).await;
        subscribe_ok(&mut raw, 0, SubscriptionFilter::LargestObject).await;
        raw.send(ControlMessage::Fetch(Fetch {
            request_id: 2,
            required_request_id_delta: 0,
            subscriber_priority: 0,
            group_order: 0,
            fetch_type: FetchType::AbsoluteJoining {
                joining_request_id: 0,
                joining_start: 1,
            },
            parameters: KeyValuePairs::new(),
        }))
        .await;
        let reply = raw.recv().await;
        let ControlMessage::FetchOk(ok) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(ok.request_id, 2);
        // The subscription delivers the current group (2) whole, so its
        // largest is the end of group 1 and the FETCH overlaps nothing.
        assert_eq!(ok.end_location, Location::new(1, 5));
        let objects = read_fetch(&raw).await;
        let expected: Vec<(u64, u64, Bytes)> = (1..2)
            .flat_map(|g| (0..5).map(move |o| (g, o, object(g, o))))
            .collect();
        assert_eq!(objects, expected);

        // Joining a subscription that does not exist.
        raw.send(ControlMessage::Fetch(Fetch {
            request_id: 4,
            required_request_id_delta: 0,
            subscriber_priority: 0,
            group_order: 0,
            fetch_type: FetchType::AbsoluteJoining {
                joining_request_id: 40,
                joining_start: 0,
            },
            parameters: KeyValuePairs::new(),
        }))
        .await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::FetchError(ref e) if e.request_id == 4),
            "{reply:?}"
        );
    })
    .await
    .expect("timed out");
}

/// TRACK_STATUS: the largest location of a cached track; an error for an
/// unknown one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_status_answered() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, _server, _e) = raw_pair(D14, relay_config(&origin)).await;
        let status = |id: u64, name: &str| {
            ControlMessage::TrackStatus(Subscribe {
                request_id: id,
                namespace: ns("cache/x"),
                name: Bytes::from(name.to_string()),
                forward: true,
                ..Default::default()
            })
        };
        raw.send(status(0, "t")).await;
        let reply = raw.recv().await;
        let ControlMessage::TrackStatusOk(ok) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(ok.request_id, 0);
        assert_eq!(ok.largest, Some(Location::new(2, 4)));
        raw.send(status(2, "nope")).await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::TrackStatusError(ref e) if e.request_id == 2),
            "{reply:?}"
        );
    })
    .await
    .expect("timed out");
}

/// GOAWAY both ways: the server's reaches the client; the client's is
/// taken in stride and the session keeps serving requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_sent_and_received() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, server, _e) = raw_pair(D14, relay_config(&origin)).await;
        server.goaway("moqt://elsewhere/").await.unwrap();
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::GoAway(ref g) if g.uri == "moqt://elsewhere/"),
            "{reply:?}"
        );
        raw.send(ControlMessage::GoAway(GoAway {
            request_id: None,
            uri: String::new(),
            timeout: 0,
        }))
        .await;
        subscribe_ok(&mut raw, 0, SubscriptionFilter::LargestObject).await;

        // An IETF client session receiving GOAWAY stays up too.
        let client_origin = OriginProducer::new();
        let (server, client, _e2) = pair(
            "moqt",
            &["moq-00"],
            relay_config(&origin),
            subscribe(&client_origin),
        )
        .await;
        server.goaway("").await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), client.closed())
                .await
                .is_err(),
            "the client stayed up"
        );
        let mut consumer = subscribe_track(&client_origin, "cache/x", "t").await;
        let group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.sequence(), 2);
    })
    .await
    .expect("timed out");
}

/// OBJECT_DATAGRAMs received become single-frame groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_become_single_frame_groups() {
    tokio::time::timeout(LIMIT, async {
        let origin = OriginProducer::new();
        let (mut raw, _server, _e) = raw_pair(D14, subscribe(&origin)).await;
        raw.send(ControlMessage::PublishNamespace(PublishNamespace {
            request_id: 0,
            required_request_id_delta: 0,
            namespace: ns("dg/pub"),
            parameters: KeyValuePairs::new(),
        }))
        .await;
        assert!(matches!(raw.recv().await, ControlMessage::RequestOk(_)));
        let broadcast = origin.consume().consume_broadcast("dg/pub").expect("published");
        let mut consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();
        accept_subscribe(&mut raw, 9).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let payload = |g: u64| Bytes::from(vec![g as u8 + 1; 100 + g as usize]);
        for g in 0..3 {
            let datagram = ObjectDatagram {
                track_alias: 9,
                group_id: g,
                object_id: 0,
                publisher_priority: Some(0),
                extensions: KeyValuePairs::new(),
                end_of_group: false,
                content: ObjectContent::Payload(payload(g)),
            };
            let mut buf = BytesMut::new();
            datagram.encode(D14, &mut buf).unwrap();
            web_transport_trait::Session::send_datagram(&raw.session, buf.freeze()).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let groups = read_groups(&mut consumer, 3).await;
        for g in 0..3 {
            assert_eq!(groups[&g], vec![payload(g)], "group {g}");
        }
    })
    .await
    .expect("timed out");
}

/// Our IETF subscriber (draft-16 client) sends SUBSCRIBE_NAMESPACE for the
/// root on its own stream, and discovers a peer that announces only in
/// answer to one (NAMESPACE), then sees NAMESPACE_DONE withdraw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_discovers_namespaces_with_subscribe_namespace() {
    use moq_transport_compat::control::{
        Decoded, Namespace, NamespaceDone, RequestOk, ServerSetup, SetupParameter,
    };
    use moq_transport_compat::ietf::stream::{Reader, Writer};
    let draft = Draft::D16;
    tokio::time::timeout(LIMIT, async {
        let srv = server(&["moqt-16"]);
        let cli = client(&srv, &["moqt-16"]);
        let (s, c) = transports(&srv, &cli, "moqt").await;
        let client_origin = OriginProducer::new();
        let raw_server = async {
            let (send, recv) = web_transport_trait::Session::accept_bi(&s).await.unwrap();
            let (mut w, mut r) = (Writer::new(send), Reader::new(recv));
            let setup = r
                .decode_required(|b| ControlMessage::decode(b, draft))
                .await
                .unwrap();
            assert!(matches!(setup, Decoded::Message(ControlMessage::ClientSetup(_))));
            let mut parameters = KeyValuePairs::new();
            parameters.set_int(SetupParameter::MaxRequestId.code(), 100);
            let reply = ControlMessage::ServerSetup(ServerSetup {
                version: 0,
                parameters,
            });
            w.encode(|b| reply.encode(draft, b)).await.unwrap();
            (w, r)
        };
        let (mut control, session) = tokio::join!(
            raw_server,
            moq_transport_compat::connect(c, subscribe(&client_origin))
        );
        let _session = session.unwrap();

        // The SUBSCRIBE_NAMESPACE stream.
        let (send, recv) = web_transport_trait::Session::accept_bi(&s).await.unwrap();
        let (mut w, mut r) = (Writer::new(send), Reader::new(recv));
        let msg = r
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .unwrap();
        let Decoded::Message(ControlMessage::SubscribeNamespace(sn)) = msg else {
            panic!("{msg:?}")
        };
        assert!(sn.prefix.0.is_empty(), "root prefix");
        assert_eq!(sn.request_id, 0);
        let mut announced = client_origin.consume();
        for msg in [
            ControlMessage::RequestOk(RequestOk {
                track_properties: Default::default(),
                request_id: 0,
                parameters: KeyValuePairs::new(),
            }),
            ControlMessage::Namespace(Namespace {
                suffix: ns("found/it"),
            }),
        ] {
            w.encode(|b| msg.encode(draft, b)).await.unwrap();
        }
        let broadcast = loop {
            let next = announced.announced().await.unwrap();
            if next.path == Path::new("found/it") {
                break next.broadcast.expect("announced");
            }
        };

        // A track of it is subscribed on the control stream.
        let _consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();
        let sub = loop {
            let msg = control
                .1
                .decode_required(|b| ControlMessage::decode(b, draft))
                .await
                .unwrap();
            if let Decoded::Message(ControlMessage::Subscribe(sub)) = msg {
                break sub;
            }
        };
        assert_eq!(sub.namespace, ns("found/it"));
        assert_eq!(&sub.name[..], b"t");

        let done = ControlMessage::NamespaceDone(NamespaceDone {
            suffix: ns("found/it"),
        });
        w.encode(|b| done.encode(draft, b)).await.unwrap();
        loop {
            let next = announced.announced().await.unwrap();
            if next.path == Path::new("found/it") {
                assert!(next.broadcast.is_none(), "withdrawn");
                break;
            }
        }
    })
    .await
    .expect("timed out");
}

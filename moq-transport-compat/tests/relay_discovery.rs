//! What an IETF peer of a relay-like session learns, and keeps, when it
//! did not subscribe first: tracks pushed with PUBLISH stay for later
//! subscribers, SUBSCRIBE_NAMESPACE hears of a namespace equal to its prefix,
//! and a namespace it asked about is not also pushed as PUBLISH_NAMESPACE.
//! These are the cases an independent conformance client (aiomoqt's
//! `publish-track-subscribe`, `subscribe-namespace-lifecycle`) failed on.

mod common;

use bytes::Bytes;
use common::*;
use moq_lite::model::{OriginProducer, Path, Track};
use moq_transport_compat::control::{ControlMessage, Decoded, Publish, SubscribeNamespace, SubscribeOptions};
use moq_transport_compat::ietf::stream::{Reader, Writer};
use moq_transport_compat::{Draft, KeyValuePairs, SubscriptionFilter, TrackNamespace};

fn ns(path: &str) -> TrackNamespace {
    TrackNamespace::from_path(&Path::new(path)).unwrap()
}

/// The next control message, whatever it is (`Raw::recv` skips
/// PUBLISH_NAMESPACE, which these tests must see).
async fn next_control(raw: &mut Raw) -> ControlMessage {
    let draft = raw.draft;
    match raw
        .reader
        .decode_required(|b| ControlMessage::decode(b, draft))
        .await
        .unwrap()
    {
        Decoded::Message(ControlMessage::MaxRequestId(_)) => Box::pin(next_control(raw)).await,
        Decoded::Message(msg) => msg,
        Decoded::Unknown { message_type, .. } => panic!("unknown message {message_type:#x}"),
    }
}

/// publish-track-subscribe: a track pushed with PUBLISH before anyone
/// subscribes is kept (not unsubscribed for want of consumers), and a
/// subscriber who comes later receives its objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_track_waits_for_later_subscribers() {
    for draft in [Draft::D14, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let relay = OriginProducer::new();
            let (mut raw, _server, _endpoints) = raw_pair(draft, relay_config(&relay)).await;
            let mut parameters = KeyValuePairs::new();
            if draft > Draft::D14 {
                parameters.set_int(moq_transport_compat::control::MessageParameter::Forward.code(), 1);
            }
            raw.send(ControlMessage::Publish(Publish {
                request_id: 0,
                required_request_id_delta: 0,
                namespace: ns("pushed/x"),
                name: Bytes::from_static(b"t"),
                track_alias: 7,
                group_order: 1,
                largest: None,
                forward: true,
                parameters,
                track_extensions: KeyValuePairs::new(),
            }))
            .await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::PublishOk(_)),
                "{draft:?}: {reply:?}"
            );

            // Nobody consumes the track yet: the session must not give it
            // up. A request sent now is answered before anything the
            // session would have sent on its own after PUBLISH_OK.
            raw.send(subscribe_msg(
                2,
                "no/such",
                "t",
                SubscriptionFilter::LargestObject,
                draft,
            ))
            .await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::RequestError(_)),
                "{draft:?}: the pushed track was given up: {reply:?}"
            );

            write_subgroup(&raw, 7, 0, 3).await;
            let broadcast = relay.consume().consume_broadcast("pushed/x").expect("published");
            let mut consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();
            let groups = read_groups(&mut consumer, 1).await;
            assert_eq!(
                groups[&0],
                (0..3).map(|o| object(0, o)).collect::<Vec<_>>(),
                "{draft:?}"
            );
        })
        .await
        .expect("timed out");
    }
}

/// subscribe-namespace-lifecycle (draft-16): a namespace equal to the
/// SUBSCRIBE_NAMESPACE prefix is reported as NAMESPACE with an empty suffix,
/// then NAMESPACE_DONE; the peer is not also sent PUBLISH_NAMESPACE for it
/// on the control stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_namespace_hears_its_own_prefix_and_nothing_twice() {
    let draft = Draft::D16;
    tokio::time::timeout(LIMIT, async {
        let relay = OriginProducer::new();
        let (mut raw, _server, _endpoints) = raw_pair(draft, relay_config(&relay)).await;
        let (send, recv) = web_transport_trait::Session::open_bi(&raw.session).await.unwrap();
        let (mut w, mut r) = (Writer::new(send), Reader::new(recv));
        let sn = ControlMessage::SubscribeNamespace(SubscribeNamespace {
            request_id: 0,
            required_request_id_delta: 0,
            prefix: ns("room/a"),
            subscribe_options: SubscribeOptions::Namespace,
            parameters: KeyValuePairs::new(),
        });
        w.encode(|b| sn.encode(draft, b)).await.unwrap();
        let mut read = async || match r
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .unwrap()
        {
            Decoded::Message(msg) => msg,
            other => panic!("{other:?}"),
        };
        assert!(matches!(read().await, ControlMessage::RequestOk(_)));

        let broadcast = relay.create_broadcast("room/a").unwrap();
        let ControlMessage::Namespace(found) = read().await else {
            panic!("expected NAMESPACE")
        };
        assert!(found.suffix.0.is_empty(), "empty suffix: {:?}", found.suffix);

        // The control stream carries no PUBLISH_NAMESPACE for it: the reply
        // to a request sent now is the next thing there.
        raw.send(subscribe_msg(
            2,
            "no/such",
            "t",
            SubscriptionFilter::LargestObject,
            draft,
        ))
        .await;
        let next = next_control(&mut raw).await;
        assert!(
            matches!(next, ControlMessage::RequestError(_)),
            "expected only the reply, got {next:?}"
        );

        drop(broadcast);
        let ControlMessage::NamespaceDone(gone) = read().await else {
            panic!("expected NAMESPACE_DONE")
        };
        assert!(gone.suffix.0.is_empty());
    })
    .await
    .expect("timed out");
}

/// data-subgroup-basic: a SUBSCRIBE whose namespace only starts with a
/// published one goes to that publisher with its whole namespace
/// (Namespace Prefix Matching), and its objects come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_routed_to_the_publisher_of_a_prefix() {
    use moq_transport_compat::control::PublishNamespace;
    for draft in [Draft::D14, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let relay = OriginProducer::new();
            let (mut publisher, _s1, _e1) = raw_pair(draft, relay_config(&relay)).await;
            let (mut subscriber, _s2, _e2) = raw_pair(draft, relay_config(&relay)).await;
            publisher
                .send(ControlMessage::PublishNamespace(PublishNamespace {
                    request_id: 0,
                    required_request_id_delta: 0,
                    namespace: ns("pre/fix"),
                    parameters: KeyValuePairs::new(),
                }))
                .await;
            assert!(matches!(publisher.recv().await, ControlMessage::RequestOk(_)));

            subscriber
                .send(subscribe_msg(
                    0,
                    "pre/fix/case/1",
                    "track",
                    SubscriptionFilter::LargestObject,
                    draft,
                ))
                .await;
            let upstream = accept_subscribe(&mut publisher, 9).await;
            assert_eq!(upstream.namespace, ns("pre/fix/case/1"), "{draft:?}");
            assert_eq!(&upstream.name[..], b"track");
            let ControlMessage::SubscribeOk(ok) = subscriber.recv().await else {
                panic!("{draft:?}: expected SUBSCRIBE_OK")
            };

            write_subgroup(&publisher, 9, 0, 3).await;
            let groups = read_subgroups(&subscriber, ok.track_alias, 1).await;
            assert_eq!(groups[0].0, 0);
            assert_eq!(groups[0].1, expected_objects(0, 0)[..3].to_vec(), "{draft:?}");
        })
        .await
        .expect("timed out");
    }
}

/// namespace-discovery: a namespace subscriber is offered each track
/// published under its prefix with PUBLISH (drafts 14 and 15 on the control
/// stream, draft-16 with Subscribe Options PUBLISH), and after PUBLISH_OK
/// receives its objects under the alias the PUBLISH chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_subscribers_are_pushed_each_track() {
    use moq_transport_compat::control::{PublishOk, UnsubscribeNamespace};
    for draft in [Draft::D14, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let relay = OriginProducer::new();
            let broadcast = relay.create_broadcast("live/show").unwrap();
            let mut track = broadcast.create_track(Track::new("video"));
            // Made for a request, not offered: never pushed.
            let _requests = broadcast.requests();
            let _asked = broadcast.consume().subscribe_track(&Track::new("asked")).unwrap();
            let (mut raw, _server, _endpoints) = raw_pair(draft, relay_config(&relay)).await;

            let request = SubscribeNamespace {
                request_id: 0,
                required_request_id_delta: 0,
                prefix: ns("live"),
                subscribe_options: SubscribeOptions::Publish,
                parameters: KeyValuePairs::new(),
            };
            // Draft-16 puts it on its own stream, which must stay open.
            let _stream = match draft {
                Draft::D16 => {
                    let (send, recv) = web_transport_trait::Session::open_bi(&raw.session).await.unwrap();
                    let (mut w, mut r) = (Writer::new(send), Reader::new(recv));
                    let msg = ControlMessage::SubscribeNamespace(request);
                    w.encode(|b| msg.encode(draft, b)).await.unwrap();
                    let ok = r
                        .decode_required(|b| ControlMessage::decode(b, draft))
                        .await
                        .unwrap();
                    assert!(
                        matches!(ok, Decoded::Message(ControlMessage::RequestOk(_))),
                        "{ok:?}"
                    );
                    Some((w, r))
                }
                _ => {
                    raw.send(ControlMessage::SubscribeNamespace(request)).await;
                    None
                }
            };
            let publish = loop {
                match raw.recv().await {
                    ControlMessage::Publish(publish) => break publish,
                    ControlMessage::SubscribeNamespaceOk(_) => {}
                    other => panic!("{draft:?}: expected PUBLISH, got {other:?}"),
                }
            };
            assert_eq!(publish.namespace, ns("live/show"), "{draft:?}");
            assert_eq!(&publish.name[..], b"video");
            raw.send(ControlMessage::PublishOk(PublishOk {
                request_id: publish.request_id,
                forward: true,
                subscriber_priority: 0,
                group_order: 1,
                filter: SubscriptionFilter::LargestObject,
                parameters: KeyValuePairs::new(),
            }))
            .await;

            // Once the relay serves it, a group written now reaches us.
            while track.is_unused() {
                tokio::task::yield_now().await;
            }
            write_groups(&mut track, 1);
            let groups = read_subgroups(&raw, publish.track_alias, 1).await;
            assert_eq!(groups[0].1, expected_objects(0, 0), "{draft:?}");

            // Draft-14: UNSUBSCRIBE_NAMESPACE stops the offers; a track
            // created after it (once the reply to a probe request shows
            // the relay read it) is not pushed: the reply to a second probe
            // is the next control message.
            if draft == Draft::D14 {
                raw.send(ControlMessage::UnsubscribeNamespace(UnsubscribeNamespace {
                    prefix: ns("live"),
                    request_id: 0,
                }))
                .await;
                let mut later = None;
                for (id, name) in [(2, "first"), (4, "second")] {
                    raw.send(subscribe_msg(
                        id,
                        "no/such",
                        "t",
                        SubscriptionFilter::LargestObject,
                        draft,
                    ))
                    .await;
                    let next = raw.recv().await;
                    assert!(
                        matches!(next, ControlMessage::RequestError(_)),
                        "{name} probe: {next:?}"
                    );
                    if id == 2 {
                        later = Some(broadcast.create_track(Track::new("later")));
                    }
                }
                // Live all along, so a pusher still running would have offered it.
                drop(later);
            }
        })
        .await
        .expect("timed out");
    }
}

/// Drafts 14 and 15: each SUBSCRIBE_NAMESPACE costs a task watching the
/// origin, so a session may hold a bounded number; past it they are refused
/// and the session stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_subscriptions_are_bounded() {
    let draft = Draft::D14;
    tokio::time::timeout(LIMIT, async {
        let relay = OriginProducer::new();
        let (mut raw, server, _endpoints) = raw_pair(draft, relay_config(&relay)).await;
        let mut refused = 0;
        for i in 0..80u64 {
            raw.send(ControlMessage::SubscribeNamespace(SubscribeNamespace {
                request_id: 2 * i,
                required_request_id_delta: 0,
                prefix: ns(&format!("p{i}")),
                subscribe_options: SubscribeOptions::Publish,
                parameters: KeyValuePairs::new(),
            }))
            .await;
            match raw.recv().await {
                ControlMessage::SubscribeNamespaceOk(_) => assert_eq!(refused, 0, "an OK after a refusal"),
                ControlMessage::SubscribeNamespaceError(_) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 80 - 64);
        server_stays_up(&server).await;
    })
    .await
    .expect("timed out");
}

//! Drafts 18 to 22 on the wire against a raw client: what each changed that
//! a relay must do (FETCH by LOCATION_FILTER with an inclusive end, fills,
//! RENDEZVOUS_TIMEOUT, SUBSCRIBE_TRACKS, range filters refused, a FIN that no
//! longer cancels).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use moq_lite::model::Track;
use moq_transport_compat::Draft::{self, *};
use moq_transport_compat::common::{Location, SubscriptionFilter};
use moq_transport_compat::control::{
    ControlMessage, Fetch, FetchType, MessageParameter, Parameters, SubscribeNamespace, SubscribeOptions,
    set_filter,
};

const LIMIT: Duration = Duration::from_secs(20);

fn fetch(request_id: u64, draft: Draft, range: SubscriptionFilter) -> ControlMessage {
    let mut parameters = Parameters::new();
    set_filter(&mut parameters, range, draft).unwrap();
    ControlMessage::Fetch(Fetch {
        request_id,
        fetch_type: FetchType::Filtered {
            namespace: ns("cache/x"),
            name: Bytes::from_static(b"t"),
        },
        parameters,
        ..Default::default()
    })
}

/// Draft-20 FETCH: the range is LOCATION_FILTER ({1, 2} ..= {2, 1} here),
/// FETCH_OK's End Location is the last object, inclusive; a range after the
/// largest object is INVALID_RANGE.
#[tokio::test]
async fn fetch_by_location_filter() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D20, D22] {
            let (origin, _broadcast, _track) = cached_origin();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let range = SubscriptionFilter::AbsoluteEnd {
                start: Location::new(1, 2),
                end: Location::new(2, 1),
            };
            let mut stream = raw.request(fetch(0, draft, range)).await;
            let Some(ControlMessage::FetchOk(ok)) = recv_at(&mut stream, draft).await else {
                panic!("no FETCH_OK in {draft}")
            };
            assert_eq!(ok.end_location, Location::new(2, 1), "{draft}");
            assert!(ok.parameters.is_empty(), "{draft}: FETCH_OK has no parameters");
            let (id, objects) = read_fetch_at(&raw.session, draft).await;
            assert_eq!(id, 0);
            let want: Vec<_> = [(1, 2), (1, 3), (1, 4), (2, 0), (2, 1)]
                .into_iter()
                .map(|(g, o)| (g, o, object(g, o)))
                .collect();
            assert_eq!(objects, want, "{draft}");
            // Groups 0..=2 of 5 objects exist: {3, 0} is after the largest.
            let late = SubscriptionFilter::AbsoluteStart(Location::new(3, 0));
            let mut stream = raw.request(fetch(2, draft, late)).await;
            let Some(ControlMessage::RequestError(err)) = recv_at(&mut stream, draft).await else {
                panic!("no REQUEST_ERROR in {draft}")
            };
            assert_eq!(err.error_code, 0x11, "INVALID_RANGE in {draft}");
        }
    })
    .await
    .expect("timed out");
}

/// Draft-20 "Fill Semantics": a SUBSCRIBE for the next object with
/// FILL_PARAMETERS { LOCATION_FILTER: two groups back } gets groups 1 and 2
/// from the cache on a fetch stream under the SUBSCRIBE's Request ID.
#[tokio::test]
async fn a_subscribe_with_fill_parameters_gets_its_fill() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D20, D22] {
            let (origin, _broadcast, _track) = cached_origin();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let mut fill = Parameters::new();
            set_filter(&mut fill, SubscriptionFilter::RelativeStart(2), draft).unwrap();
            let mut fill_bytes = Vec::new();
            moq_transport_compat::control::encode_parameters(&fill, draft, &mut fill_bytes).unwrap();
            let ControlMessage::Subscribe(mut subscribe) =
                subscribe_msg(0, "cache/x", "t", SubscriptionFilter::LargestObject, draft)
            else {
                unreachable!()
            };
            subscribe
                .parameters
                .set_bytes(MessageParameter::FillParameters.code(), Bytes::from(fill_bytes));
            let mut stream = raw.request(ControlMessage::Subscribe(subscribe)).await;
            let Some(ControlMessage::SubscribeOk(_)) = recv_at(&mut stream, draft).await else {
                panic!("no SUBSCRIBE_OK in {draft}")
            };
            let (id, objects) = read_fetch_at(&raw.session, draft).await;
            assert_eq!(id, 0, "the fill names the SUBSCRIBE");
            let want: Vec<_> = (1..3)
                .flat_map(|g| (0..5).map(move |o| (g, o, object(g, o))))
                .collect();
            assert_eq!(objects, want, "{draft}");
        }
    })
    .await
    .expect("timed out");
}

/// Draft-18 RENDEZVOUS_TIMEOUT: a SUBSCRIBE for a track nobody publishes
/// waits, then fails with TIMEOUT (0x2); one whose publisher comes within
/// the time is answered with SUBSCRIBE_OK.
#[tokio::test]
async fn rendezvous_timeout_waits_for_a_publisher() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D22] {
            let origin = moq_lite::model::OriginProducer::new();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let waiting = |id, path: &str, ms| {
                let ControlMessage::Subscribe(mut m) =
                    subscribe_msg(id, path, "t", SubscriptionFilter::LargestObject, draft)
                else {
                    unreachable!()
                };
                m.parameters
                    .set_int(MessageParameter::RENDEZVOUS_TIMEOUT.code(), ms);
                ControlMessage::Subscribe(m)
            };
            let mut nobody = raw.request(waiting(0, "nobody/x", 50)).await;
            let Some(ControlMessage::RequestError(err)) = recv_at(&mut nobody, draft).await else {
                panic!("no REQUEST_ERROR in {draft}")
            };
            assert_eq!(err.error_code, 0x2, "TIMEOUT in {draft}");
            // Long enough never to run out: the publisher comes first.
            let mut later = raw.request(waiting(2, "later/x", 15_000)).await;
            let broadcast = origin.create_broadcast("later/x").unwrap();
            let _track = broadcast.create_track(Track::new("t"));
            let reply = recv_at(&mut later, draft).await;
            assert!(
                matches!(reply, Some(ControlMessage::SubscribeOk(_))),
                "{draft}: {reply:?}"
            );
        }
    })
    .await
    .expect("timed out");
}

/// Draft-18 SUBSCRIBE_TRACKS (0x51): after REQUEST_OK, each track under the
/// prefix comes as a PUBLISH on a stream of its own, and once accepted (a
/// REQUEST_OK) its groups follow under the PUBLISH's alias.
#[tokio::test]
async fn subscribe_tracks_pushes_each_track() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D20, D22] {
            let (origin, _broadcast, _track) = cached_origin();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let mut tracks = raw
                .request(ControlMessage::SubscribeNamespace(SubscribeNamespace {
                    request_id: 0,
                    prefix: ns("cache"),
                    subscribe_options: SubscribeOptions::Publish,
                    ..Default::default()
                }))
                .await;
            let Some(ControlMessage::RequestOk(_)) = recv_at(&mut tracks, draft).await else {
                panic!("no REQUEST_OK in {draft}")
            };
            let (mut pushed, publish, _others) = accept_publish_at(&raw.session, draft).await;
            assert_eq!(publish.namespace, ns("cache/x"), "{draft}");
            assert_eq!(&publish.name[..], b"t", "{draft}");
            send_at(&mut pushed, ControlMessage::RequestOk(Default::default()), draft).await;
            let alias = read_subgroup_alias_at(&raw.session, draft).await;
            assert_eq!(alias, publish.track_alias, "{draft}");
        }
    })
    .await
    .expect("timed out");
}

/// Draft-19 range filters: we declare no MAX_FILTER_RANGES, so a SUBSCRIBE
/// or FETCH with a range is refused with INVALID_FILTER (0x36), and the
/// session goes on.
#[tokio::test]
async fn range_filters_are_refused_per_request() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D19, D20, D22] {
            let (origin, _broadcast, _track) = cached_origin();
            let (raw, server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let ControlMessage::Subscribe(mut m) =
                subscribe_msg(0, "cache/x", "t", SubscriptionFilter::LargestObject, draft)
            else {
                unreachable!()
            };
            // OBJECTID_FILTER, set 0, objects 3 to 5.
            m.parameters.set_bytes(
                MessageParameter::ObjectIdFilter.code(),
                Bytes::from_static(&[0x00, 0x03, 0x02]),
            );
            let mut stream = raw.request(ControlMessage::Subscribe(m)).await;
            let Some(ControlMessage::RequestError(err)) = recv_at(&mut stream, draft).await else {
                panic!("no REQUEST_ERROR in {draft}")
            };
            assert_eq!(err.error_code, 0x36, "INVALID_FILTER in {draft}");
            server_stays_up(&server).await;
        }
    })
    .await
    .expect("timed out");
}

/// Draft-19 "Graceful Request Stream Closure": a FIN after SUBSCRIBE_NAMESPACE
/// is not a cancel, so a namespace published later is still reported; in
/// draft-18 the FIN ends the subscription.
#[tokio::test]
async fn a_fin_cancels_a_namespace_subscription_only_before_19() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D19, D22] {
            let origin = moq_lite::model::OriginProducer::new();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let mut stream = raw
                .request(ControlMessage::SubscribeNamespace(SubscribeNamespace {
                    request_id: 0,
                    prefix: ns("room"),
                    subscribe_options: SubscribeOptions::Namespace,
                    ..Default::default()
                }))
                .await;
            let Some(ControlMessage::RequestOk(_)) = recv_at(&mut stream, draft).await else {
                panic!("no REQUEST_OK in {draft}")
            };
            stream.0.finish().unwrap();
            let _broadcast = origin.create_broadcast("room/a").unwrap();
            match draft.fin_cancels() {
                // The stream ends (a NAMESPACE may still come first: the
                // broadcast and the FIN race at the server).
                true => loop {
                    match recv_at(&mut stream, draft).await {
                        None => break,
                        Some(ControlMessage::Namespace(_)) => {}
                        other => panic!("{draft}: {other:?}"),
                    }
                },
                false => {
                    let next = recv_at(&mut stream, draft).await;
                    assert!(
                        matches!(next, Some(ControlMessage::Namespace(_))),
                        "{draft}: {next:?}"
                    );
                }
            }
        }
    })
    .await
    .expect("timed out");
}

/// A FETCH of a track this side holds nothing of yet (a relay that never
/// subscribed to it) asks upstream from the FETCH's start and answers once
/// the range arrived, where it answered INVALID_RANGE at once before. The
/// "upstream" here is the broadcast's request handler, holding groups 0 to 5.
#[tokio::test]
async fn a_fetch_of_a_track_not_held_yet_is_asked_upstream() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D20, D22] {
            let origin = moq_lite::model::OriginProducer::new();
            let broadcast = origin.create_broadcast("cold/x").unwrap();
            let mut requests = broadcast.requests();
            let upstream = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Some(mut track) = requests.requested_track().await {
                    // Without a start, an upstream sends its live edge only.
                    for g in track.requested_start().unwrap_or(5)..6 {
                        let mut group = track.create_group(g).unwrap();
                        for o in 0..5 {
                            group.write_frame(object(g, o)).unwrap();
                        }
                        group.finish().unwrap();
                    }
                    held.push(track);
                }
            });
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let request = match draft.filtered_fetch() {
                true => {
                    let range = SubscriptionFilter::AbsoluteRange {
                        start: Location::new(1, 0),
                        end_group: 3,
                    };
                    let ControlMessage::Fetch(mut m) = fetch(0, draft, range) else {
                        unreachable!()
                    };
                    m.fetch_type = FetchType::Filtered {
                        namespace: ns("cold/x"),
                        name: Bytes::from_static(b"t"),
                    };
                    ControlMessage::Fetch(m)
                }
                false => ControlMessage::Fetch(Fetch {
                    request_id: 0,
                    fetch_type: FetchType::Standalone {
                        namespace: ns("cold/x"),
                        name: Bytes::from_static(b"t"),
                        start: Location::new(1, 0),
                        end: Location::new(3, 0),
                    },
                    ..Default::default()
                }),
            };
            let mut stream = raw.request(request).await;
            let reply = recv_at(&mut stream, draft).await;
            assert!(
                matches!(reply, Some(ControlMessage::FetchOk(_))),
                "{draft}: {reply:?}"
            );
            let (_, objects) = read_fetch_at(&raw.session, draft).await;
            let want: Vec<_> = (1..4)
                .flat_map(|g| (0..5).map(move |o| (g, o, object(g, o))))
                .collect();
            assert_eq!(objects, want, "{draft}");
            upstream.abort();
        }
    })
    .await
    .expect("timed out");
}

/// The SUBSCRIBEs of one peer waiting for a publisher are bounded (each
/// holds a task and a watch on the origin): past 64 at once, one is
/// answered DOES_NOT_EXIST at once, as a relay "MAY use a shorter timeout".
#[tokio::test]
async fn waiting_subscribes_are_bounded() {
    tokio::time::timeout(LIMIT, async {
        let draft = D20;
        let origin = moq_lite::model::OriginProducer::new();
        let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
        let mut streams = Vec::new();
        for i in 0..65u64 {
            let ControlMessage::Subscribe(mut m) = subscribe_msg(
                2 * i,
                &format!("nobody/{i}"),
                "t",
                SubscriptionFilter::LargestObject,
                draft,
            ) else {
                unreachable!()
            };
            m.parameters
                .set_int(MessageParameter::RENDEZVOUS_TIMEOUT.code(), 15_000);
            streams.push(raw.request(ControlMessage::Subscribe(m)).await);
        }
        let replies = streams.iter_mut().map(|s| Box::pin(recv_at(s, draft)));
        let (first, _, _) = futures::future::select_all(replies).await;
        let Some(ControlMessage::RequestError(err)) = first else {
            panic!("{first:?}")
        };
        assert_eq!(err.error_code, 0x10, "DOES_NOT_EXIST");
    })
    .await
    .expect("timed out");
}

/// The FETCHes one peer has in flight are bounded (each may wait for its
/// range to come from upstream): past 64 at once, one is refused at once.
#[tokio::test]
async fn fetches_in_flight_are_bounded() {
    tokio::time::timeout(LIMIT, async {
        let draft = D18;
        let origin = moq_lite::model::OriginProducer::new();
        let broadcast = origin.create_broadcast("slow/x").unwrap();
        let mut requests = broadcast.requests();
        // An upstream that takes the request and never sends a group.
        let upstream = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(track) = requests.requested_track().await {
                held.push(track);
            }
        });
        let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
        let mut streams = Vec::new();
        for i in 0..65u64 {
            let request = ControlMessage::Fetch(Fetch {
                request_id: 2 * i,
                fetch_type: FetchType::Standalone {
                    namespace: ns("slow/x"),
                    name: Bytes::from(format!("t{i}")),
                    start: Location::new(1, 0),
                    end: Location::new(3, 0),
                },
                ..Default::default()
            });
            streams.push(raw.request(request).await);
        }
        let replies = streams.iter_mut().map(|s| Box::pin(recv_at(s, draft)));
        // Each request has its own stream, handled in any order: whichever
        // comes 65th is refused, long before the others' 2 s wait ends.
        let (first, _, _) = futures::future::select_all(replies).await;
        let Some(ControlMessage::RequestError(err)) = first else {
            panic!("{first:?}")
        };
        assert_eq!(err.error_code, 0x0, "INTERNAL_ERROR");
        assert_eq!(err.reason, "too many FETCHes in flight");
        upstream.abort();
    })
    .await
    .expect("timed out");
}

/// Draft-18 "Mandatory Track Properties" (0x4000-0x7FFF): we know none, so
/// a PUBLISH carrying one is refused with UNSUPPORTED_EXTENSION and the
/// track never reaches the origin; other unknown properties are fine.
#[tokio::test]
async fn a_publish_with_an_unknown_mandatory_property_is_refused() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D20, D22] {
            let origin = moq_lite::model::OriginProducer::new();
            let (raw, _server, _keep) = raw17_pair_at(subscribe(&origin), draft).await;
            let publish = |id: u64, name: &'static str, property: u64| {
                let mut track_extensions = moq_transport_compat::KeyValuePairs::new();
                track_extensions.set_int(property, 1);
                ControlMessage::Publish(moq_transport_compat::control::Publish {
                    request_id: id,
                    namespace: ns("props"),
                    name: Bytes::from_static(name.as_bytes()),
                    track_alias: id + 1,
                    track_extensions,
                    ..Default::default()
                })
            };
            let mut refused = raw.request(publish(0, "mandatory", 0x4000)).await;
            let reply = recv_at(&mut refused, draft).await;
            let Some(ControlMessage::RequestError(err)) = reply else {
                panic!("{draft}: {reply:?}")
            };
            assert_eq!(err.error_code, 0x33, "{draft}: UNSUPPORTED_EXTENSION");
            let mut taken = raw.request(publish(2, "optional", 0x3FFE)).await;
            let reply = recv_at(&mut taken, draft).await;
            assert!(
                matches!(
                    reply,
                    Some(ControlMessage::RequestOk(_) | ControlMessage::PublishOk(_))
                ),
                "{draft}: {reply:?}"
            );
        }
    })
    .await
    .expect("timed out");
}

/// Draft-18 TRACK_NAMESPACE_PREFIX in a REQUEST_UPDATE of a namespace
/// subscription: the prefix is replaced, and what follows (the namespaces
/// under the new prefix) is relative to it.
#[tokio::test]
async fn a_namespace_subscription_can_be_re_rooted() {
    tokio::time::timeout(LIMIT, async {
        for draft in [D18, D20, D22] {
            let origin = moq_lite::model::OriginProducer::new();
            let _x = origin.create_broadcast("a/x").unwrap();
            let _y = origin.create_broadcast("b/y").unwrap();
            let (raw, _server, _keep) = raw17_pair_at(publish(&origin), draft).await;
            let mut stream = raw
                .request(ControlMessage::SubscribeNamespace(SubscribeNamespace {
                    request_id: 0,
                    prefix: ns("a"),
                    subscribe_options: SubscribeOptions::Namespace,
                    ..Default::default()
                }))
                .await;
            let Some(ControlMessage::RequestOk(_)) = recv_at(&mut stream, draft).await else {
                panic!("no REQUEST_OK in {draft}")
            };
            let next = recv_at(&mut stream, draft).await;
            let Some(ControlMessage::Namespace(first)) = next else {
                panic!("{draft}: {next:?}")
            };
            assert_eq!(first.suffix, ns("x"), "{draft}");

            let mut prefix = bytes::BytesMut::new();
            ns("b")
                .encode(
                    draft,
                    moq_transport_compat::namespace::NamespaceRole::Prefix,
                    &mut prefix,
                )
                .unwrap();
            let mut parameters = Parameters::new();
            parameters.set_bytes(MessageParameter::TrackNamespacePrefix.code(), prefix.freeze());
            let update = ControlMessage::RequestUpdate(moq_transport_compat::control::RequestUpdate {
                request_id: 2,
                parameters,
                ..Default::default()
            });
            send_at(&mut stream, update, draft).await;
            let ack = recv_at(&mut stream, draft).await;
            assert!(
                matches!(ack, Some(ControlMessage::RequestOk(_))),
                "{draft}: {ack:?}"
            );
            let next = recv_at(&mut stream, draft).await;
            let Some(ControlMessage::Namespace(second)) = next else {
                panic!("{draft}: {next:?}")
            };
            assert_eq!(second.suffix, ns("y"), "{draft}");
        }
    })
    .await
    .expect("timed out");
}

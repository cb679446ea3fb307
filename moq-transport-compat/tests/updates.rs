//! Subscription updates, request ordering, forwarding, group order and
//! FETCH edge cases against our server, spoken by raw draft 14 to 16
//! clients. Every expectation is a sentence of the draft texts (quoted).

mod common;

use std::time::Duration;

use common::*;
use moq_transport_compat::control::{
    ControlMessage, Fetch, FetchType, MessageParameter, RequestUpdate, location, set_filter,
};
use moq_transport_compat::ietf::{DoneCode, SessionCode};
use moq_transport_compat::{Draft, KeyValuePairs, Location, SubscriptionFilter};

/// SUBSCRIBE (LargestObject) for "cache/x" "t"; returns the track alias.
async fn subscribe(raw: &mut Raw, id: u64) -> u64 {
    raw.send(subscribe_msg(
        id,
        "cache/x",
        "t",
        SubscriptionFilter::LargestObject,
        raw.draft,
    ))
    .await;
    match raw.recv().await {
        ControlMessage::SubscribeOk(ok) if ok.request_id == id => ok.track_alias,
        other => panic!("{other:?}"),
    }
}

fn update(request_id: u64, existing: u64, draft: Draft, filter: SubscriptionFilter) -> ControlMessage {
    let mut m = RequestUpdate {
        request_id,
        existing_request_id: existing,
        forward: true,
        ..Default::default()
    };
    match (draft, filter) {
        (Draft::D14, SubscriptionFilter::AbsoluteRange { start, end_group }) => {
            (m.start, m.end_group) = (start, Some(end_group))
        }
        (Draft::D14, SubscriptionFilter::AbsoluteStart(start)) => m.start = start,
        (Draft::D14, _) => {}
        _ => set_filter(&mut m.parameters, filter, draft).unwrap(),
    }
    ControlMessage::RequestUpdate(m)
}

/// Draft-14: "Subscription Request ID: The Request ID of the SUBSCRIBE ...
/// this message is updating", and the update has a Request ID of its own
/// ("increments by 2 with each FETCH, SUBSCRIBE, SUBSCRIBE_UPDATE ...").
/// Narrowing the end is applied with no reply ("There is no control message
/// in response to a SUBSCRIBE_UPDATE"); widening it closes the session
/// ("The Start Location MUST NOT decrease and the End Group MUST NOT
/// increase ... PROTOCOL_VIOLATION").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft14_subscribe_update_narrows_by_subscription_request_id() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, mut track) = cached_origin();
        let (mut raw, server, _e) = raw_pair(Draft::D14, relay_config(&origin)).await;
        let alias = subscribe(&mut raw, 0).await;
        let _ = read_subgroups(&raw, alias, 1).await; // the current group, 2
        // End after group 3 (Request ID 2 names the update itself).
        let narrow = SubscriptionFilter::AbsoluteRange {
            start: Location::new(2, 0),
            end_group: 3,
        };
        raw.send(update(2, 0, Draft::D14, narrow)).await;
        // The next request, a SUBSCRIBE with ID 4, proves 2 was taken.
        raw.send(subscribe_msg(
            4,
            "no/such",
            "t",
            SubscriptionFilter::LargestObject,
            Draft::D14,
        ))
        .await;
        assert!(matches!(raw.recv().await, ControlMessage::RequestError(e) if e.request_id == 4));
        write_groups_from(&mut track, 3, 2);
        let groups = read_subgroups(&raw, alias, 1).await;
        assert_eq!(groups[0].0, 3);
        let done = raw.recv().await;
        assert!(
            matches!(done, ControlMessage::PublishDone(ref d)
                if d.request_id == 0 && d.status_code == DoneCode::SubscriptionEnded.code()),
            "{done:?}"
        );

        // Widening another subscription closes the session. Its narrowed
        // range ends past every group written, so that it is still open
        // when the widening arrives (an ended one would be ignored).
        let _ = subscribe(&mut raw, 6).await;
        let narrow = SubscriptionFilter::AbsoluteRange {
            start: Location::new(2, 0),
            end_group: 50,
        };
        let wide = SubscriptionFilter::AbsoluteRange {
            start: Location::new(0, 0),
            end_group: 100,
        };
        raw.send(update(8, 6, Draft::D14, narrow)).await;
        raw.send(update(10, 6, Draft::D14, wide)).await;
        let err = server_closed(&server).await;
        assert_eq!(err.code, SessionCode::ProtocolViolation, "{err}");
    })
    .await
    .expect("timed out");
}

/// Groups `first..first+count` of five objects each.
fn write_groups_from(track: &mut moq_lite::model::TrackProducer, first: u64, count: u64) {
    for g in first..first + count {
        let mut group = track.create_group(g).unwrap();
        for o in 0..5 {
            group.write_frame(object(g, o)).unwrap();
        }
        group.finish().unwrap();
    }
}

/// Drafts 15 and 16: "The receiver of a SUBSCRIBE_UPDATE [REQUEST_UPDATE]
/// MUST respond with exactly one REQUEST_OK or REQUEST_ERROR", the
/// REQUEST_OK with "the LARGEST_OBJECT parameter"; an update that fails
/// also ends the subscription: "the publisher MUST also terminate the
/// subscription with PUBLISH_DONE with error code UPDATE_FAILED".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_update_answered_with_largest_or_fails_the_subscription() {
    for draft in [Draft::D15, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let (origin, _broadcast, _track) = cached_origin();
            let (mut raw, server, _e) = raw_pair(draft, relay_config(&origin)).await;
            let _ = subscribe(&mut raw, 0).await;
            let ok = SubscriptionFilter::AbsoluteRange {
                start: Location::new(2, 0),
                end_group: 9,
            };
            raw.send(update(2, 0, draft, ok)).await;
            let ControlMessage::RequestOk(reply) = raw.recv().await else {
                panic!("{draft}: REQUEST_OK expected")
            };
            assert_eq!(reply.request_id, 2);
            let largest = location(&reply.parameters, MessageParameter::LargestObject.code(), draft).unwrap();
            assert_eq!(largest, Some(Location::new(2, 4)), "{draft}");

            // End before start: REQUEST_ERROR INVALID_RANGE (0x11 from 15), then
            // PUBLISH_DONE UPDATE_FAILED (0x8).
            let bad = SubscriptionFilter::AbsoluteRange {
                start: Location::new(5, 0),
                end_group: 4,
            };
            raw.send(update(4, 0, draft, bad)).await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::RequestError(ref e) if e.request_id == 4 && e.error_code == 0x11),
                "{draft}: {reply:?}"
            );
            let done = raw.recv().await;
            assert!(
                matches!(done, ControlMessage::PublishDone(ref d) if d.request_id == 0 && d.status_code == 0x8),
                "{draft}: {done:?}"
            );
            server_stays_up(&server).await;

            // An update of a request that never existed: PROTOCOL_VIOLATION.
            raw.send(update(6, 40, draft, ok)).await;
            let err = server_closed(&server).await;
            assert_eq!(err.code, SessionCode::ProtocolViolation, "{draft}: {err}");
        })
        .await
        .unwrap_or_else(|_| panic!("{draft} timed out"));
    }
}

/// Drafts 14 and 15 read requests from one stream, in order: "a new request
/// with a Request ID that is not the next in sequence ... MUST close the
/// session with INVALID_REQUEST_ID".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_out_of_sequence_closes_the_session() {
    for draft in [Draft::D14, Draft::D15] {
        tokio::time::timeout(LIMIT, async {
            let (origin, _broadcast, _track) = cached_origin();
            let (mut raw, server, _e) = raw_pair(draft, relay_config(&origin)).await;
            let _ = subscribe(&mut raw, 0).await;
            // 2 skipped.
            raw.send(subscribe_msg(
                4,
                "cache/x",
                "t",
                SubscriptionFilter::LargestObject,
                draft,
            ))
            .await;
            let err = server_closed(&server).await;
            assert_eq!(err.code, SessionCode::InvalidRequestId, "{draft}: {err}");
        })
        .await
        .unwrap_or_else(|_| panic!("{draft} timed out"));
    }
}

/// "The publisher does not send Objects if the Forward State is 0": a
/// SUBSCRIBE with FORWARD 0 gets its SUBSCRIBE_OK and no data until an
/// update sets it to 1. SUBSCRIBE_OK states the Group Order we deliver in:
/// newest first unless the subscriber asked for ascending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_zero_sends_nothing_until_updated() {
    tokio::time::timeout(LIMIT, async {
        // Draft-15: the last to state the Group Order in SUBSCRIBE_OK (as
        // a parameter; draft-14 as a field, tested with the filters).
        let draft = Draft::D15;
        let (origin, _broadcast, mut track) = cached_origin();
        let (mut raw, _server, _e) = raw_pair(draft, relay_config(&origin)).await;
        let ControlMessage::Subscribe(mut m) =
            subscribe_msg(0, "cache/x", "t", SubscriptionFilter::LargestObject, draft)
        else {
            unreachable!()
        };
        m.parameters.set_int(MessageParameter::Forward.code(), 0);
        raw.send(ControlMessage::Subscribe(m)).await;
        let ControlMessage::SubscribeOk(ok) = raw.recv().await else {
            panic!("SUBSCRIBE_OK expected")
        };
        assert_eq!(
            ok.parameters.get_int(MessageParameter::GroupOrder.code()),
            Some(2),
            "descending: newest first"
        );
        write_groups_from(&mut track, 3, 1);
        let early = tokio::time::timeout(Duration::from_millis(300), raw.session.accept_uni()).await;
        assert!(early.is_err(), "no data stream while Forward is 0");

        let mut forward = RequestUpdate {
            request_id: 2,
            existing_request_id: 0,
            ..Default::default()
        };
        forward.parameters.set_int(MessageParameter::Forward.code(), 1);
        raw.send(ControlMessage::RequestUpdate(forward)).await;
        assert!(matches!(raw.recv().await, ControlMessage::RequestOk(ok) if ok.request_id == 2));
        write_groups_from(&mut track, 4, 1);
        let groups = read_subgroups(&raw, ok.track_alias, 1).await;
        assert_eq!(groups[0].0, 4);
        assert_eq!(groups[0].1, expected_objects(4, 0));

        // Ascending asked for: ascending stated.
        let ControlMessage::Subscribe(mut m) =
            subscribe_msg(4, "cache/x", "t", SubscriptionFilter::LargestObject, draft)
        else {
            unreachable!()
        };
        m.parameters.set_int(MessageParameter::GroupOrder.code(), 1);
        raw.send(ControlMessage::Subscribe(m)).await;
        let ControlMessage::SubscribeOk(ok) = raw.recv().await else {
            panic!("SUBSCRIBE_OK expected")
        };
        assert_eq!(
            ok.parameters.get_int(MessageParameter::GroupOrder.code()),
            Some(1)
        );
    })
    .await
    .expect("timed out");
}

fn standalone(
    request_id: u64,
    start: Location,
    end: Location,
    group_order: u8,
    draft: Draft,
) -> ControlMessage {
    let mut parameters = KeyValuePairs::new();
    if draft > Draft::D14 && group_order != 0 {
        parameters.set_int(MessageParameter::GroupOrder.code(), group_order as u64);
    }
    ControlMessage::Fetch(Fetch {
        request_id,
        required_request_id_delta: 0,
        subscriber_priority: 0,
        group_order,
        fetch_type: FetchType::Standalone {
            namespace: ns("cache/x"),
            name: bytes::Bytes::from_static(b"t"),
            start,
            end,
        },
        parameters,
    })
}

/// FETCH: "If Start Location is greater than the Largest Object ... the
/// publisher MUST return ... INVALID_RANGE"; draft-14: "If no Objects exist
/// in the requested range, the publisher returns FETCH_ERROR with code
/// NO_OBJECTS"; "A publisher MUST send fetched groups in the requested
/// group order"; End Location "{Largest.Group, Largest.Object + 1}" when the
/// request reaches past the largest object, "{Fetch.End Location.Group, 0}"
/// when a whole group was asked for and sent; and an open group is served
/// as far as it is published, without waiting for the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_ranges_orders_and_end_locations() {
    for draft in [Draft::D14, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let (origin, _broadcast, mut track) = cached_origin();
            // Group 3 open, two objects published.
            let mut open = track.create_group(3).unwrap();
            open.write_frame(object(3, 0)).unwrap();
            open.write_frame(object(3, 1)).unwrap();
            let (mut raw, _server, _e) = raw_pair(draft, relay_config(&origin)).await;
            let invalid_range = if draft == Draft::D14 { 0x5 } else { 0x11 };

            raw.send(standalone(0, Location::new(9, 0), Location::new(10, 0), 0, draft)).await;
            let reply = raw.recv().await;
            assert!(
                matches!(reply, ControlMessage::RequestError(ref e) | ControlMessage::FetchError(ref e)
                    if e.request_id == 0 && e.error_code == invalid_range),
                "{draft}: {reply:?}"
            );

            // Groups 0..=1 whole, descending: group 1 first, End {1, 0}.
            raw.send(standalone(2, Location::new(0, 0), Location::new(1, 0), 2, draft)).await;
            let ControlMessage::FetchOk(ok) = raw.recv().await else {
                panic!("{draft}: FETCH_OK expected")
            };
            assert_eq!(ok.end_location, Location::new(1, 0), "{draft}");
            let objects = read_fetch(&raw).await;
            let order: Vec<(u64, u64)> = objects.iter().map(|(g, o, _)| (*g, *o)).collect();
            let expected: Vec<(u64, u64)> = [1, 0].into_iter().flat_map(|g| (0..5).map(move |o| (g, o))).collect();
            assert_eq!(order, expected, "{draft}");

            // Into the open group and past it: what is there, at once; End
            // {3, 1 + 1}.
            raw.send(standalone(4, Location::new(2, 3), Location::new(7, 0), 0, draft)).await;
            let ControlMessage::FetchOk(ok) = raw.recv().await else {
                panic!("{draft}: FETCH_OK expected")
            };
            assert_eq!(ok.end_location, Location::new(3, 2), "{draft}");
            let objects = read_fetch(&raw).await;
            let order: Vec<(u64, u64)> = objects.iter().map(|(g, o, _)| (*g, *o)).collect();
            assert_eq!(order, [(2, 3), (2, 4), (3, 0), (3, 1)], "{draft}");

            // A range with nothing in it (group 4 is missing, 5 exists):
            // draft-14 NO_OBJECTS (0x6); later drafts FETCH_OK and an empty
            // stream ("If no Objects exist in the requested range, the
            // publisher opens the unidirectional stream, sends the
            // FETCH_HEADER ... and closes the stream with a FIN").
            write_groups_from(&mut track, 5, 1);
            raw.send(standalone(6, Location::new(4, 0), Location::new(4, 0), 0, draft)).await;
            let reply = raw.recv().await;
            match draft {
                Draft::D14 => assert!(
                    matches!(reply, ControlMessage::FetchError(ref e) if e.request_id == 6 && e.error_code == 0x6),
                    "{reply:?}"
                ),
                _ => {
                    assert!(matches!(reply, ControlMessage::FetchOk(_)), "{reply:?}");
                    assert!(read_fetch(&raw).await.is_empty());
                }
            }
            drop(open);
        })
        .await
        .unwrap_or_else(|_| panic!("{draft} timed out"));
    }
}

/// "A Joining Fetch is only permitted when the associated Subscribe has the
/// Filter Type Largest Object; any other value results in closing the
/// session with a PROTOCOL_VIOLATION."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_fetch_of_a_non_largest_object_subscription_is_a_violation() {
    tokio::time::timeout(LIMIT, async {
        let draft = Draft::D16;
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, server, _e) = raw_pair(draft, relay_config(&origin)).await;
        raw.send(subscribe_msg(
            0,
            "cache/x",
            "t",
            SubscriptionFilter::AbsoluteStart(Location::new(1, 0)),
            draft,
        ))
        .await;
        assert!(matches!(raw.recv().await, ControlMessage::SubscribeOk(_)));
        raw.send(ControlMessage::Fetch(Fetch {
            request_id: 2,
            required_request_id_delta: 0,
            subscriber_priority: 0,
            group_order: 0,
            fetch_type: FetchType::RelativeJoining {
                joining_request_id: 0,
                joining_start: 1,
            },
            parameters: KeyValuePairs::new(),
        }))
        .await;
        let err = server_closed(&server).await;
        assert_eq!(err.code, SessionCode::ProtocolViolation, "{err}");
    })
    .await
    .expect("timed out");
}

/// A subscriber that stops reading pins the groups in flight to it; they
/// are bounded as in moq-lite (32 per subscription): past that the oldest
/// is reset (counted as dropped) so the newest still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_pins_a_bounded_number_of_groups() {
    use moq_lite::endpoint::{ClientConfig, QuicConfig};
    tokio::time::timeout(LIMIT, async {
        let draft = Draft::D16;
        let (origin, _broadcast, mut track) = cached_origin();
        let srv = server(moq_transport_compat::ALL_PROTOCOLS);
        // 4 KiB per stream and never read: every larger group stalls.
        let cli = loopback::client(
            &srv,
            ClientConfig {
                protocols: vec![draft.alpn().to_string()],
                quic: QuicConfig {
                    stream_receive_window: 4096,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let (s, c) = transports(&srv, &cli, "moqt").await;
        let (server, raw) = tokio::join!(
            moq_transport_compat::accept(s, relay_config(&origin)),
            Raw::connect(c, draft)
        );
        let (server, mut raw) = (server.unwrap(), raw);
        let _ = subscribe(&mut raw, 0).await;
        for g in 3..43 {
            let mut group = track.create_group(g).unwrap();
            group
                .write_frame(bytes::Bytes::from(vec![g as u8; 16 * 1024]))
                .unwrap();
            group.finish().unwrap();
        }
        // 41 groups sent to a subscriber that takes none: at least 9 dropped.
        loop {
            let stats = server.stats().snapshot();
            if stats.groups_dropped >= 41 - 32 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(raw);
    })
    .await
    .expect("timed out: in-flight groups are not bounded");
}

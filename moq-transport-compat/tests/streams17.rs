//! Draft-17 request streams on the wire, against raw draft-17 peers: how
//! each side ends its half of a request stream (FIN, RESET_STREAM,
//! STOP_SENDING), and requests that depend on other requests (Required
//! Request ID Delta, joining FETCH).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use moq_lite::endpoint::QuicSendStream as SendStream;
// The trait methods: streams come back in the session's own types.
use moq_lite::model::{OriginProducer, Path, Track};
use moq_transport_compat::control::{
    ControlMessage, Decoded, Fetch, FetchType, Namespace, PublishDone, PublishNamespace, RequestError,
    RequestOk, RequestUpdate, Subscribe, SubscribeOk,
};
use moq_transport_compat::data::{FetchItem, FetchReader, ObjectContent, StreamHeader};
use moq_transport_compat::ietf::stream::{MAX_OBJECT_BUFFERED, Reader, StreamError, Writer};
use moq_transport_compat::{Draft, KeyValuePairs, Location, SubscriptionFilter};
use web_transport_trait::Session as _;

/// Draft-17 REQUEST_ERROR codes.
const TIMEOUT: u64 = 0x2;
const EXCESSIVE_LOAD: u64 = 0x9;
const INVALID_JOINING_REQUEST_ID: u64 = 0x32;

/// SUBSCRIBE (LargestObject) for "cache/x" "t" on a new request stream,
/// checked to be answered with SUBSCRIBE_OK.
async fn subscribe17(raw: &Raw17, request_id: u64) -> Stream17 {
    let mut sub = raw
        .request(subscribe_msg(
            request_id,
            "cache/x",
            "t",
            SubscriptionFilter::LargestObject,
            Draft::D17,
        ))
        .await;
    let reply = next17(&mut sub).await;
    assert!(
        matches!(reply, Next::Msg(ControlMessage::SubscribeOk(_))),
        "{reply:?}"
    );
    sub
}

/// What came next on the peer's half of a request stream.
#[derive(Debug)]
enum Next {
    Msg(ControlMessage),
    /// A FIN.
    Fin,
    /// A RESET_STREAM.
    Reset,
}

async fn next17(stream: &mut Stream17) -> Next {
    match stream.1.decode(|b| ControlMessage::decode(b, Draft::D17)).await {
        Ok(Some(Decoded::Message(m))) => Next::Msg(m),
        Ok(Some(Decoded::Unknown { message_type, .. })) => panic!("unknown message {message_type:#x}"),
        Ok(None) => Next::Fin,
        Err(StreamError::Closed(moq_lite::Error::Cancel)) => Next::Reset,
        Err(err) => panic!("{err:?}"),
    }
}

/// [`next17`], within `wait`.
async fn next_within(stream: &mut Stream17, wait: Duration) -> Option<Next> {
    tokio::time::timeout(wait, next17(stream)).await.ok()
}

/// The QUIC send stream under a request stream's writer.
fn raw_send(writer: Writer<SendStream>) -> SendStream {
    writer.into_inner().expect("send stream still open")
}

/// Some(code) if the peer sent STOP_SENDING for `send` within `wait`.
async fn stop_sending(send: &SendStream, wait: Duration) -> Option<u32> {
    match tokio::time::timeout(wait, send.stopped()).await {
        Ok(Ok(code)) => code,
        Ok(Err(err)) => panic!("{err}"),
        Err(_) => None,
    }
}

fn joining_fetch(request_id: u64, delta: u64, joining_request_id: u64) -> ControlMessage {
    ControlMessage::Fetch(Fetch {
        request_id,
        required_request_id_delta: delta,
        fetch_type: FetchType::RelativeJoining {
            joining_request_id,
            joining_start: 1,
        },
        ..Default::default()
    })
}

fn standalone_fetch(request_id: u64, path: &str, start: Location, end: Location) -> ControlMessage {
    ControlMessage::Fetch(Fetch {
        request_id,
        fetch_type: FetchType::Standalone {
            namespace: ns(path),
            name: Bytes::from_static(b"t"),
            start,
            end,
        },
        ..Default::default()
    })
}

/// Reads the next FETCH data stream to its FIN (skipping subscriptions'
/// streams): (group, object, payload).
async fn read_fetch17(raw: &Raw17) -> Vec<(u64, u64, Bytes)> {
    let mut reader = loop {
        let recv = raw.session.accept_uni().await.unwrap();
        let mut reader = Reader::new(recv).with_max_buffered(MAX_OBJECT_BUFFERED);
        let header = reader
            .decode_required(|b| StreamHeader::decode(b, Draft::D17))
            .await
            .unwrap();
        if matches!(header, StreamHeader::Fetch(_)) {
            break reader;
        }
    };
    let mut fetch = FetchReader::new();
    let mut out = Vec::new();
    while let Some(item) = reader.decode(|b| fetch.decode(b, Draft::D17)).await.unwrap() {
        if let FetchItem::Object(obj) = item {
            if let ObjectContent::Payload(p) = obj.content {
                out.push((obj.group_id, obj.object_id, p));
            }
        }
    }
    out
}

fn expect_error(next: Option<Next>, code: u64) {
    assert!(
        matches!(next, Some(Next::Msg(ControlMessage::RequestError(ref e))) if e.error_code == code),
        "expected REQUEST_ERROR {code:#x}: {next:?}"
    );
}

/// 17 §Required Request ID / §Joining Fetches: a joining FETCH read before
/// the SUBSCRIBE it depends on (they travel on different streams) waits
/// for it, and is then answered like any joining FETCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_fetch_before_its_subscribe_waits_for_it() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        // FETCH 2 depends on request 2 - 2 * 1 = 0, sent later.
        let mut fetch = raw.request(joining_fetch(2, 1, 0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _sub = subscribe17(&raw, 0).await;
        let reply = next17(&mut fetch).await;
        let Next::Msg(ControlMessage::FetchOk(ok)) = reply else {
            panic!("{reply:?}")
        };
        // One group back from what lies before the group the subscription
        // starts on (2): groups 0 and 1.
        assert_eq!(ok.end_location, Location::new(1, 5));
        let objects = read_fetch17(&raw).await;
        let expected: Vec<_> = (0..2)
            .flat_map(|g| (0..5).map(move |o| (g, o, object(g, o))))
            .collect();
        assert_eq!(objects, expected);
    })
    .await
    .expect("timed out");
}

/// §Joining Fetches: the publisher "buffers the pending Joining Fetch until
/// either the Subscription is established or the request times out", with
/// or without a Required Request ID Delta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_fetch_without_delta_also_waits() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut fetch = raw.request(joining_fetch(2, 0, 0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _sub = subscribe17(&raw, 0).await;
        let reply = next17(&mut fetch).await;
        assert!(
            matches!(reply, Next::Msg(ControlMessage::FetchOk(_))),
            "{reply:?}"
        );
    })
    .await
    .expect("timed out");
}

/// §Required Request ID: "If the required request does not arrive, the
/// receiver will time out the dependent request": REQUEST_ERROR TIMEOUT
/// and a FIN, after a few seconds; the session goes on, and the timed-out
/// request's ID counts as used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_request_that_never_comes_times_out() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, server, _e) = raw17_pair(relay_config(&origin)).await;
        let start = tokio::time::Instant::now();
        let mut fetch = raw.request(joining_fetch(4, 2, 0)).await;
        expect_error(next_within(&mut fetch, Duration::from_secs(10)).await, TIMEOUT);
        assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(matches!(next17(&mut fetch).await, Next::Fin));
        // The session is still up, and request 0 still free.
        let _sub = subscribe17(&raw, 0).await;
        // Request 4 was used (timed out): using it again is a duplicate.
        let _again = raw.request(joining_fetch(4, 0, 0)).await;
        let moq_transport_compat::Session::Ietf(ietf) = &server else {
            panic!("not IETF")
        };
        let err = tokio::time::timeout(Duration::from_secs(5), ietf.closed_ietf())
            .await
            .expect("the server closed the session");
        assert_eq!(
            err.code,
            moq_transport_compat::ietf::SessionCode::InvalidRequestId,
            "{err}"
        );
    })
    .await
    .expect("timed out");
}

/// Waiting requests are bounded: past the limit (32) a dependent request is
/// refused at once with EXCESSIVE_LOAD; the others are answered once their
/// required request arrives (here a SUBSCRIBE that fails, so each joining
/// FETCH gets INVALID_JOINING_REQUEST_ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_are_bounded() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut fetches = Vec::new();
        for i in 1..=33u64 {
            // Each depends on request 0.
            fetches.push(raw.request(joining_fetch(2 * i, i, 0)).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut sub = raw
            .request(subscribe_msg(
                0,
                "no/such",
                "t",
                SubscriptionFilter::LargestObject,
                Draft::D17,
            ))
            .await;
        expect_error(Some(next17(&mut sub).await), 0x10);
        let (mut busy, mut invalid) = (0, 0);
        for fetch in &mut fetches {
            match next17(fetch).await {
                Next::Msg(ControlMessage::RequestError(e)) if e.error_code == EXCESSIVE_LOAD => {
                    assert!(e.retry_interval > 0, "{e:?}");
                    busy += 1;
                }
                Next::Msg(ControlMessage::RequestError(e)) if e.error_code == INVALID_JOINING_REQUEST_ID => {
                    invalid += 1
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(next17(fetch).await, Next::Fin));
        }
        assert_eq!((busy, invalid), (1, 32));
    })
    .await
    .expect("timed out");
}

/// A REQUEST_UPDATE is a request too: one that depends on a later request
/// is answered only after that request was handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_update_waits_for_its_required_request() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut sub = subscribe17(&raw, 0).await;
        // Update 4 depends on request 2, not sent yet.
        send17(
            &mut sub,
            ControlMessage::RequestUpdate(RequestUpdate {
                request_id: 4,
                required_request_id_delta: 1,
                ..Default::default()
            }),
        )
        .await;
        let early = next_within(&mut sub, Duration::from_millis(300)).await;
        assert!(early.is_none(), "answered before its required request: {early:?}");
        let mut status = raw
            .request(ControlMessage::TrackStatus(Subscribe {
                request_id: 2,
                namespace: ns("cache/x"),
                name: Bytes::from_static(b"t"),
                forward: true,
                ..Default::default()
            }))
            .await;
        let reply = next17(&mut status).await;
        assert!(
            matches!(reply, Next::Msg(ControlMessage::RequestOk(_))),
            "{reply:?}"
        );
        let reply = next_within(&mut sub, Duration::from_secs(2)).await;
        assert!(
            matches!(reply, Some(Next::Msg(ControlMessage::RequestOk(_)))),
            "{reply:?}"
        );
    })
    .await
    .expect("timed out");
}

/// A dependent REQUEST_UPDATE whose required request never comes is
/// refused with REQUEST_ERROR TIMEOUT, and (17 §Updating Subscriptions) the
/// subscription ends with PUBLISH_DONE UPDATE_FAILED and a FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_update_whose_required_request_never_comes() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut sub = subscribe17(&raw, 0).await;
        send17(
            &mut sub,
            ControlMessage::RequestUpdate(RequestUpdate {
                request_id: 4,
                required_request_id_delta: 1,
                ..Default::default()
            }),
        )
        .await;
        expect_error(next_within(&mut sub, Duration::from_secs(10)).await, TIMEOUT);
        let reply = next17(&mut sub).await;
        assert!(
            matches!(reply, Next::Msg(ControlMessage::PublishDone(ref d)) if d.status_code == 0x8),
            "{reply:?}"
        );
        assert!(matches!(next17(&mut sub).await, Next::Fin));
    })
    .await
    .expect("timed out");
}

/// 17 §Fetch State Management: FETCH_OK does not end the FETCH; the
/// publisher keeps its request stream open (and reads the subscriber's
/// half, so no STOP_SENDING) until the data stream is done, then FINs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_stream_ends_with_fin_after_its_data() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut fetch = raw
            .request(standalone_fetch(
                0,
                "cache/x",
                Location::new(0, 0),
                Location::new(2, 0),
            ))
            .await;
        let reply = next17(&mut fetch).await;
        assert!(
            matches!(reply, Next::Msg(ControlMessage::FetchOk(_))),
            "{reply:?}"
        );
        let objects = read_fetch17(&raw).await;
        assert_eq!(objects.len(), 15);
        let end = next_within(&mut fetch, Duration::from_secs(2)).await;
        assert!(matches!(end, Some(Next::Fin)), "{end:?}");
        let (writer, _reader) = fetch;
        let send = raw_send(writer);
        let stopped = stop_sending(&send, Duration::from_millis(300)).await;
        assert_eq!(
            stopped, None,
            "the publisher stopped our half of the FETCH stream"
        );
    })
    .await
    .expect("timed out");
}

/// §Fetch State Management: a subscriber cancels a FETCH on its request
/// stream (STOP_SENDING, which §Fetch State Management requires, or a
/// RESET_STREAM of its half, §Request Cancellation), also after FETCH_OK;
/// the publisher then "MUST reset the bidi request stream and
/// unidirectional data stream associated with the FETCH".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_cancelled_after_fetch_ok() {
    for stop in [true, false] {
        tokio::time::timeout(LIMIT, async {
            // 5 MiB of objects: more than the data stream's flow-control
            // window, so the data stream stays open while we do not read it.
            let origin = OriginProducer::new();
            let broadcast = origin.create_broadcast("big/x").unwrap();
            let mut track = broadcast.create_track(Track::new("t"));
            let mut group = track.create_group(0).unwrap();
            for i in 0..5u8 {
                group.write_frame(Bytes::from(vec![i; 1024 * 1024])).unwrap();
            }
            group.finish().unwrap();
            let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
            let mut fetch = raw
                .request(standalone_fetch(
                    0,
                    "big/x",
                    Location::new(0, 0),
                    Location::new(1, 0),
                ))
                .await;
            let reply = next17(&mut fetch).await;
            assert!(
                matches!(reply, Next::Msg(ControlMessage::FetchOk(_))),
                "{reply:?}"
            );
            let mut data = raw.session.accept_uni().await.unwrap();
            // The FETCH goes on: a REQUEST_UPDATE is still answered.
            send17(
                &mut fetch,
                ControlMessage::RequestUpdate(RequestUpdate {
                    request_id: 2,
                    ..Default::default()
                }),
            )
            .await;
            let reply = next_within(&mut fetch, Duration::from_secs(2)).await;
            assert!(
                matches!(reply, Some(Next::Msg(ControlMessage::RequestOk(_)))),
                "{reply:?}"
            );
            if stop {
                fetch.1.stop(0);
                let send = raw_send(fetch.0);
                // The publisher cancels our half too.
                let stopped = stop_sending(&send, Duration::from_secs(2)).await;
                assert!(stopped.is_some(), "our half was not stopped");
            } else {
                fetch.0.reset(0);
                let end = next_within(&mut fetch, Duration::from_secs(2)).await;
                assert!(matches!(end, Some(Next::Reset)), "{end:?}");
            }
            // The data stream is reset.
            let data_end = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match web_transport_trait::RecvStream::read_chunk(&mut data, 64 * 1024).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return "fin",
                        Err(_) => return "reset",
                    }
                }
            })
            .await;
            assert_eq!(data_end, Ok("reset"), "stop: {stop}");
        })
        .await
        .unwrap_or_else(|_| panic!("stop: {stop}: timed out"));
    }
}

/// A raw draft-17 server and our client session.
async fn raw17_server(config: moq_lite::SessionConfig) -> (Raw17, moq_transport_compat::Session, impl Sized) {
    let srv = server(&["moqt-17"]);
    let cli = client(&srv, &["moqt-17"]);
    let (s, c) = transports(&srv, &cli, "moqt").await;
    let (raw, session) = tokio::join!(Raw17::setup(s), moq_transport_compat::connect(c, config));
    (raw, session.unwrap(), (cli, srv))
}

/// The next request stream the peer opens, with its first message.
async fn accept17(raw: &Raw17) -> (Stream17, ControlMessage) {
    let (send, recv) = raw.session.accept_bi().await.unwrap();
    let mut stream: Stream17 = (Writer::new(send), Reader::new(recv));
    let Next::Msg(msg) = next17(&mut stream).await else {
        panic!("empty request stream")
    };
    (stream, msg)
}

/// 17 §Subscriptions: the publisher ends a subscription with PUBLISH_DONE
/// and closing the stream, and §Request Cancellation: a rejected request
/// gets REQUEST_ERROR and a FIN. Either way the request is over, and our
/// subscriber closes its half too (FIN), so the stream is gone on both
/// sides (QUIC returns the stream credit only then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_subscribe_stream_ends_after_the_peers_final_response() {
    tokio::time::timeout(LIMIT, async {
        let client_origin = OriginProducer::new();
        let (raw, _session, _e) = raw17_server(subscribe(&client_origin)).await;
        // Our client asks for the peer's namespaces; it has one.
        let (mut namespaces, msg) = accept17(&raw).await;
        assert!(matches!(msg, ControlMessage::SubscribeNamespace(_)), "{msg:?}");
        send17(
            &mut namespaces,
            ControlMessage::RequestOk(RequestOk {
                request_id: 0,
                parameters: KeyValuePairs::new(),
                track_properties: KeyValuePairs::new(),
            }),
        )
        .await;
        send17(
            &mut namespaces,
            ControlMessage::Namespace(Namespace {
                suffix: ns("found/it"),
            }),
        )
        .await;
        let _t = subscribe_track(&client_origin, "found/it", "t").await;
        let _u = subscribe_track(&client_origin, "found/it", "u").await;
        for _ in 0..2 {
            let (mut stream, msg) = accept17(&raw).await;
            let ControlMessage::Subscribe(sub) = msg else {
                panic!("{msg:?}")
            };
            if &sub.name[..] == b"t" {
                send17(
                    &mut stream,
                    ControlMessage::SubscribeOk(SubscribeOk {
                        track_alias: 1,
                        ..Default::default()
                    }),
                )
                .await;
                send17(
                    &mut stream,
                    ControlMessage::PublishDone(PublishDone {
                        status_code: 0x2,
                        reason: "track ended".into(),
                        ..Default::default()
                    }),
                )
                .await;
            } else {
                send17(
                    &mut stream,
                    ControlMessage::RequestError(RequestError {
                        error_code: 0x10,
                        reason: "no such track".into(),
                        ..Default::default()
                    }),
                )
                .await;
            }
            stream.0.finish().unwrap();
            let end = next_within(&mut stream, Duration::from_secs(2)).await;
            assert!(matches!(end, Some(Next::Fin)), "{:?}: {end:?}", sub.name);
        }
    })
    .await
    .expect("timed out");
}

/// 17 §Publishing Namespaces: "A PUBLISH_NAMESPACE is withdrawn by
/// cancelling the request", and §Request Cancellation cancels with
/// RESET_STREAM / STOP_SENDING: our publisher withdraws a namespace by
/// resetting its half of the stream and stopping the peer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_publish_namespace_is_withdrawn_by_reset() {
    tokio::time::timeout(LIMIT, async {
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("live/x").unwrap();
        let (raw, _server, _e) = raw17_pair(publish(&origin)).await;
        let (send, recv) = raw.session.accept_bi().await.unwrap();
        let mut stream: Stream17 = (Writer::new(send), Reader::new(recv));
        let Next::Msg(ControlMessage::PublishNamespace(m)) = next17(&mut stream).await else {
            panic!("expected PUBLISH_NAMESPACE")
        };
        assert_eq!(m.namespace, ns("live/x"));
        send17(
            &mut stream,
            ControlMessage::RequestOk(RequestOk {
                request_id: 0,
                parameters: KeyValuePairs::new(),
                track_properties: KeyValuePairs::new(),
            }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(broadcast);
        let end = next_within(&mut stream, Duration::from_secs(2)).await;
        assert!(matches!(end, Some(Next::Reset)), "{end:?}");
        let send = raw_send(stream.0);
        let stopped = stop_sending(&send, Duration::from_secs(2)).await;
        assert!(stopped.is_some(), "our half was not stopped");
    })
    .await
    .expect("timed out");
}

/// The other way: a FIN from the peer after its PUBLISH_NAMESPACE only ends
/// what it sends on the stream (§Publishing Namespaces withdraws by
/// cancelling, and §Request Cancellation cancels abruptly; compare
/// SUBSCRIBE_NAMESPACE, which §Subscribing to Namespaces lets a FIN
/// cancel), so the namespace stays; a STOP_SENDING (or reset) withdraws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_publish_namespace_fin_is_no_withdrawal() {
    for reset in [false, true] {
        tokio::time::timeout(LIMIT, async {
            let origin = OriginProducer::new();
            let (raw, _server, _e) = raw17_pair(subscribe(&origin)).await;
            let mut announced = origin.consume();
            let mut stream = raw
                .request(ControlMessage::PublishNamespace(PublishNamespace {
                    request_id: 0,
                    required_request_id_delta: 0,
                    namespace: ns("theirs/ns"),
                    parameters: KeyValuePairs::new(),
                }))
                .await;
            let reply = next17(&mut stream).await;
            assert!(
                matches!(reply, Next::Msg(ControlMessage::RequestOk(_))),
                "{reply:?}"
            );
            let next = announced.announced().await.unwrap();
            assert_eq!(next.path, Path::new("theirs/ns"));
            assert!(next.broadcast.is_some());
            if reset {
                stream.0.reset(0);
            } else {
                stream.0.finish().unwrap();
                let withdrawn = tokio::time::timeout(Duration::from_millis(500), announced.announced()).await;
                assert!(withdrawn.is_err(), "a FIN withdrew the namespace: {withdrawn:?}");
                stream.1.stop(0);
            }
            let next = tokio::time::timeout(Duration::from_secs(2), announced.announced())
                .await
                .expect("withdrawn")
                .unwrap();
            assert_eq!(next.path, Path::new("theirs/ns"));
            assert!(next.broadcast.is_none());
        })
        .await
        .unwrap_or_else(|_| panic!("reset: {reset}: timed out"));
    }
}

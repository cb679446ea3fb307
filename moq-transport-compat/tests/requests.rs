//! Request handling from drafts 16 and 17 against our server, spoken by raw
//! clients: duplicate Request IDs (requests on separate streams may be read
//! out of order, so duplicates are not found by ordering), REQUEST_UPDATE
//! answered with REQUEST_OK, and PUBLISH_BLOCKED taken in stride.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use moq_lite::model::{OriginProducer, Path};
use moq_transport_compat::control::{
    ControlMessage, Decoded, Namespace, PublishBlocked, RequestOk, RequestUpdate, set_filter,
};
use moq_transport_compat::ietf::{DoneCode, SessionCode};
use moq_transport_compat::{Draft, KeyValuePairs, Location, SubscriptionFilter};

/// Draft-16: a SUBSCRIBE reusing a Request ID closes the session with
/// INVALID_REQUEST_ID, even though IDs are not required in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft16_duplicate_request_id_closes_the_session() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, server, _e) = raw_pair(Draft::D16, relay_config(&origin)).await;
        let sub = |id| subscribe_msg(id, "no/such", "t", SubscriptionFilter::LargestObject, Draft::D16);
        raw.send(sub(0)).await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::RequestError(ref e) if e.request_id == 0),
            "{reply:?}"
        );
        raw.send(sub(0)).await;
        let err = server_closed(&server).await;
        assert_eq!(err.code, SessionCode::InvalidRequestId, "{err}");
    })
    .await
    .expect("timed out");
}

/// Draft-16: REQUEST_UPDATE consumes its own Request ID and is answered
/// with REQUEST_OK naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft16_request_update_answered() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (mut raw, server, _e) = raw_pair(Draft::D16, relay_config(&origin)).await;
        raw.send(subscribe_msg(
            0,
            "cache/x",
            "t",
            SubscriptionFilter::LargestObject,
            Draft::D16,
        ))
        .await;
        let reply = raw.recv().await;
        assert!(matches!(reply, ControlMessage::SubscribeOk(_)), "{reply:?}");
        raw.send(ControlMessage::RequestUpdate(RequestUpdate {
            request_id: 2,
            existing_request_id: 0,
            ..Default::default()
        }))
        .await;
        let reply = raw.recv().await;
        assert!(
            matches!(reply, ControlMessage::RequestOk(ref ok) if ok.request_id == 2),
            "{reply:?}"
        );
        server_stays_up(&server).await;
    })
    .await
    .expect("timed out");
}

/// Draft-17: requests read out of order are fine; a Request ID used before
/// (its request already over) closes the session with INVALID_REQUEST_ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft17_duplicate_request_id_closes_the_session() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, _track) = cached_origin();
        let (raw, server, _e) = raw17_pair(relay_config(&origin)).await;
        let sub = |id| subscribe_msg(id, "no/such", "t", SubscriptionFilter::LargestObject, Draft::D17);
        for id in [4, 0, 2] {
            let mut stream = raw.request(sub(id)).await;
            let reply = recv17(&mut stream).await;
            assert!(
                matches!(reply, Some(ControlMessage::RequestError(_))),
                "{id}: {reply:?}"
            );
            // REQUEST_ERROR ends the request.
            assert!(recv17(&mut stream).await.is_none());
        }
        server_stays_up(&server).await;
        let _stream = raw.request(sub(2)).await;
        let err = server_closed(&server).await;
        assert_eq!(err.code, SessionCode::InvalidRequestId, "{err}");
    })
    .await
    .expect("timed out");
}

/// Draft-17: REQUEST_UPDATE on a subscription's stream gets REQUEST_OK
/// there, and its new end group takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft17_request_update_answered_with_request_ok() {
    tokio::time::timeout(LIMIT, async {
        let (origin, _broadcast, mut track) = cached_origin();
        let (raw, _server, _e) = raw17_pair(relay_config(&origin)).await;
        let mut stream = raw
            .request(subscribe_msg(0, "cache/x", "t", SubscriptionFilter::LargestObject, Draft::D17))
            .await;
        let reply = recv17(&mut stream).await;
        assert!(matches!(reply, Some(ControlMessage::SubscribeOk(_))), "{reply:?}");
        let mut parameters = KeyValuePairs::new();
        let range = SubscriptionFilter::AbsoluteRange {
            start: Location::new(2, 5),
            end_group: 2,
        };
        set_filter(&mut parameters, range, Draft::D17).unwrap();
        send17(
            &mut stream,
            ControlMessage::RequestUpdate(RequestUpdate {
                request_id: 2,
                parameters,
                ..Default::default()
            }),
        )
        .await;
        let reply = tokio::time::timeout(Duration::from_secs(2), recv17(&mut stream))
            .await
            .expect("REQUEST_UPDATE answered");
        assert!(matches!(reply, Some(ControlMessage::RequestOk(_))), "{reply:?}");
        // Past the new end group: the subscription is over.
        write_one_group(&mut track, 3);
        let reply = recv17(&mut stream).await;
        assert!(
            matches!(reply, Some(ControlMessage::PublishDone(ref d)) if d.status_code == DoneCode::SubscriptionEnded.code()),
            "{reply:?}"
        );
    })
    .await
    .expect("timed out");
}

fn write_one_group(track: &mut moq_lite::model::TrackProducer, g: u64) {
    let mut group = track.create_group(g).unwrap();
    group.write_frame(object(g, 0)).unwrap();
    group.finish().unwrap();
}

/// Draft-17: our client's SUBSCRIBE_NAMESPACE stream may carry
/// PUBLISH_BLOCKED; it is logged, and the stream and session go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft17_publish_blocked_is_not_a_violation() {
    tokio::time::timeout(LIMIT, async {
        let srv = server(&["moqt-17"]);
        let cli = client(&srv, &["moqt-17"]);
        let (s, c) = transports(&srv, &cli, "moqt").await;
        let client_origin = OriginProducer::new();
        let (raw, session) = tokio::join!(
            Raw17::setup(s),
            moq_transport_compat::connect(c, subscribe(&client_origin))
        );
        let session = session.unwrap();
        let (send, recv) = web_transport_trait::Session::accept_bi(&raw.session)
            .await
            .unwrap();
        let mut stream: Stream17 = (
            moq_transport_compat::ietf::stream::Writer::new(send),
            moq_transport_compat::ietf::stream::Reader::new(recv),
        );
        let msg = stream
            .1
            .decode_required(|b| ControlMessage::decode(b, Draft::D17))
            .await
            .unwrap();
        assert!(
            matches!(msg, Decoded::Message(ControlMessage::SubscribeNamespace(_))),
            "{msg:?}"
        );
        let mut announced = client_origin.consume();
        for msg in [
            ControlMessage::RequestOk(RequestOk {
                request_id: 0,
                parameters: KeyValuePairs::new(),
                track_properties: KeyValuePairs::new(),
            }),
            ControlMessage::Namespace(Namespace {
                suffix: ns("found/it"),
            }),
            ControlMessage::PublishBlocked(PublishBlocked {
                suffix: ns("found/it"),
                name: Bytes::from_static(b"t"),
            }),
            ControlMessage::Namespace(Namespace {
                suffix: ns("after/it"),
            }),
        ] {
            send17(&mut stream, msg).await;
        }
        loop {
            let next = announced.announced().await.unwrap();
            assert!(next.broadcast.is_some(), "{} withdrawn", next.path);
            if next.path == Path::new("after/it") {
                break;
            }
        }
        let closed = tokio::time::timeout(Duration::from_millis(300), session.closed()).await;
        assert!(closed.is_err(), "the session stayed up: {closed:?}");
    })
    .await
    .expect("timed out");
}

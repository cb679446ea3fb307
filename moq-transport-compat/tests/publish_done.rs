//! PUBLISH_DONE names how many data streams the publisher opened (Stream
//! Count); they travel apart from the control stream and may arrive after
//! it. Our subscriber ends the track cleanly once they all arrived, and
//! with an error if some never do, so that a subscriber never reads a
//! truncated track as a complete one.

mod common;

use common::*;
use moq_lite::model::{OriginProducer, Path, Track, TrackConsumer};
use moq_transport_compat::control::{ControlMessage, PublishDone, PublishNamespace};
use moq_transport_compat::{Draft, KeyValuePairs, SubscriptionFilter, TrackNamespace};

/// A raw publisher of "raw/pub" and a consumer of its track "t" through
/// our subscriber half; returns the SUBSCRIBE's Request ID.
async fn subscribed(draft: Draft, origin: &OriginProducer, raw: &mut Raw) -> (TrackConsumer, u64) {
    raw.send(ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        required_request_id_delta: 0,
        namespace: TrackNamespace::from_path(&Path::new("raw/pub")).unwrap(),
        parameters: KeyValuePairs::new(),
    }))
    .await;
    assert!(
        matches!(raw.recv().await, ControlMessage::RequestOk(_)),
        "{draft:?}"
    );
    let broadcast = origin.consume().consume_broadcast("raw/pub").expect("published");
    let consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();
    let sub = accept_subscribe(raw, 7).await;
    (consumer, sub.request_id)
}

/// Sends PUBLISH_DONE with `count`, and waits until the session has read
/// it (the reply to a later request comes after).
async fn publish_done(raw: &mut Raw, draft: Draft, id: u64, count: u64) {
    raw.send(ControlMessage::PublishDone(PublishDone {
        request_id: id,
        status_code: 0x2,
        stream_count: count,
        reason: String::new(),
    }))
    .await;
    raw.send(subscribe_msg(
        2,
        "no/such",
        "t",
        SubscriptionFilter::LargestObject,
        draft,
    ))
    .await;
    let reply = raw.recv().await;
    assert!(matches!(reply, ControlMessage::RequestError(_)), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_after_publish_done_is_still_delivered() {
    for draft in [Draft::D14, Draft::D16] {
        tokio::time::timeout(LIMIT, async {
            let origin = OriginProducer::new();
            let (mut raw, _server, _endpoints) = raw_pair(draft, subscribe(&origin)).await;
            let (mut consumer, id) = subscribed(draft, &origin, &mut raw).await;
            // PUBLISH_DONE overtakes the only data stream.
            publish_done(&mut raw, draft, id, 1).await;
            write_subgroup(&raw, 7, 0, 1).await;
            let mut group = consumer.next_group().await.unwrap().expect("the group");
            assert_eq!(group.read_frame().await.unwrap(), Some(object(0, 0)));
            assert!(
                consumer.next_group().await.unwrap().is_none(),
                "{draft:?}: a clean end"
            );
        })
        .await
        .expect("timed out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_never_come_end_the_track_with_an_error() {
    let draft = Draft::D16;
    tokio::time::timeout(LIMIT, async {
        let origin = OriginProducer::new();
        let (mut raw, _server, _endpoints) = raw_pair(draft, subscribe(&origin)).await;
        let (mut consumer, id) = subscribed(draft, &origin, &mut raw).await;
        write_subgroup(&raw, 7, 0, 1).await;
        // Two streams announced, one sent.
        publish_done(&mut raw, draft, id, 2).await;
        let mut group = consumer.next_group().await.unwrap().expect("the group");
        assert_eq!(group.read_frame().await.unwrap(), Some(object(0, 0)));
        let end = consumer.next_group().await;
        assert_eq!(
            end.err(),
            Some(moq_lite::Error::Dropped),
            "the track is not complete"
        );
    })
    .await
    .expect("timed out");
}

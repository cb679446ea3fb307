//! Backfill over IETF: our subscriber already follows a track from a later
//! group; a local consumer asking for an earlier start makes it send one
//! FETCH for the gap, and the FETCH's data stream lands in the track.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::model::{OriginProducer, Track};
use moq_transport_compat::control::{ControlMessage, FetchOk, FetchType, PublishNamespace};
use moq_transport_compat::data::{
    FetchHeader, FetchItem, FetchObject, FetchWriter, ObjectContent, StreamHeader,
};
use moq_transport_compat::ietf::stream::Writer;
use moq_transport_compat::{Draft, KeyValuePairs, Location};

const LIMIT: Duration = Duration::from_secs(10);

/// A fetch stream for request `id` holding `groups` x 2 objects.
async fn write_fetch(raw: &Raw, id: u64, groups: impl IntoIterator<Item = u64>) {
    let draft = raw.draft;
    let send = web_transport_trait::Session::open_uni(&raw.session)
        .await
        .unwrap();
    let mut writer = Writer::new(send);
    writer
        .encode(|b| StreamHeader::Fetch(FetchHeader { request_id: id }).encode(draft, b))
        .await
        .unwrap();
    let mut fetch = FetchWriter::new();
    for group in groups {
        for o in 0..2 {
            let item = FetchItem::Object(FetchObject {
                group_id: group,
                subgroup_id: Some(0),
                object_id: o,
                publisher_priority: 0,
                extensions: KeyValuePairs::new(),
                content: ObjectContent::Payload(object(group, o)),
            });
            writer.encode(|b| fetch.encode(&item, draft, b)).await.unwrap();
        }
    }
    writer.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_start_sends_one_fetch_for_the_gap() {
    tokio::time::timeout(LIMIT, async {
        let draft = Draft::D14;
        let origin = OriginProducer::new();
        let (mut raw, server, _e) = raw_pair(draft, subscribe(&origin)).await;
        raw.send(ControlMessage::PublishNamespace(PublishNamespace {
            request_id: 0,
            required_request_id_delta: 0,
            namespace: ns("bf/pub"),
            parameters: KeyValuePairs::new(),
        }))
        .await;
        assert!(matches!(raw.recv().await, ControlMessage::RequestOk(_)));
        let broadcast = origin.consume().consume_broadcast("bf/pub").expect("published");
        let mut live = broadcast.subscribe_track(&Track::new("t")).unwrap();
        accept_subscribe(&mut raw, 7).await;
        write_subgroup(&raw, 7, 5, 2).await;
        assert_eq!(live.next_group().await.unwrap().unwrap().sequence(), 5);

        // Groups 2..=4, asked for with one standalone FETCH (End Location:
        // the last group, object 0 = the whole group).
        let mut early = broadcast.subscribe_track_from(&Track::new("t"), Some(2)).unwrap();
        let ControlMessage::Fetch(fetch) = raw.recv().await else {
            panic!("expected FETCH")
        };
        let FetchType::Standalone {
            namespace,
            name,
            start,
            end,
        } = &fetch.fetch_type
        else {
            panic!("{fetch:?}")
        };
        assert_eq!((namespace, &name[..]), (&ns("bf/pub"), &b"t"[..]));
        assert_eq!((*start, *end), (Location::new(2, 0), Location::new(4, 0)));
        raw.send(ControlMessage::FetchOk(FetchOk {
            request_id: fetch.request_id,
            group_order: 1,
            end_location: Location::new(4, 2),
            ..Default::default()
        }))
        .await;
        write_fetch(&raw, fetch.request_id, 2..5).await;
        let groups = read_groups(&mut early, 4).await;
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        for g in 2..5 {
            assert_eq!(groups[&g], vec![object(g, 0), object(g, 1)], "group {g}");
        }

        // A fetch stream with a group that was not asked for is a protocol
        // violation: a peer cannot plant groups in the cache.
        let _earlier = broadcast.subscribe_track_from(&Track::new("t"), Some(0)).unwrap();
        let ControlMessage::Fetch(fetch) = raw.recv().await else {
            panic!("expected FETCH")
        };
        raw.send(ControlMessage::FetchOk(FetchOk {
            request_id: fetch.request_id,
            group_order: 1,
            end_location: Location::new(1, 2),
            ..Default::default()
        }))
        .await;
        write_fetch(&raw, fetch.request_id, [0, 1, 900]).await;
        let err = server_closed(&server).await;
        assert!(err.reason.contains("outside the requested range"), "{err:?}");
    })
    .await
    .expect("timed out");
}

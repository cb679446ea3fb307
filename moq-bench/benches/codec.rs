//! Encode and decode cost of the wire messages, per message.
//!
//! Three groups: moq-lite-04, IETF draft-14 and IETF draft-17.
//!
//! - `lite04`: moq-lite-04 SUBSCRIBE, SUBSCRIBE_OK (read back through
//!   [`SubscribeResponse`], as the subscriber does), ANNOUNCE with 3 hop IDs,
//!   the GROUP header and a FRAME header; then the hot path of a group
//!   stream: the GROUP header and 30 FRAME headers (`group_30_frames`), and
//!   the same with each frame's 100-byte payload (`group_30_frames_100B`).
//! - `ietf_d14` / `ietf_d17`: IETF moq-transport draft-14 and draft-17
//!   SUBSCRIBE, SUBSCRIBE_OK, PUBLISH_NAMESPACE (each through
//!   [`ControlMessage`]), SUBGROUP_HEADER, and a subgroup stream: the header
//!   and 30 objects of 100 bytes through [`SubgroupWriter`] /
//!   [`SubgroupReader`] (`subgroup_30_objects_100B`).
//!
//! The messages are the ones the sessions send (same fields, same
//! parameters per draft). Encoding writes into one `BytesMut` that is
//! cleared per iteration, so the output buffer is never reallocated; what
//! the codec allocates itself (the scratch buffer of a length-prefixed
//! message, the decoded strings and vectors) is part of the figure, as it is
//! in a session. Decoding reads from a `&[u8]` cursor, as the sessions'
//! stream readers do, except the IETF objects, which [`SubgroupReader`]
//! reads from `Bytes`.
//!
//! Throughput is one element per message, so criterion's `thrpt` is
//! messages per second; the stream cases count the header and every
//! frame/object header (31 elements). Before each case the bench checks that
//! what it decodes equals what it encoded, and prints the encoded size.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use moq_lite::lite::{
    Announce, AnnounceStatus, FrameHeader, Group, HopId, Message, Subscribe, SubscribeOk, SubscribeResponse,
    Version,
};
use moq_lite::model::Path;
use moq_transport_compat::control::{
    self, ControlMessage, Decoded, MessageParameter, Parameters, PublishNamespace,
    Subscribe as IetfSubscribe, SubscribeOk as IetfSubscribeOk,
};
use moq_transport_compat::data::{
    ObjectContent, SubgroupHeader, SubgroupId, SubgroupObject, SubgroupReader, SubgroupWriter,
};
use moq_transport_compat::{Draft, KeyValuePairs, Location, SubscriptionFilter, TrackNamespace};

/// Frames (objects) per group in the stream cases.
const FRAMES: u64 = 30;
/// Payload bytes per frame in the `_100B` cases.
const PAYLOAD: usize = 100;
/// A 2 Mbit/s, 30 fps frame: its size is a two-byte varint.
const FRAME_SIZE: u64 = 8333;
/// What the IETF session writes as Publisher Priority.
const PUBLISHER_PRIORITY: u8 = 128;

const LITE: Version = Version::Lite04;
const BROADCAST: &str = "room/alice/camera";
const TRACK: &str = "video";

/// Benchmarks `encode` (into a cleared, reused buffer) and `decode` (from a
/// `&[u8]` cursor) of one case, after checking that they round-trip.
fn bench_pair<T, E, D>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    elements: u64,
    value: &T,
    encode: E,
    decode: D,
) where
    T: PartialEq + std::fmt::Debug,
    E: Fn(&T, &mut BytesMut),
    D: Fn(&mut &[u8]) -> T,
{
    let mut buf = BytesMut::with_capacity(16 * 1024);
    encode(value, &mut buf);
    let wire = buf.to_vec();
    let mut cursor = &wire[..];
    assert_eq!(&decode(&mut cursor), value, "{name}: decode(encode(x)) != x");
    assert!(cursor.is_empty(), "{name}: decode left bytes");
    println!("  {name}: {} bytes on the wire", wire.len());

    group.throughput(Throughput::Elements(elements));
    group.bench_function(BenchmarkId::new(name, "encode"), |b| {
        b.iter(|| {
            buf.clear();
            encode(black_box(value), &mut buf);
            black_box(&buf);
        })
    });
    group.bench_function(BenchmarkId::new(name, "decode"), |b| {
        b.iter(|| {
            let mut cursor = black_box(&wire[..]);
            black_box(decode(&mut cursor));
        })
    });
}

fn lite_message<M: Message + PartialEq + std::fmt::Debug>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    msg: &M,
) {
    bench_pair(
        group,
        name,
        1,
        msg,
        |m, buf| m.encode(LITE, buf).expect("encode"),
        |c| M::decode(c, LITE).expect("decode"),
    );
}

fn lite04(c: &mut Criterion) {
    let mut group = c.benchmark_group("lite04");

    let subscribe = Subscribe {
        id: 7,
        broadcast: Path::new(BROADCAST),
        track: TRACK.into(),
        priority: 2,
        ordered: false,
        max_latency: Duration::from_millis(2000),
        start_group: None,
        end_group: None,
        ..Default::default()
    };
    lite_message(&mut group, "subscribe", &subscribe);

    let ok = SubscribeResponse::Ok(SubscribeOk {
        priority: 1,
        ordered: false,
        max_latency: Duration::from_millis(2000),
        start_group: Some(1234),
        end_group: None,
    });
    bench_pair(
        &mut group,
        "subscribe_ok",
        1,
        &ok,
        |m, buf| m.encode(LITE, buf).expect("encode"),
        |c| SubscribeResponse::decode(c, LITE).expect("decode"),
    );

    let announce = Announce {
        status: AnnounceStatus::Active,
        suffix: Path::new("alice/camera"),
        hops: [0x1234_5678_9abc, 0x2_0000_0001, 42]
            .into_iter()
            .map(|id| HopId::new(id).expect("hop ID"))
            .collect(),
    };
    lite_message(&mut group, "announce_3hops", &announce);

    let header = Group {
        subscribe: 7,
        sequence: 1234,
        frame_start: 0,
    };
    lite_message(&mut group, "group", &header);

    let frame = FrameHeader {
        size: FRAME_SIZE,
        delta: 0,
    };
    bench_pair(
        &mut group,
        "frame_header",
        1,
        &frame,
        |m, buf| m.encode(LITE, buf).expect("encode"),
        |c| FrameHeader::decode(c, LITE).expect("decode"),
    );

    // The group stream's headers: GROUP, then 30 FRAME length prefixes (the
    // payloads travel as separate chunks in the session).
    bench_pair(
        &mut group,
        "group_30_frames",
        FRAMES + 1,
        &header,
        |h, buf| {
            h.encode(LITE, buf).expect("encode");
            for _ in 0..FRAMES {
                frame.encode(LITE, buf).expect("encode");
            }
        },
        |c| {
            let h = Group::decode(c, LITE).expect("decode");
            for _ in 0..FRAMES {
                black_box(FrameHeader::decode(c, LITE).expect("decode"));
            }
            h
        },
    );

    // The same with each frame's payload copied in and sliced out, to
    // compare with the IETF subgroup of 100-byte objects.
    let payload = Bytes::from(vec![0x5a; PAYLOAD]);
    bench_pair(
        &mut group,
        "group_30_frames_100B",
        FRAMES + 1,
        &header,
        |h, buf| {
            h.encode(LITE, buf).expect("encode");
            for _ in 0..FRAMES {
                FrameHeader::encode_frame(&payload, LITE, buf).expect("encode");
            }
        },
        |c| {
            let h = Group::decode(c, LITE).expect("decode");
            for _ in 0..FRAMES {
                let size = FrameHeader::decode(c, LITE).expect("decode").size as usize;
                assert!(c.len() >= size, "short frame");
                let (payload, rest) = c.split_at(size);
                black_box(payload);
                *c = rest;
            }
            h
        },
    );

    group.finish();
}

fn control_message(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, draft: Draft, msg: ControlMessage) {
    bench_pair(
        group,
        name,
        1,
        &msg,
        |m, buf| m.encode(draft, buf).expect("encode"),
        |c| match ControlMessage::decode(c, draft).expect("decode") {
            Decoded::Message(m) => m,
            Decoded::Unknown { message_type, .. } => panic!("unknown message type {message_type:#x}"),
        },
    );
}

fn ietf(c: &mut Criterion, draft: Draft, group_name: &str) {
    let mut group = c.benchmark_group(group_name);
    let namespace = TrackNamespace::from_path(&Path::new(BROADCAST)).expect("namespace");

    // SUBSCRIBE as `ietf::Session` sends it: from draft-15 the filter, forward
    // and priority are parameters (here in ascending type order, as draft-17
    // writes and reads them back) and the fields are not on the wire.
    let filter = SubscriptionFilter::LargestObject;
    let mut parameters = Parameters::new();
    let d14 = draft == Draft::D14;
    if !d14 {
        parameters.set_int(MessageParameter::Forward.code(), 1);
        parameters.set_int(MessageParameter::SubscriberPriority.code(), 2);
        control::set_filter(&mut parameters, filter, draft).expect("filter");
    }
    let subscribe = ControlMessage::Subscribe(IetfSubscribe {
        request_id: 4,
        required_request_id_delta: 0,
        namespace,
        name: Bytes::from_static(TRACK.as_bytes()),
        subscriber_priority: if d14 { 2 } else { 0 },
        group_order: moq_transport_compat::common::group_order::PUBLISHER,
        forward: d14,
        filter,
        parameters,
    });
    control_message(&mut group, "subscribe", draft, subscribe);

    // SUBSCRIBE_OK with a largest location (a parameter from draft-15). The
    // draft-17 reply has no request ID (it travels on the request's stream).
    let largest = Location {
        group: 1234,
        object: 17,
    };
    let mut parameters = Parameters::new();
    if !d14 {
        control::set_location(
            &mut parameters,
            MessageParameter::LargestObject.code(),
            largest,
            draft,
        )
        .expect("location");
    }
    let ok = ControlMessage::SubscribeOk(IetfSubscribeOk {
        request_id: if draft < Draft::D17 { 4 } else { 0 },
        track_alias: 1,
        expires: 0,
        // Only draft-14 has these fields; later drafts read them back as zero.
        group_order: if d14 {
            moq_transport_compat::common::group_order::ASCENDING
        } else {
            0
        },
        largest: d14.then_some(largest),
        parameters,
        track_extensions: KeyValuePairs::new(),
    });
    control_message(&mut group, "subscribe_ok", draft, ok);

    let publish_namespace = ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 2,
        required_request_id_delta: 0,
        namespace: TrackNamespace::from_path(&Path::new("room/alice")).expect("namespace"),
        parameters: Parameters::new(),
    });
    control_message(&mut group, "publish_namespace", draft, publish_namespace);

    // SUBGROUP_HEADER as the session writes it.
    let header = SubgroupHeader {
        track_alias: 1,
        group_id: 1234,
        subgroup_id: SubgroupId::Zero,
        publisher_priority: Some(PUBLISHER_PRIORITY),
        extensions: false,
        end_of_group: false,
        first_object: true,
    };
    bench_pair(
        &mut group,
        "subgroup_header",
        1,
        &header,
        |h, buf| h.encode(draft, buf).expect("encode"),
        |c| SubgroupHeader::decode(c, draft).expect("decode"),
    );

    // The header and 30 objects of 100 bytes, object IDs 0..30 (delta-coded).
    // The decoder's input is `Bytes`, so a payload is sliced, not copied.
    let objects: Vec<SubgroupObject> = (0..FRAMES)
        .map(|object_id| SubgroupObject {
            object_id,
            extensions: KeyValuePairs::new(),
            content: ObjectContent::Payload(Bytes::from(vec![0x5a; PAYLOAD])),
        })
        .collect();
    let encode = |h: &SubgroupHeader, buf: &mut BytesMut| {
        h.encode(draft, buf).expect("encode");
        let mut writer = SubgroupWriter::new(h);
        for obj in &objects {
            writer.encode(obj, draft, buf).expect("encode");
        }
    };
    let mut buf = BytesMut::new();
    encode(&header, &mut buf);
    let wire = buf.clone().freeze();
    let decode = |wire: &Bytes| {
        let mut c = wire.clone();
        let h = SubgroupHeader::decode(&mut c, draft).expect("decode");
        let mut reader = SubgroupReader::new(&h);
        for _ in 0..FRAMES {
            black_box(reader.decode(&mut c, draft).expect("decode"));
        }
        (h, c)
    };
    let mut c = wire.clone();
    assert_eq!(SubgroupHeader::decode(&mut c, draft), Ok(header));
    let mut reader = SubgroupReader::new(&header);
    for obj in &objects {
        assert_eq!(&reader.decode(&mut c, draft).expect("decode"), obj);
    }
    assert!(!c.has_remaining(), "subgroup: decode left bytes");
    println!("  subgroup_30_objects_100B: {} bytes on the wire", wire.len());

    group.throughput(Throughput::Elements(FRAMES + 1));
    group.bench_function(BenchmarkId::new("subgroup_30_objects_100B", "encode"), |b| {
        b.iter(|| {
            buf.clear();
            encode(black_box(&header), &mut buf);
            black_box(&buf);
        })
    });
    group.bench_function(BenchmarkId::new("subgroup_30_objects_100B", "decode"), |b| {
        b.iter(|| black_box(decode(black_box(&wire))))
    });

    group.finish();
}

fn ietf_d14(c: &mut Criterion) {
    ietf(c, Draft::D14, "ietf_d14");
}

fn ietf_d17(c: &mut Criterion) {
    ietf(c, Draft::D17, "ietf_d17");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = lite04, ietf_d14, ietf_d17
}
criterion_main!(benches);

//! Decode / re-encode checks for every moq-transport-compat decoder.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/ietf_*.rs`) and the
//! stable property test `moq-transport-compat/tests/garbage.rs` (which
//! includes this file with `#[path]`). The properties: no decoder panics;
//! what decodes re-encodes, and the re-encoding decodes to the same value.

use std::fmt::Debug;

use moq_lite::bytes::{Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError, LengthPrefix, encode_framed};
use moq_transport_compat::Draft;
use moq_transport_compat::control::{
    ClientSetup, ControlMessage, Decoded, Fetch, FetchCancel, FetchOk, GoAway, MaxRequestId, Namespace,
    NamespaceDone, Publish, PublishBlocked, PublishDone, PublishNamespace, PublishNamespaceCancel,
    PublishNamespaceDone, PublishOk, RequestError, RequestOk, RequestUpdate, RequestsBlocked, ServerSetup,
    Setup, Subscribe, SubscribeNamespace, SubscribeOk, Unsubscribe, UnsubscribeNamespace,
};
use moq_transport_compat::data::{
    FetchItem, FetchReader, FetchWriter, ObjectContent, ObjectDatagram, StreamHeader, SubgroupHeader,
    SubgroupId, SubgroupObject, SubgroupReader, SubgroupWriter,
};
use moq_transport_compat::varint::put_vi;

fn check<T, E, D>(what: &str, draft: Draft, data: &[u8], encode: E, decode: D)
where
    T: PartialEq + Debug,
    E: Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
    D: Fn(&mut Bytes) -> Result<T, DecodeError>,
{
    let mut buf = Bytes::copy_from_slice(data);
    let Ok(value) = decode(&mut buf) else {
        return;
    };
    let used = data.len() - buf.len();
    assert_eq!(
        decode(&mut Bytes::copy_from_slice(&data[..used])).as_ref(),
        Ok(&value),
        "{what} in {draft}: the {used} bytes it used do not decode alone"
    );
    let mut out = Vec::new();
    if let Err(err) = encode(&value, &mut out) {
        panic!("{what} in {draft}: decoded {value:?} but it does not re-encode: {err}");
    }
    let mut again = Bytes::from(out.clone());
    assert_eq!(
        decode(&mut again).as_ref(),
        Ok(&value),
        "{what} in {draft}: re-encoding {out:02x?}"
    );
    assert!(again.is_empty(), "{what} in {draft}: re-encoding left bytes");
}

/// Control messages of every draft, known and unknown types.
pub fn control(data: &[u8]) {
    for draft in Draft::ALL {
        check(
            "control message",
            draft,
            data,
            |m: &Decoded, out| match m {
                Decoded::Message(m) => m.encode(draft, out),
                Decoded::Unknown {
                    message_type,
                    payload,
                } => {
                    put_vi(draft, *message_type, out)?;
                    encode_framed(out, LengthPrefix::U16, |b: &mut BytesMut| {
                        b.extend_from_slice(payload);
                        Ok(())
                    })
                }
            },
            |c| ControlMessage::decode(c, draft),
        );
    }
}

/// A whole unidirectional stream: its header, then every object to FIN.
#[derive(Debug, PartialEq)]
enum DataStream {
    Subgroup(SubgroupHeader, Vec<SubgroupObject>),
    Fetch(u64, Vec<FetchItem>),
    Other(StreamHeader),
}

fn decode_stream(buf: &mut Bytes, draft: Draft) -> Result<DataStream, DecodeError> {
    Ok(match StreamHeader::decode(buf, draft)? {
        StreamHeader::Subgroup(header) => {
            let mut reader = SubgroupReader::new(&header);
            let mut objects = Vec::new();
            while !buf.is_empty() {
                objects.push(reader.decode(buf, draft)?);
            }
            DataStream::Subgroup(header, objects)
        }
        StreamHeader::Fetch(header) => {
            let mut reader = FetchReader::new();
            let mut items = Vec::new();
            while !buf.is_empty() {
                items.push(reader.decode(buf, draft)?);
            }
            DataStream::Fetch(header.request_id, items)
        }
        other => DataStream::Other(other),
    })
}

fn encode_stream(stream: &DataStream, draft: Draft, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match stream {
        DataStream::Subgroup(header, objects) => {
            header.encode(draft, out)?;
            let mut writer = SubgroupWriter::new(header);
            for object in objects {
                writer.encode(object, draft, out)?;
            }
            Ok(())
        }
        DataStream::Fetch(request_id, items) => {
            StreamHeader::Fetch(moq_transport_compat::data::FetchHeader {
                request_id: *request_id,
            })
            .encode(draft, out)?;
            let mut writer = FetchWriter::new();
            for item in items {
                writer.encode(item, draft, out)?;
            }
            Ok(())
        }
        DataStream::Other(StreamHeader::Unknown(ty)) => put_vi(draft, *ty, out),
        DataStream::Other(header) => header.encode(draft, out),
    }
}

/// Stream headers, subgroup streams, fetch streams and datagrams.
pub fn data(data: &[u8]) {
    for draft in Draft::ALL {
        check(
            "stream header",
            draft,
            data,
            |h: &StreamHeader, out| match h {
                StreamHeader::Unknown(ty) => put_vi(draft, *ty, out),
                h => h.encode(draft, out),
            },
            |c| StreamHeader::decode(c, draft),
        );
        check(
            "data stream",
            draft,
            data,
            |s: &DataStream, out| encode_stream(s, draft, out),
            |c| decode_stream(c, draft),
        );
        check(
            "object datagram",
            draft,
            data,
            |d: &ObjectDatagram, out| d.encode(draft, out),
            |c| ObjectDatagram::decode(c, draft),
        );
    }
}

/// Every IETF decoder on the same bytes.
pub fn all(bytes: &[u8]) {
    control(bytes);
    data(bytes);
}

/// Valid encodings of every control message and data stream form, for
/// mutation (and as a fuzz corpus).
pub fn seeds() -> Vec<Vec<u8>> {
    let messages = [
        ControlMessage::ClientSetup(ClientSetup::default()),
        ControlMessage::ServerSetup(ServerSetup::default()),
        ControlMessage::Setup(Setup::default()),
        ControlMessage::GoAway(GoAway::default()),
        ControlMessage::MaxRequestId(MaxRequestId::default()),
        ControlMessage::RequestsBlocked(RequestsBlocked::default()),
        ControlMessage::RequestOk(RequestOk::default()),
        ControlMessage::RequestError(RequestError::default()),
        ControlMessage::Subscribe(Subscribe::default()),
        ControlMessage::SubscribeOk(SubscribeOk::default()),
        ControlMessage::RequestUpdate(RequestUpdate::default()),
        ControlMessage::Unsubscribe(Unsubscribe::default()),
        ControlMessage::PublishDone(PublishDone::default()),
        ControlMessage::Publish(Publish::default()),
        ControlMessage::PublishOk(PublishOk::default()),
        ControlMessage::PublishError(RequestError::default()),
        ControlMessage::Fetch(Fetch::default()),
        ControlMessage::FetchOk(FetchOk::default()),
        ControlMessage::FetchError(RequestError::default()),
        ControlMessage::FetchCancel(FetchCancel::default()),
        ControlMessage::TrackStatus(Subscribe::default()),
        ControlMessage::TrackStatusOk(SubscribeOk::default()),
        ControlMessage::TrackStatusError(RequestError::default()),
        ControlMessage::PublishNamespace(PublishNamespace::default()),
        ControlMessage::PublishNamespaceError(RequestError::default()),
        ControlMessage::PublishNamespaceDone(PublishNamespaceDone::default()),
        ControlMessage::PublishNamespaceCancel(PublishNamespaceCancel::default()),
        ControlMessage::SubscribeNamespace(SubscribeNamespace::default()),
        ControlMessage::SubscribeNamespaceOk(RequestOk::default()),
        ControlMessage::SubscribeNamespaceError(RequestError::default()),
        ControlMessage::UnsubscribeNamespace(UnsubscribeNamespace::default()),
        ControlMessage::Namespace(Namespace::default()),
        ControlMessage::NamespaceDone(NamespaceDone::default()),
        ControlMessage::PublishBlocked(PublishBlocked::default()),
    ];
    let mut out = Vec::new();
    for draft in Draft::ALL {
        for message in &messages {
            let mut buf = Vec::new();
            if message.encode(draft, &mut buf).is_ok() {
                out.push(buf);
            }
        }
        let header = SubgroupHeader {
            track_alias: 1,
            group_id: 5,
            subgroup_id: SubgroupId::Explicit(2),
            publisher_priority: Some(3),
            extensions: false,
            end_of_group: true,
            first_object: true,
        };
        let objects = vec![
            SubgroupObject {
                object_id: 0,
                content: ObjectContent::Payload(Bytes::from_static(b"abc")),
                ..Default::default()
            },
            SubgroupObject {
                object_id: 4,
                ..Default::default()
            },
        ];
        let items = vec![FetchItem::Object(moq_transport_compat::data::FetchObject {
            group_id: 2,
            subgroup_id: Some(0),
            object_id: 1,
            publisher_priority: 5,
            content: ObjectContent::Payload(Bytes::from_static(b"xyz")),
            ..Default::default()
        })];
        let datagram = ObjectDatagram {
            track_alias: 1,
            group_id: 2,
            object_id: 3,
            publisher_priority: Some(4),
            content: ObjectContent::Payload(Bytes::from_static(b"payload")),
            ..Default::default()
        };
        for stream in [DataStream::Subgroup(header, objects), DataStream::Fetch(9, items)] {
            let mut buf = Vec::new();
            if encode_stream(&stream, draft, &mut buf).is_ok() {
                out.push(buf);
            }
        }
        let mut buf = Vec::new();
        if datagram.encode(draft, &mut buf).is_ok() {
            out.push(buf);
        }
    }
    out
}

//! SUBGROUP_HEADER and the objects of a subgroup stream.
//!
//! The header type is a bit field in every draft (made explicit in
//! draft-16): 0x10 always set; 0x01 extensions present in every object;
//! bits 0x06 the Subgroup ID mode (0: zero, 1: the first object's ID, 2:
//! explicit field, 3: reserved); 0x08 the subgroup holds the group's last
//! object; 0x20 (draft-15+) no Publisher Priority field, inherit the
//! subscription's; 0x40 (draft-18+, FIRST_OBJECT) the stream starts at the
//! subgroup's first object ever published (clear: partway through). Draft-14
//! defines 0x10-0x15 and 0x18-0x1D; draft-15 adds 0x30-0x35 and 0x38-0x3D;
//! draft-18 the same again with 0x40 set (0x50-0x5D, 0x70-0x7D). Other
//! values are not subgroup headers.
//!
//! Within a subgroup, object IDs are delta-coded in every draft: the first
//! object writes its ID, each later one `ID - previous ID - 1`.
//! [`SubgroupReader`] / [`SubgroupWriter`] keep that state.

use bytes::{Buf, BufMut, Bytes};
use moq_lite::coding::{DecodeError, EncodeError};

use super::object::{ObjectContent, check_extensions};
use crate::Draft;
use crate::kvp::KeyValuePairs;
use crate::varint::{get_u8, get_vi, put_vi};

/// How a subgroup's ID is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubgroupId {
    /// Mode 0: the Subgroup ID is 0.
    #[default]
    Zero,
    /// Mode 1: the Subgroup ID is the first object's ID.
    FirstObject,
    /// Mode 2: the Subgroup ID field is present.
    Explicit(u64),
}

/// SUBGROUP_HEADER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubgroupHeader {
    /// The track alias the publisher chose.
    pub track_alias: u64,
    /// The group.
    pub group_id: u64,
    /// The subgroup.
    pub subgroup_id: SubgroupId,
    /// Publisher Priority; `None` (draft-15+) inherits the subscription's.
    pub publisher_priority: Option<u8>,
    /// Whether every object carries an extension header block.
    pub extensions: bool,
    /// Whether the last object before FIN is the group's last object.
    pub end_of_group: bool,
    /// Draft-18+: the stream starts at the subgroup's first object
    /// (FIRST_OBJECT). Earlier drafts have no bit for it: nothing is
    /// written, and a header read is taken to start there.
    pub first_object: bool,
}

impl SubgroupHeader {
    /// The stream type this header is written with in `draft`.
    pub fn type_code(&self, draft: Draft) -> u64 {
        let mode = match self.subgroup_id {
            SubgroupId::Zero => 0,
            SubgroupId::FirstObject => 1,
            SubgroupId::Explicit(_) => 2,
        };
        0x10 | (self.extensions as u64)
            | (mode << 1)
            | if self.end_of_group { 0x08 } else { 0 }
            | if self.publisher_priority.is_none() {
                0x20
            } else {
                0
            }
            | if self.first_object && draft.data_plane_18() {
                0x40
            } else {
                0
            }
    }

    /// Writes the header, type first.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        if draft == Draft::D14 && self.publisher_priority.is_none() {
            return Err(EncodeError::Version("draft-14 subgroups always carry a priority"));
        }
        put_vi(draft, self.type_code(draft), buf)?;
        put_vi(draft, self.track_alias, buf)?;
        put_vi(draft, self.group_id, buf)?;
        if let SubgroupId::Explicit(id) = self.subgroup_id {
            put_vi(draft, id, buf)?;
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
        Ok(())
    }

    /// Reads the rest of a header whose stream type `ty` was already read;
    /// `Ok(None)` if `ty` is not a subgroup type in `draft`.
    pub fn decode_after_type<B: Buf>(
        ty: u64,
        buf: &mut B,
        draft: Draft,
    ) -> Result<Option<Self>, DecodeError> {
        let max = match draft {
            Draft::D14 => 0x1f,
            d if d.data_plane_18() => 0x7f,
            _ => 0x3f,
        };
        if ty > max || ty & 0x10 == 0 || (ty >> 1) & 0x3 == 3 {
            return Ok(None);
        }
        let track_alias = get_vi(buf, draft)?;
        let group_id = get_vi(buf, draft)?;
        let subgroup_id = match (ty >> 1) & 0x3 {
            0 => SubgroupId::Zero,
            1 => SubgroupId::FirstObject,
            _ => SubgroupId::Explicit(get_vi(buf, draft)?),
        };
        let publisher_priority = if ty & 0x20 == 0 { Some(get_u8(buf)?) } else { None };
        Ok(Some(SubgroupHeader {
            track_alias,
            group_id,
            subgroup_id,
            publisher_priority,
            extensions: ty & 0x01 != 0,
            end_of_group: ty & 0x08 != 0,
            first_object: ty & 0x40 != 0 || !draft.data_plane_18(),
        }))
    }

    /// Reads a header, type first; a type that is not a subgroup header is invalid.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, draft)?;
        Self::decode_after_type(ty, buf, draft)?.ok_or(DecodeError::Invalid("not a subgroup header type"))
    }
}

/// One object on a subgroup stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubgroupObject {
    /// The object ID (absolute; delta-coded on the wire).
    pub object_id: u64,
    /// Extension headers; must be empty unless the header says extensions.
    pub extensions: KeyValuePairs,
    /// The payload or status.
    pub content: ObjectContent,
}

/// Writes the objects of one subgroup stream, delta-coding object IDs.
#[derive(Debug, Clone, Default)]
pub struct SubgroupWriter {
    extensions: bool,
    prev: Option<u64>,
}

impl SubgroupWriter {
    /// A writer for objects after `header`.
    pub fn new(header: &SubgroupHeader) -> Self {
        SubgroupWriter {
            extensions: header.extensions,
            prev: None,
        }
    }

    /// Writes one object; its ID must be above the previous object's.
    pub fn encode<B: BufMut>(
        &mut self,
        obj: &SubgroupObject,
        draft: Draft,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let delta = match self.prev {
            None => obj.object_id,
            Some(p) => obj
                .object_id
                .checked_sub(p)
                .and_then(|d| d.checked_sub(1))
                .ok_or(EncodeError::Invalid("object IDs must increase within a subgroup"))?,
        };
        if !self.extensions && !obj.extensions.is_empty() {
            return Err(EncodeError::Invalid("extensions on a subgroup without them"));
        }
        if !check_extensions(&obj.extensions, obj.content.status(), draft) {
            return Err(EncodeError::Invalid("extensions on an object with this status"));
        }
        put_vi(draft, delta, buf)?;
        if self.extensions {
            obj.extensions.encode_block(draft, buf)?;
        }
        obj.content.encode(draft, true, buf)?;
        self.prev = Some(obj.object_id);
        Ok(())
    }
}

/// Reads the objects of one subgroup stream, undoing the delta coding.
#[derive(Debug, Clone, Default)]
pub struct SubgroupReader {
    extensions: bool,
    prev: Option<u64>,
}

impl SubgroupReader {
    /// A reader for objects after `header`.
    pub fn new(header: &SubgroupHeader) -> Self {
        SubgroupReader {
            extensions: header.extensions,
            prev: None,
        }
    }

    /// Reads one object. The reader's state only advances on success, so a
    /// [`DecodeError::Short`] can be retried with more bytes.
    pub fn decode(&mut self, buf: &mut Bytes, draft: Draft) -> Result<SubgroupObject, DecodeError> {
        let mut c = buf.clone();
        let delta = get_vi(&mut c, draft)?;
        let object_id = match self.prev {
            None => delta,
            Some(p) => p
                .checked_add(delta)
                .and_then(|v| v.checked_add(1))
                .ok_or(DecodeError::Invalid("object ID overflows"))?,
        };
        let extensions = if self.extensions {
            KeyValuePairs::decode_block(&mut c, draft)?
        } else {
            KeyValuePairs::new()
        };
        let content = ObjectContent::decode(&mut c, draft, true)?;
        if !check_extensions(&extensions, content.status(), draft) {
            return Err(DecodeError::Invalid("extensions on an object with this status"));
        }
        self.prev = Some(object_id);
        *buf = c;
        Ok(SubgroupObject {
            object_id,
            extensions,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ObjectStatus, StreamHeader};
    use crate::kvp::tests::any_pairs;
    use proptest::prelude::*;

    fn header_bytes(h: &SubgroupHeader, d: Draft) -> Vec<u8> {
        let mut out = Vec::new();
        h.encode(d, &mut out).unwrap();
        out
    }

    #[test]
    fn every_header_type() {
        for d in Draft::ALL {
            // One byte: QUIC varints stop at 0x3f, vi64 at 0x7f.
            let top = if d.request_streams() { 0x80 } else { 0x40 };
            for ty in (0u64..top).filter(|&t| t != 0x05) {
                let mut bytes = vec![ty as u8, 0x02, 0x05]; // type, alias 2, group 5
                let mode = (ty >> 1) & 3;
                if mode == 2 {
                    bytes.push(0x07); // explicit subgroup 7
                }
                if ty & 0x20 == 0 {
                    bytes.push(0x80); // priority 128
                }
                let valid = ty & 0x10 != 0
                    && mode != 3
                    && (d > Draft::D14 || ty < 0x20)
                    && (d.data_plane_18() || ty < 0x40);
                let got = StreamHeader::decode(&mut &bytes[..], d).unwrap();
                if !valid {
                    assert_eq!(got, StreamHeader::Unknown(ty), "{ty:#x} in {d}");
                    continue;
                }
                let StreamHeader::Subgroup(h) = got else {
                    panic!("{ty:#x}")
                };
                assert_eq!(h.type_code(d), ty);
                assert_eq!(h.first_object, ty & 0x40 != 0 || !d.data_plane_18());
                assert_eq!(h.track_alias, 2);
                assert_eq!(h.group_id, 5);
                assert_eq!(h.extensions, ty & 1 == 1);
                assert_eq!(h.end_of_group, ty & 8 == 8);
                assert_eq!(h.publisher_priority, (ty & 0x20 == 0).then_some(0x80));
                assert_eq!(
                    h.subgroup_id,
                    [SubgroupId::Zero, SubgroupId::FirstObject, SubgroupId::Explicit(7)][mode as usize]
                );
                assert_eq!(header_bytes(&h, d), bytes);
                for n in 0..bytes.len() {
                    assert_eq!(StreamHeader::decode(&mut &bytes[..n], d), Err(DecodeError::Short));
                }
            }
        }
    }

    // Trap: object IDs within a subgroup are delta-coded (draft-14 and later).
    #[test]
    fn d14_delta_coded_objects_and_spec_example() {
        let h = SubgroupHeader {
            track_alias: 2,
            group_id: 0,
            subgroup_id: SubgroupId::Explicit(0),
            publisher_priority: Some(0),
            extensions: true,
            end_of_group: false,
            first_object: true,
        };
        let mut ext = KeyValuePairs::new();
        ext.set_int(4, 2_186_796_243);
        ext.set_bytes(77, &b"traceID:123456"[..]);
        let objects = [
            SubgroupObject {
                object_id: 0,
                extensions: ext,
                content: ObjectContent::Payload(Bytes::from_static(b"abcd")),
            },
            SubgroupObject {
                object_id: 1,
                extensions: KeyValuePairs::new(),
                content: ObjectContent::Payload(Bytes::from_static(b"efgh")),
            },
            SubgroupObject {
                object_id: 5,
                extensions: KeyValuePairs::new(),
                content: ObjectContent::Status(ObjectStatus::EndOfGroup),
            },
        ];
        // The draft-14 section 10.5 example (type 0x15), plus an end-of-group object.
        #[rustfmt::skip]
        let expected = [
            0x15,             // SUBGROUP_HEADER: explicit subgroup ID, extensions
            0x02, 0x00, 0x00, // Track Alias 2, Group 0, Subgroup 0
            0x00,             // Publisher Priority 0
            0x00,             // Object ID Delta 0: object 0
            0x1a,             // Extension Headers Length 26 (the draft's example says 33: see the crate docs)
            0x04, 0xc0, 0x00, 0x00, 0x00, 0x82, 0x57, 0xdc, 0xd3, // type 4 = 2186796243 = 0x8257dcd3 (8-byte varint)
            0x40, 0x4d, 0x0e, b't', b'r', b'a', b'c', b'e', b'I', b'D', b':', b'1', b'2', b'3', b'4', b'5', b'6',
                              // type 77 (two-byte varint), length 14, "traceID:123456"
            0x04, b'a', b'b', b'c', b'd', // Payload Length 4, "abcd"
            0x00,             // Object ID Delta 0: object 1 (previous + 1 + 0)
            0x00,             // no extensions
            0x04, b'e', b'f', b'g', b'h', // "efgh"
            0x03,             // Object ID Delta 3: object 5 = 1 + 1 + 3
            0x00,             // no extensions
            0x00, 0x03,       // Payload Length 0, status End of Group
        ];
        let mut out = Vec::new();
        h.encode(Draft::D14, &mut out).unwrap();
        let mut w = SubgroupWriter::new(&h);
        for o in &objects {
            w.encode(o, Draft::D14, &mut out).unwrap();
        }
        assert_eq!(out, expected);

        let mut buf = Bytes::copy_from_slice(&expected);
        assert_eq!(SubgroupHeader::decode(&mut buf, Draft::D14), Ok(h));
        let mut r = SubgroupReader::new(&h);
        for o in &objects {
            // Every strict prefix of the object is Short and leaves the reader as it was.
            let len = {
                let mut probe = r.clone();
                let mut c = buf.clone();
                probe.decode(&mut c, Draft::D14).unwrap();
                buf.len() - c.len()
            };
            for n in 0..len {
                let mut part = buf.slice(..n);
                let mut probe = r.clone();
                assert_eq!(probe.decode(&mut part, Draft::D14), Err(DecodeError::Short));
                assert_eq!(part.len(), n, "a short decode consumes nothing");
            }
            assert_eq!(r.decode(&mut buf, Draft::D14).as_ref(), Ok(o));
        }
        assert!(buf.is_empty());
        // Object IDs must increase.
        let mut w = SubgroupWriter::new(&h);
        w.encode(&objects[1], Draft::D14, &mut Vec::new()).unwrap();
        assert!(w.encode(&objects[0], Draft::D14, &mut Vec::new()).is_err());
    }

    #[test]
    fn d15_default_priority_and_status_rules() {
        let h = SubgroupHeader {
            track_alias: 1,
            group_id: 9,
            subgroup_id: SubgroupId::FirstObject,
            publisher_priority: None,
            extensions: false,
            end_of_group: true,
            first_object: true,
        };
        // 0x3A: 0x10 | mode 1 << 1 | end of group 0x08 | no priority 0x20; alias 1, group 9
        assert_eq!(header_bytes(&h, Draft::D15), [0x3a, 0x01, 0x09]);
        assert!(h.encode(Draft::D14, &mut Vec::new()).is_err());
        // Does Not Exist (0x1): a status in -15, invalid in -16.
        let obj = [0x03, 0x00, 0x01]; // delta 3, length 0, status 1
        let mut r = SubgroupReader::new(&h);
        let o = r.decode(&mut Bytes::copy_from_slice(&obj), Draft::D15).unwrap();
        assert_eq!(o.content, ObjectContent::Status(ObjectStatus::DoesNotExist));
        let mut r = SubgroupReader::new(&h);
        assert!(matches!(
            r.decode(&mut Bytes::copy_from_slice(&obj), Draft::D16),
            Err(DecodeError::Invalid(_))
        ));
        // Extensions on an End of Group object: allowed in -14, refused from -15.
        let h = SubgroupHeader {
            extensions: true,
            publisher_priority: Some(1),
            ..h
        };
        let obj = [0x00, 0x02, 0x02, 0x01, 0x00, 0x03]; // delta 0, ext block (type 2 = 1), length 0, End of Group
        assert!(
            SubgroupReader::new(&h)
                .decode(&mut Bytes::copy_from_slice(&obj), Draft::D14)
                .is_ok()
        );
        assert!(
            SubgroupReader::new(&h)
                .decode(&mut Bytes::copy_from_slice(&obj), Draft::D15)
                .is_err()
        );
    }

    #[test]
    fn d17_varints() {
        let h = SubgroupHeader {
            track_alias: 200,
            group_id: 1,
            subgroup_id: SubgroupId::Zero,
            publisher_priority: Some(3),
            extensions: false,
            end_of_group: false,
            first_object: true,
        };
        // type 0x10, alias 200 as vi64 0x80c8, group 1, priority 3
        assert_eq!(header_bytes(&h, Draft::D17), [0x10, 0x80, 0xc8, 0x01, 0x03]);
        let mut out = Vec::new();
        let obj = SubgroupObject {
            object_id: 100,
            extensions: KeyValuePairs::new(),
            content: ObjectContent::Payload(Bytes::from_static(b"x")),
        };
        SubgroupWriter::new(&h)
            .encode(&obj, Draft::D17, &mut out)
            .unwrap();
        // Object ID 100 (fits one vi64 byte), length 1, "x"
        assert_eq!(out, [0x64, 0x01, b'x']);
    }

    // Draft-18 section "Subgroup Header": FIRST_OBJECT (0x40) says the
    // stream starts at the subgroup's first object; it changes no encoding.
    #[test]
    fn d18_first_object() {
        let h = SubgroupHeader {
            track_alias: 1,
            group_id: 5,
            subgroup_id: SubgroupId::Zero,
            publisher_priority: Some(0x80),
            extensions: false,
            end_of_group: true,
            first_object: true,
        };
        let mut out = header_bytes(&h, Draft::D18);
        // 0x58 = 0x10 | END_OF_GROUP 0x08 | FIRST_OBJECT 0x40; draft-17 has no bit.
        assert_eq!(out, [0x58, 0x01, 0x05, 0x80]);
        assert_eq!(header_bytes(&h, Draft::D17), [0x18, 0x01, 0x05, 0x80]);
        let mut w = SubgroupWriter::new(&h);
        for (id, payload) in [(0, &b"hi"[..]), (1, b"!")] {
            let obj = SubgroupObject {
                object_id: id,
                extensions: KeyValuePairs::new(),
                content: ObjectContent::Payload(Bytes::copy_from_slice(payload)),
            };
            w.encode(&obj, Draft::D18, &mut out).unwrap();
        }
        assert_eq!(
            out,
            [0x58, 0x01, 0x05, 0x80, 0x00, 0x02, b'h', b'i', 0x00, 0x01, b'!']
        );
        // Partway through the subgroup: the bit is clear.
        let partway = SubgroupHeader {
            first_object: false,
            ..h
        };
        assert_eq!(header_bytes(&partway, Draft::D18), [0x18, 0x01, 0x05, 0x80]);
        let StreamHeader::Subgroup(back) =
            StreamHeader::decode(&mut &[0x18, 0x01, 0x05, 0x80][..], Draft::D18).unwrap()
        else {
            panic!("not a subgroup")
        };
        assert!(!back.first_object);
    }

    fn any_object() -> impl Strategy<Value = (u64, KeyValuePairs, Option<Vec<u8>>, u8)> {
        (
            0u64..1000,
            any_pairs(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            0u8..3,
        )
    }

    proptest! {
        #[test]
        fn round_trips(objs in proptest::collection::vec(any_object(), 0..5), ext in any::<bool>()) {
            for d in Draft::ALL {
                let h = SubgroupHeader { track_alias: 1, group_id: 2, subgroup_id: SubgroupId::Explicit(3),
                    publisher_priority: Some(4), extensions: ext, end_of_group: false, first_object: true };
                let mut id = 0u64;
                let mut written = Vec::new();
                let mut out = Vec::new();
                h.encode(d, &mut out).unwrap();
                let mut w = SubgroupWriter::new(&h);
                for (gap, pairs, payload, status) in &objs {
                    id += gap + 1;
                    let content = match payload {
                        Some(p) => ObjectContent::Payload(p.clone().into()),
                        None => ObjectContent::Status([ObjectStatus::EndOfGroup, ObjectStatus::EndOfTrack, ObjectStatus::EndOfGroup][*status as usize]),
                    };
                    let extensions = if ext && content.status() == ObjectStatus::Normal { pairs.clone() } else { KeyValuePairs::new() };
                    let o = SubgroupObject { object_id: id, extensions, content };
                    w.encode(&o, d, &mut out).unwrap();
                    written.push(o);
                }
                let mut buf = Bytes::from(out);
                prop_assert_eq!(SubgroupHeader::decode(&mut buf, d), Ok(h));
                let mut r = SubgroupReader::new(&h);
                for o in &written {
                    let got = r.decode(&mut buf, d).unwrap();
                    prop_assert_eq!(got.object_id, o.object_id);
                    prop_assert_eq!(&got.content, &o.content);
                    prop_assert_eq!(got.extensions.0.len(), o.extensions.0.len());
                }
                prop_assert!(buf.is_empty());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..48), ext in any::<bool>()) {
            for d in Draft::ALL {
                let _ = SubgroupHeader::decode(&mut &bytes[..], d);
                let h = SubgroupHeader { extensions: ext, ..Default::default() };
                let mut r = SubgroupReader::new(&h);
                let mut buf = Bytes::copy_from_slice(&bytes);
                while r.decode(&mut buf, d).is_ok() {}
            }
        }
    }
}

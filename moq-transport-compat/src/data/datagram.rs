//! OBJECT_DATAGRAM: one object in one QUIC datagram.
//!
//! The type is a bit field: 0x01 extensions present (an empty block is a
//! violation), 0x02 end of group, 0x04 no Object ID (it is 0), 0x08
//! (draft-15+) no Publisher Priority (inherit the subscription's), 0x20 an
//! Object Status instead of a payload (not combinable with 0x02). Draft-14
//! defines 0x00-0x07, 0x20 and 0x21; drafts 15 to 17 add 0x08-0x0F, 0x24,
//! 0x25, 0x28, 0x29, 0x2C and 0x2D. Draft-15's table marks 0x2C/0x2D as
//! having an Object ID, contradicting the bit pattern that draft-16 spells
//! out; we follow the bits (no Object ID). The payload is the rest of the
//! datagram.

use bytes::{Buf, BufMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::object::{ObjectContent, ObjectStatus, check_extensions};
use crate::Draft;
use crate::kvp::KeyValuePairs;
use crate::varint::{get_u8, get_vi, put_vi};

/// An OBJECT_DATAGRAM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectDatagram {
    /// The track alias.
    pub track_alias: u64,
    /// The group.
    pub group_id: u64,
    /// The object (written only when not 0, where the type allows).
    pub object_id: u64,
    /// Publisher Priority; `None` (draft-15+) inherits the subscription's.
    pub publisher_priority: Option<u8>,
    /// Extension headers (empty = none).
    pub extensions: KeyValuePairs,
    /// Whether this is the group's last object (payload datagrams only).
    pub end_of_group: bool,
    /// The payload, or a status. [`ObjectContent::Status`] with Normal is
    /// a status datagram saying Normal, distinct from an empty payload.
    pub content: ObjectContent,
}

fn valid_type(ty: u64, draft: Draft) -> bool {
    if ty & !0x2f != 0 {
        return false;
    }
    let status = ty & 0x20 != 0;
    if status && ty & 0x02 != 0 {
        return false;
    }
    if draft == Draft::D14 {
        // 0x00-0x07 and 0x20-0x21: no priority omission, no status without Object ID.
        return ty & 0x08 == 0 && !(status && ty & 0x04 != 0);
    }
    true
}

impl ObjectDatagram {
    /// The datagram type this object is written with in `draft`.
    pub fn type_code(&self, draft: Draft) -> u64 {
        let status = matches!(self.content, ObjectContent::Status(_));
        let mut ty = 0;
        if !self.extensions.is_empty() {
            ty |= 0x01;
        }
        if self.end_of_group && !status {
            ty |= 0x02;
        }
        if self.object_id == 0 && !(status && draft == Draft::D14) {
            ty |= 0x04;
        }
        if self.publisher_priority.is_none() {
            ty |= 0x08;
        }
        if status {
            ty |= 0x20;
        }
        ty
    }

    /// Writes the whole datagram.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        let ty = self.type_code(draft);
        if !valid_type(ty, draft) {
            return Err(EncodeError::Version("datagram form not in this draft"));
        }
        if self.end_of_group && ty & 0x20 != 0 {
            return Err(EncodeError::Invalid("a status datagram cannot end a group"));
        }
        if !check_extensions(&self.extensions, self.content.status(), draft) {
            return Err(EncodeError::Invalid("extensions on an object with this status"));
        }
        put_vi(draft, ty, buf)?;
        put_vi(draft, self.track_alias, buf)?;
        put_vi(draft, self.group_id, buf)?;
        if ty & 0x04 == 0 {
            put_vi(draft, self.object_id, buf)?;
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
        if ty & 0x01 != 0 {
            self.extensions.encode_block(draft, buf)?;
        }
        match &self.content {
            ObjectContent::Status(s) => s.encode(draft, buf)?,
            ObjectContent::Payload(p) => buf.put_slice(p),
        }
        Ok(())
    }

    /// Whether `datagram` is draft-18 padding, to be dropped unread
    /// (section "Padding").
    pub fn is_padding(datagram: &[u8], draft: Draft) -> bool {
        draft.data_plane_18() && get_vi(&mut &datagram[..], draft) == Ok(super::PADDING_DATAGRAM_TYPE)
    }

    /// Reads a whole datagram; an undefined type is [`DecodeError::Invalid`].
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, draft)?;
        if !valid_type(ty, draft) {
            return Err(DecodeError::Invalid("datagram type"));
        }
        let track_alias = get_vi(buf, draft)?;
        let group_id = get_vi(buf, draft)?;
        let object_id = if ty & 0x04 == 0 { get_vi(buf, draft)? } else { 0 };
        let publisher_priority = if ty & 0x08 == 0 { Some(get_u8(buf)?) } else { None };
        let extensions = if ty & 0x01 != 0 {
            let e = KeyValuePairs::decode_block(buf, draft)?;
            if e.is_empty() {
                return Err(DecodeError::Invalid("empty extension block in a datagram"));
            }
            e
        } else {
            KeyValuePairs::new()
        };
        let content = if ty & 0x20 != 0 {
            ObjectContent::Status(ObjectStatus::decode(buf, draft)?)
        } else {
            ObjectContent::Payload(buf.copy_to_bytes(buf.remaining()))
        };
        if !check_extensions(&extensions, content.status(), draft) {
            return Err(DecodeError::Invalid("extensions on an object with this status"));
        }
        Ok(ObjectDatagram {
            track_alias,
            group_id,
            object_id,
            publisher_priority,
            extensions,
            end_of_group: ty & 0x02 != 0,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn check(m: &ObjectDatagram, d: Draft, expected: &[u8]) {
        let mut out = Vec::new();
        m.encode(d, &mut out).unwrap();
        assert_eq!(out, expected, "{d}");
        assert_eq!(ObjectDatagram::decode(&mut &expected[..], d).as_ref(), Ok(m));
    }

    #[test]
    fn d14_types() {
        let mut m = ObjectDatagram {
            track_alias: 2,
            group_id: 3,
            object_id: 4,
            publisher_priority: Some(9),
            content: ObjectContent::Payload(Bytes::from_static(b"hi")),
            ..Default::default()
        };
        // 0x00: alias 2, group 3, object 4, priority 9, payload "hi" (rest of the datagram)
        check(&m, Draft::D14, &[0x00, 0x02, 0x03, 0x04, 0x09, b'h', b'i']);
        m.end_of_group = true;
        m.object_id = 0;
        // 0x06: end of group, no Object ID
        check(&m, Draft::D14, &[0x06, 0x02, 0x03, 0x09, b'h', b'i']);
        m.extensions.set_int(2, 1);
        // 0x07: + extensions: block length 2, type 2 = 1
        check(
            &m,
            Draft::D14,
            &[0x07, 0x02, 0x03, 0x09, 0x02, 0x02, 0x01, b'h', b'i'],
        );
        let s = ObjectDatagram {
            track_alias: 2,
            group_id: 3,
            object_id: 0,
            publisher_priority: Some(9),
            content: ObjectContent::Status(ObjectStatus::EndOfTrack),
            ..Default::default()
        };
        // 0x20: status datagram; Object ID 0 is written (no 0x24 in -14), status End of Track
        check(&s, Draft::D14, &[0x20, 0x02, 0x03, 0x00, 0x09, 0x04]);
        // 0x24 in draft-15: Object ID omitted
        check(&s, Draft::D15, &[0x24, 0x02, 0x03, 0x09, 0x04]);
        // Undefined in -14: 0x08 (no priority), 0x24; everywhere: 0x22 (status + end of group).
        for ty in [0x08u8, 0x24] {
            assert!(ObjectDatagram::decode(&mut &[ty, 0, 0, 0, 0][..], Draft::D14).is_err());
        }
        assert!(ObjectDatagram::decode(&mut &[0x22, 0, 0, 0, 0, 0][..], Draft::D16).is_err());
        // Extensions flag with an empty block.
        assert!(ObjectDatagram::decode(&mut &[0x01, 0, 0, 0, 0, 0][..], Draft::D14).is_err());
    }

    #[test]
    fn d18_padding() {
        let padding = [0xf0, 0x13, 0x2b, 0x3e, 0x29, 0x00, 0x00];
        assert!(ObjectDatagram::is_padding(&padding, Draft::D18));
        assert!(!ObjectDatagram::is_padding(&padding, Draft::D17));
        assert!(!ObjectDatagram::is_padding(&[0x00, 0x01, 0x02, 0x03], Draft::D18));
        assert!(!ObjectDatagram::is_padding(&[], Draft::D18));
        // Not an object datagram: what reaches `decode` is refused.
        assert!(ObjectDatagram::decode(&mut &padding[..], Draft::D18).is_err());
    }

    #[test]
    fn d15_default_priority() {
        let m = ObjectDatagram {
            track_alias: 1,
            group_id: 1,
            object_id: 0,
            publisher_priority: None,
            content: ObjectContent::Payload(Bytes::from_static(b"x")),
            ..Default::default()
        };
        // 0x0C: no Object ID (0x04), no priority (0x08)
        for d in [Draft::D15, Draft::D16, Draft::D17] {
            check(&m, d, &[0x0c, 0x01, 0x01, b'x']);
        }
        assert!(m.encode(Draft::D14, &mut Vec::new()).is_err());
        // 0x2C: status, no Object ID, no priority; status End of Group (0x3)
        let s = ObjectDatagram {
            content: ObjectContent::Status(ObjectStatus::EndOfGroup),
            ..m
        };
        check(&s, Draft::D16, &[0x2c, 0x01, 0x01, 0x03]);
    }

    proptest! {
        #[test]
        fn round_trips(alias in 0u64..1 << 40, g in 0u64..1 << 40, o in 0u64..3, p in proptest::option::of(any::<u8>()),
                       eog in any::<bool>(), status in proptest::option::of(0u8..3),
                       payload in proptest::collection::vec(any::<u8>(), 0..8), ext in any::<bool>()) {
            for d in Draft::ALL {
                let content = match status {
                    Some(s) => ObjectContent::Status([ObjectStatus::Normal, ObjectStatus::EndOfGroup, ObjectStatus::EndOfTrack][s as usize]),
                    None => ObjectContent::Payload(payload.clone().into()),
                };
                let mut extensions = KeyValuePairs::new();
                if ext && content.status() == ObjectStatus::Normal { extensions.set_int(4, 1); }
                let m = ObjectDatagram { track_alias: alias, group_id: g, object_id: o, publisher_priority: p,
                    end_of_group: eog && status.is_none(), extensions, content };
                let mut out = Vec::new();
                if m.encode(d, &mut out).is_ok() {
                    prop_assert_eq!(ObjectDatagram::decode(&mut &out[..], d), Ok(m));
                }
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            for d in Draft::ALL {
                if let Ok(m) = ObjectDatagram::decode(&mut &bytes[..], d) {
                    let mut out = Vec::new();
                    m.encode(d, &mut out).unwrap();
                    prop_assert_eq!(ObjectDatagram::decode(&mut &out[..], d), Ok(m));
                }
            }
        }
    }
}

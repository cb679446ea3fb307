//! Group streams: the GROUP header, then FRAMEs.
//!
//! A group stream (unidirectional, type 0x0) starts with GROUP, a normal
//! length-prefixed message. Each FRAME that follows is `Message Length (i)`
//! and the payload; that length is the only header, so [`FrameHeader`] is
//! decoded on its own and the session streams the payload through in chunks
//! instead of buffering a whole frame. Fetch streams (-03+) carry FRAMEs too,
//! without a GROUP. The encoding is the same in every version.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// GROUP: which subscription a group stream serves and the group's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Group {
    /// The Subscribe ID of the subscription this group answers.
    pub subscribe: u64,
    /// The group sequence number.
    pub sequence: u64,
}

impl Message for Group {
    const NAME: &'static str = "GROUP";

    fn exists_in(_version: Version) -> bool {
        true
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.subscribe.encode(buf)?;
        self.sequence.encode(buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(Group {
            subscribe: u64::decode(buf)?,
            sequence: u64::decode(buf)?,
        })
    }
}

/// The length prefix of a FRAME: how many payload bytes follow.
///
/// No limit is applied here, because nothing is allocated from it: the
/// session copies the payload as it arrives and decides how much of a
/// frame it is willing to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// The payload size in bytes.
    pub size: u64,
}

impl FrameHeader {
    /// Writes the header of a frame of `size` bytes.
    pub fn encode<B: BufMut>(&self, _version: Version, buf: &mut B) -> Result<(), EncodeError> {
        self.size.encode(buf)
    }

    /// Reads a frame header; the payload is left in `buf`.
    pub fn decode<B: Buf>(buf: &mut B, _version: Version) -> Result<Self, DecodeError> {
        Ok(FrameHeader {
            size: u64::decode(buf)?,
        })
    }

    /// Writes a whole frame: the header, then `payload`.
    pub fn encode_frame<B: BufMut>(payload: &[u8], version: Version, buf: &mut B) -> Result<(), EncodeError> {
        FrameHeader {
            size: payload.len() as u64,
        }
        .encode(version, buf)?;
        buf.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn group_bytes() {
        let msg = Group {
            subscribe: 3,
            sequence: 300,
        };
        #[rustfmt::skip]
        let expected = [
            0x03,       // length
            0x03,       // subscribe ID 3
            0x41, 0x2c, // sequence 300 (two-byte varint 0x412c)
        ];
        for v in Version::ALL {
            check_message(&msg, v, &expected);
        }
    }

    #[test]
    fn frame_bytes() {
        let mut out = Vec::new();
        FrameHeader::encode_frame(b"hi", Version::Lite04, &mut out).unwrap();
        // length 2, then the payload
        assert_eq!(out, [0x02, b'h', b'i']);
        let mut cursor = &out[..];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite04),
            Ok(FrameHeader { size: 2 })
        );
        assert_eq!(cursor, b"hi");
        // A header announcing 2^62 - 1 bytes decodes without allocating anything.
        let mut cursor: &[u8] = &[0xff; 8];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite02),
            Ok(FrameHeader {
                size: crate::coding::VarInt::MAX.into_inner()
            })
        );
        let mut cursor: &[u8] = &[0x40];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite02),
            Err(DecodeError::Short)
        );
    }

    proptest! {
        #[test]
        fn round_trips(subscribe in any_varint(), sequence in any_varint(), size in any_varint()) {
            for v in Version::ALL {
                round_trip(&Group { subscribe, sequence }, v)?;
                let mut out = Vec::new();
                FrameHeader { size }.encode(v, &mut out).unwrap();
                prop_assert_eq!(FrameHeader::decode(&mut &out[..], v), Ok(FrameHeader { size }));
            }
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Group>(&bytes);
            for v in Version::ALL {
                garbage(&bytes, |h: &FrameHeader, out| h.encode(v, out), |c| FrameHeader::decode(c, v));
            }
        }
    }
}

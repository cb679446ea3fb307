//! Data streams and datagrams: unidirectional stream headers
//! ([`SubgroupHeader`], [`FetchHeader`], draft-17's SETUP control stream),
//! the objects that follow them ([`SubgroupReader`], [`FetchReader`]), and
//! [`ObjectDatagram`].
//!
//! Objects carry a payload length and, when it is 0, an Object Status
//! ([`ObjectStatus`]); extension headers (draft-17: properties) are a byte
//! length and key-value pairs. Payloads are at most [`MAX_OBJECT_PAYLOAD`]
//! bytes: a larger length is [`moq_lite::coding::DecodeError::TooLarge`]
//! before anything is buffered.

mod datagram;
mod fetch;
mod object;
mod subgroup;

pub use datagram::*;
pub use fetch::*;
pub use object::*;
pub use subgroup::*;

use bytes::{Buf, BufMut};
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;
use crate::varint::{get_vi, put_vi};

/// The FETCH_HEADER stream type.
pub const FETCH_HEADER_TYPE: u64 = 0x05;

/// The draft-17 control stream type (the SETUP message type).
pub const SETUP_STREAM_TYPE: u64 = 0x2f00;

/// The draft-18 padding stream type: what follows is to be discarded.
pub const PADDING_STREAM_TYPE: u64 = 0x132b_3e28;

/// The draft-18 padding datagram type: the datagram is to be discarded.
pub const PADDING_DATAGRAM_TYPE: u64 = 0x132b_3e29;

/// The header at the start of a unidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamHeader {
    /// SUBGROUP_HEADER.
    Subgroup(SubgroupHeader),
    /// FETCH_HEADER.
    Fetch(FetchHeader),
    /// Draft-17: a control stream. 0x2F00 is also the SETUP message type,
    /// so the SETUP's 16-bit length and body follow; to read the SETUP as a
    /// whole, run [`crate::control::ControlMessage::decode`] on the stream
    /// from its first byte instead.
    Setup,
    /// Draft-18+: padding (section "Padding"); read and discard the rest,
    /// or stop it: neither touches any MoQ state.
    Padding,
    /// A type this draft does not define: reset the stream (drafts 14 to 17
    /// say close the session; real deployments reset just the stream).
    Unknown(u64),
}

impl StreamHeader {
    /// Writes the header.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            StreamHeader::Subgroup(h) => h.encode(draft, buf),
            StreamHeader::Fetch(h) => h.encode(draft, buf),
            StreamHeader::Setup if draft.request_streams() => put_vi(draft, SETUP_STREAM_TYPE, buf),
            StreamHeader::Setup => Err(EncodeError::Version("SETUP stream is draft-17 only")),
            StreamHeader::Padding if draft.data_plane_18() => put_vi(draft, PADDING_STREAM_TYPE, buf),
            StreamHeader::Padding => Err(EncodeError::Version("padding streams are draft-18+")),
            StreamHeader::Unknown(_) => Err(EncodeError::Invalid("unknown stream type")),
        }
    }

    /// Reads a stream header.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, draft)?;
        Ok(match ty {
            FETCH_HEADER_TYPE => StreamHeader::Fetch(FetchHeader {
                request_id: get_vi(buf, draft)?,
            }),
            SETUP_STREAM_TYPE if draft.request_streams() => StreamHeader::Setup,
            PADDING_STREAM_TYPE if draft.data_plane_18() => StreamHeader::Padding,
            ty => match SubgroupHeader::decode_after_type(ty, buf, draft)? {
                Some(h) => StreamHeader::Subgroup(h),
                None => StreamHeader::Unknown(ty),
            },
        })
    }
}

/// FETCH_HEADER (0x05): the objects that follow answer this FETCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchHeader {
    /// The FETCH's Request ID.
    pub request_id: u64,
}

impl FetchHeader {
    /// Writes the type and the Request ID.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        put_vi(draft, FETCH_HEADER_TYPE, buf)?;
        put_vi(draft, self.request_id, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_types() {
        for d in Draft::ALL {
            let h = StreamHeader::Fetch(FetchHeader { request_id: 2 });
            let mut out = Vec::new();
            h.encode(d, &mut out).unwrap();
            assert_eq!(out, [0x05, 0x02]); // FETCH_HEADER, Request ID 2
            assert_eq!(StreamHeader::decode(&mut &out[..], d), Ok(h));
            assert_eq!(StreamHeader::decode(&mut &[0x05][..], d), Err(DecodeError::Short));
            assert_eq!(
                StreamHeader::decode(&mut &[0x07][..], d),
                Ok(StreamHeader::Unknown(0x07))
            );
        }
        // draft-17 control stream: 0x2F00 as a vi64 is 0xaf 0x00.
        let mut out = Vec::new();
        StreamHeader::Setup.encode(Draft::D17, &mut out).unwrap();
        assert_eq!(out, [0xaf, 0x00]);
        assert_eq!(
            StreamHeader::decode(&mut &out[..], Draft::D17),
            Ok(StreamHeader::Setup)
        );
        // In QUIC varints 0xaf starts a 4-byte integer: not SETUP before -17.
        assert!(StreamHeader::Setup.encode(Draft::D16, &mut Vec::new()).is_err());
        // draft-18 padding: 0x132B3E28 is a five-byte vi64; unknown in -17.
        let padding = [0xf0, 0x13, 0x2b, 0x3e, 0x28];
        let mut out = Vec::new();
        StreamHeader::Padding.encode(Draft::D18, &mut out).unwrap();
        assert_eq!(out, padding);
        assert_eq!(
            StreamHeader::decode(&mut &padding[..], Draft::D18),
            Ok(StreamHeader::Padding)
        );
        assert_eq!(
            StreamHeader::decode(&mut &padding[..], Draft::D17),
            Ok(StreamHeader::Unknown(PADDING_STREAM_TYPE))
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            for d in Draft::ALL {
                if let Ok(h) = StreamHeader::decode(&mut &bytes[..], d) {
                    let mut out = Vec::new();
                    if h.encode(d, &mut out).is_ok() {
                        prop_assert_eq!(StreamHeader::decode(&mut &out[..], d), Ok(h));
                    }
                }
            }
        }
    }
}

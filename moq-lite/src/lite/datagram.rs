//! Datagrams (moq-lite-05+): a single-frame group in one QUIC datagram.
//!
//! The body is `Subscribe ID (i) | Sequence (i) | Timestamp (i) | Payload`,
//! with no length: the payload is the rest of the datagram, and the
//! timestamp is absolute, in the track's timescale (lite-05 section
//! "Datagrams"). A datagram for an unknown subscription is dropped.
//!
//! ```
//! use bytes::Bytes;
//! use moq_lite::lite::Datagram;
//!
//! // Shipped notes, section 13: subscription 0, group 7, timestamp 1000, `hi`.
//! let dg = Datagram { subscribe: 0, sequence: 7, timestamp: 1000, payload: Bytes::from_static(b"hi") };
//! let mut out = Vec::new();
//! dg.encode(&mut out).unwrap();
//! assert_eq!(out, [0x00, 0x07, 0x43, 0xe8, b'h', b'i']);
//! assert_eq!(Datagram::decode(out.into()).unwrap(), dg);
//! ```

use bytes::{BufMut, Bytes};

use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// One datagram: frame `payload` as the whole of group `sequence`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Datagram {
    /// The Subscribe ID of the subscription it answers.
    pub subscribe: u64,
    /// The group sequence.
    pub sequence: u64,
    /// The frame's timestamp, in the track's timescale.
    pub timestamp: u64,
    /// The frame.
    pub payload: Bytes,
}

impl Datagram {
    /// Writes the datagram body.
    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.subscribe.encode(buf)?;
        self.sequence.encode(buf)?;
        self.timestamp.encode(buf)?;
        buf.put_slice(&self.payload);
        Ok(())
    }

    /// Reads a whole datagram; the payload shares `datagram`'s memory.
    pub fn decode(mut datagram: Bytes) -> Result<Datagram, DecodeError> {
        let subscribe = u64::decode(&mut datagram)?;
        let sequence = u64::decode(&mut datagram)?;
        let timestamp = u64::decode(&mut datagram)?;
        Ok(Datagram {
            subscribe,
            sequence,
            timestamp,
            payload: datagram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn truncated_headers_are_refused() {
        for bytes in [&[][..], &[0x00], &[0x00, 0x07], &[0x00, 0x07, 0x43]] {
            assert!(Datagram::decode(Bytes::copy_from_slice(bytes)).is_err());
        }
        // An empty payload is a zero-length frame.
        let dg = Datagram::decode(Bytes::from_static(&[0x01, 0x02, 0x03])).unwrap();
        assert_eq!(
            (dg.subscribe, dg.sequence, dg.timestamp, dg.payload.len()),
            (1, 2, 3, 0)
        );
    }

    proptest! {
        #[test]
        fn garbage_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(dg) = Datagram::decode(Bytes::from(bytes)) {
                let mut out = Vec::new();
                dg.encode(&mut out).unwrap();
                prop_assert_eq!(Datagram::decode(out.into()).unwrap(), dg);
            }
        }
    }
}

//! Which variable-length integer a protocol version writes, chosen at run
//! time: QUIC's varint (RFC 9000 section 16) or the leading-ones [`Vi64`].
//!
//! Every length-prefixed field is written with the version's integer, so the
//! bounded byte-string helpers live here too: one implementation of "check
//! the length against a named limit and against what is buffered, then copy"
//! for both integer encodings.
//!
//! ```
//! use moq_lite::coding::IntEncoding;
//!
//! let mut out = Vec::new();
//! IntEncoding::Quic.put(100, &mut out).unwrap();
//! IntEncoding::Vi64.put(100, &mut out).unwrap();
//! assert_eq!(out, [0x40, 0x64, 0x64]);
//! assert_eq!(IntEncoding::Quic.get(&mut &out[..2]), Ok(100));
//! ```

use bytes::{Buf, BufMut, Bytes};

use super::{Decode, DecodeError, Encode, EncodeError, VarInt, Vi64};

/// The variable-length integer of a protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IntEncoding {
    /// QUIC's varint: at most 2^62 - 1 (moq-lite up to -06, IETF drafts 14 to 16).
    #[default]
    Quic,
    /// The leading-ones integer: any `u64` (IETF draft-17, moq-lite-07); its
    /// 7-byte form is invalid.
    Vi64,
    /// The leading-ones integer with its 7-byte form (IETF draft-18 on).
    Vi64Full,
}

impl IntEncoding {
    /// Writes `v`; a QUIC varint refuses 2^62 or more.
    #[inline]
    pub fn put<B: BufMut>(self, v: u64, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            IntEncoding::Quic => VarInt::try_from(v)?.encode(buf),
            IntEncoding::Vi64 => Vi64(v).encode(buf),
            IntEncoding::Vi64Full => {
                Vi64(v).encode_18(buf);
                Ok(())
            }
        }
    }

    /// Reads one integer.
    #[inline]
    pub fn get<B: Buf>(self, buf: &mut B) -> Result<u64, DecodeError> {
        match self {
            IntEncoding::Quic => u64::decode(buf),
            IntEncoding::Vi64 => Ok(Vi64::decode(buf)?.0),
            IntEncoding::Vi64Full => Ok(Vi64::decode_18(buf)?.0),
        }
    }

    /// Reads an integer that must be at most `max` (a length or a count);
    /// `what` names the field in the error.
    #[inline]
    pub fn get_len<B: Buf>(self, buf: &mut B, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.get(buf)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge(what));
        }
        Ok(len as usize)
    }

    /// Writes `bytes` with a length prefix, refusing more than `max` bytes.
    #[inline]
    pub fn put_bytes<B: BufMut>(
        self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        if bytes.len() > max {
            return Err(EncodeError::TooLarge(what));
        }
        self.put(bytes.len() as u64, buf)?;
        buf.put_slice(bytes);
        Ok(())
    }

    /// Reads a length-prefixed byte string of at most `max` bytes. The
    /// length is checked against `max` before anything is copied (a huge
    /// length is [`DecodeError::TooLarge`] without allocating), then against
    /// what is buffered ([`DecodeError::Short`]).
    #[inline]
    pub fn get_bytes<B: Buf>(
        self,
        buf: &mut B,
        max: usize,
        what: &'static str,
    ) -> Result<Bytes, DecodeError> {
        let len = self.get_len(buf, max, what)?;
        if buf.remaining() < len {
            return Err(DecodeError::Short);
        }
        Ok(buf.copy_to_bytes(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings() {
        let mut out = Vec::new();
        IntEncoding::Quic.put(100, &mut out).unwrap();
        IntEncoding::Vi64.put(100, &mut out).unwrap();
        // QUIC: 0x40 0x64; vi64: 100 < 128 fits one byte.
        assert_eq!(out, [0x40, 0x64, 0x64]);
        assert!(IntEncoding::Quic.put(1 << 62, &mut Vec::new()).is_err());
        IntEncoding::Vi64.put(1 << 62, &mut Vec::new()).unwrap();
    }

    #[test]
    fn bounded_bytes() {
        for ints in [IntEncoding::Quic, IntEncoding::Vi64, IntEncoding::Vi64Full] {
            let mut c: &[u8] = &[0x05, b'a'];
            assert_eq!(ints.get_bytes(&mut c, 16, "b"), Err(DecodeError::Short));
            let mut out = Vec::new();
            ints.put_bytes(b"abc", 3, "b", &mut out).unwrap();
            assert_eq!(out, [0x03, b'a', b'b', b'c']);
            assert_eq!(
                ints.put_bytes(b"abc", 2, "b", &mut out),
                Err(EncodeError::TooLarge("b"))
            );
        }
        // The largest length either can say, with nothing behind it.
        let mut c: &[u8] = &[0xff; 9];
        assert_eq!(
            IntEncoding::Vi64.get_bytes(&mut c, 16, "b"),
            Err(DecodeError::TooLarge("b"))
        );
        let mut c: &[u8] = &[0xff; 8];
        assert_eq!(
            IntEncoding::Quic.get_bytes(&mut c, 1 << 20, "b"),
            Err(DecodeError::TooLarge("b"))
        );
    }
}

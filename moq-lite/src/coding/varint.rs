//! QUIC variable-length integers (RFC 9000, section 16).
//!
//! The two most significant bits of the first byte give the length (1, 2, 4
//! or 8 bytes); the remaining bits hold the value in network byte order, so a
//! value is below 2^62. Encoding always picks the shortest form (the drafts
//! say SHOULD); decoding accepts any form, including over-long ones such as
//! `0x40 0x01` for 1, because RFC 9000 allows them.

use bytes::{Buf, BufMut};

use super::{Decode, DecodeError, Encode, EncodeError};

/// An integer below 2^62, the range a QUIC varint can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VarInt(u64);

impl VarInt {
    /// The largest value a varint can hold, 2^62 - 1.
    pub const MAX: VarInt = VarInt((1 << 62) - 1);

    /// Zero.
    pub const ZERO: VarInt = VarInt(0);

    /// A varint from a `u32`, which always fits.
    pub const fn from_u32(v: u32) -> VarInt {
        VarInt(v as u64)
    }

    /// A varint from a `u64`, or `None` when it is 2^62 or more.
    pub const fn new(v: u64) -> Option<VarInt> {
        if v <= Self::MAX.0 { Some(VarInt(v)) } else { None }
    }

    /// The value.
    pub const fn into_inner(self) -> u64 {
        self.0
    }

    /// How many bytes the shortest encoding takes: 1, 2, 4 or 8.
    pub const fn size(self) -> usize {
        if self.0 < (1 << 6) {
            1
        } else if self.0 < (1 << 14) {
            2
        } else if self.0 < (1 << 30) {
            4
        } else {
            8
        }
    }
}

impl TryFrom<u64> for VarInt {
    type Error = EncodeError;

    fn try_from(v: u64) -> Result<Self, Self::Error> {
        VarInt::new(v).ok_or(EncodeError::TooLarge("varint over 2^62 - 1"))
    }
}

impl TryFrom<usize> for VarInt {
    type Error = EncodeError;

    fn try_from(v: usize) -> Result<Self, Self::Error> {
        VarInt::try_from(v as u64)
    }
}

impl From<u32> for VarInt {
    fn from(v: u32) -> Self {
        VarInt::from_u32(v)
    }
}

impl From<u8> for VarInt {
    fn from(v: u8) -> Self {
        VarInt(v as u64)
    }
}

impl From<VarInt> for u64 {
    fn from(v: VarInt) -> Self {
        v.0
    }
}

impl std::fmt::Display for VarInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Encode for VarInt {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let v = self.0;
        match self.size() {
            1 => buf.put_u8(v as u8),
            2 => buf.put_u16(0x4000 | v as u16),
            4 => buf.put_u32(0x8000_0000 | v as u32),
            _ => buf.put_u64(0xc000_0000_0000_0000 | v),
        }
        Ok(())
    }
}

impl Decode for VarInt {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        // `chunk` is only empty when nothing remains, but do not rely on it.
        let Some(&first) = buf.chunk().first() else {
            return Err(DecodeError::Short);
        };
        let size = 1usize << (first >> 6);
        if buf.remaining() < size {
            return Err(DecodeError::Short);
        }
        let v = match size {
            1 => buf.get_u8() as u64,
            2 => (buf.get_u16() & 0x3fff) as u64,
            4 => (buf.get_u32() & 0x3fff_ffff) as u64,
            _ => buf.get_u64() & 0x3fff_ffff_ffff_ffff,
        };
        Ok(VarInt(v))
    }
}

/// Integers are varints on the wire; encoding fails at 2^62 or more.
impl Encode for u64 {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        VarInt::try_from(*self)?.encode(buf)
    }
}

/// Integers are varints on the wire.
impl Decode for u64 {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        VarInt::decode(buf).map(VarInt::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out).unwrap();
        out
    }

    // The examples of RFC 9000, appendix A.1.
    #[test]
    fn rfc9000_examples() {
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            let mut cursor = bytes;
            assert_eq!(u64::decode(&mut cursor), Ok(value));
            assert!(cursor.is_empty());
            assert_eq!(enc(value), bytes);
        }
        // RFC 9000: "the two-byte sequence 0x40 0x25 also decodes to 37".
        let mut cursor: &[u8] = &[0x40, 0x25];
        assert_eq!(u64::decode(&mut cursor), Ok(37));
    }

    #[test]
    fn shortest_form_at_boundaries() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(63), [0x3f]);
        assert_eq!(enc(64), [0x40, 0x40]);
        assert_eq!(enc(16_383), [0x7f, 0xff]);
        assert_eq!(enc(16_384), [0x80, 0x00, 0x40, 0x00]);
        assert_eq!(enc((1 << 30) - 1), [0xbf, 0xff, 0xff, 0xff]);
        assert_eq!(enc(1 << 30), [0xc0, 0, 0, 0, 0x40, 0, 0, 0]);
        assert_eq!(enc(VarInt::MAX.into_inner()), [0xff; 8]);
    }

    #[test]
    fn out_of_range() {
        assert_eq!(VarInt::new(1 << 62), None);
        assert!(VarInt::try_from(u64::MAX).is_err());
        let mut out = Vec::new();
        assert!(matches!(
            (1u64 << 62).encode(&mut out),
            Err(EncodeError::TooLarge(_))
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_is_short() {
        for bytes in [&[][..], &[0x40], &[0x80, 0, 0], &[0xc0, 0, 0, 0, 0, 0, 0]] {
            let mut cursor = bytes;
            assert_eq!(VarInt::decode(&mut cursor), Err(DecodeError::Short));
        }
    }

    proptest! {
        #[test]
        fn round_trip(v in 0..=VarInt::MAX.into_inner()) {
            let bytes = enc(v);
            prop_assert_eq!(bytes.len(), VarInt::new(v).unwrap().size());
            let mut cursor = &bytes[..];
            prop_assert_eq!(u64::decode(&mut cursor), Ok(v));
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut cursor = &bytes[..];
            let _ = VarInt::decode(&mut cursor);
        }
    }
}

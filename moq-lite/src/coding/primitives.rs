//! Fixed-size fields and the "0 = none, else value + 1" optional integer.
//!
//! `u8` fields (priorities, the ordered flag) are a single raw byte, not a
//! varint: the lite drafts write them as `(8)`. Optional group sequences
//! (Start Group / End Group in SUBSCRIBE, SUBSCRIBE_UPDATE and SUBSCRIBE_OK of
//! moq-lite-03/04) reserve 0 for "none" and carry `sequence + 1` otherwise;
//! [`encode_opt_seq`] / [`decode_opt_seq`] hide that offset so the Rust side
//! sees an `Option<u64>`.

use bytes::{Buf, BufMut};

use super::{Decode, DecodeError, Encode, EncodeError, VarInt};

/// One raw byte.
impl Encode for u8 {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(*self);
        Ok(())
    }
}

/// One raw byte.
impl Decode for u8 {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        if !buf.has_remaining() {
            return Err(DecodeError::Short);
        }
        Ok(buf.get_u8())
    }
}

/// A boolean as one byte, 0x0 or 0x1 (the drafts' `Subscriber Ordered`).
impl Encode for bool {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(*self as u8);
        Ok(())
    }
}

/// A boolean as one byte; any value other than 0x0 or 0x1 is refused, so a
/// field that grows more meanings later is noticed rather than misread.
impl Decode for bool {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        match u8::decode(buf)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("boolean byte is not 0 or 1")),
        }
    }
}

/// Writes an optional sequence number as a varint: 0 for `None`, else `seq + 1`.
///
/// Fails when `seq + 1` does not fit a varint (`seq >= 2^62 - 1`).
pub fn encode_opt_seq<B: BufMut>(value: Option<u64>, buf: &mut B) -> Result<(), EncodeError> {
    let wire = match value {
        None => 0,
        Some(seq) => match seq.checked_add(1).and_then(VarInt::new) {
            Some(v) => v.into_inner(),
            None => return Err(EncodeError::TooLarge("sequence + 1 over 2^62 - 1")),
        },
    };
    wire.encode(buf)
}

/// Reads an optional sequence number written by [`encode_opt_seq`].
pub fn decode_opt_seq<B: Buf>(buf: &mut B) -> Result<Option<u64>, DecodeError> {
    Ok(match u64::decode(buf)? {
        0 => None,
        n => Some(n - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn optional_sequence_offsets_by_one() {
        let mut out = Vec::new();
        encode_opt_seq(None, &mut out).unwrap();
        encode_opt_seq(Some(0), &mut out).unwrap();
        encode_opt_seq(Some(62), &mut out).unwrap();
        encode_opt_seq(Some(63), &mut out).unwrap();
        // 0 = none; 0 + 1 = 1; 62 + 1 = 63 (last one-byte varint); 63 + 1 = 64 (two bytes)
        assert_eq!(out, [0x00, 0x01, 0x3f, 0x40, 0x40]);
        let mut cursor = &out[..];
        assert_eq!(decode_opt_seq(&mut cursor), Ok(None));
        assert_eq!(decode_opt_seq(&mut cursor), Ok(Some(0)));
        assert_eq!(decode_opt_seq(&mut cursor), Ok(Some(62)));
        assert_eq!(decode_opt_seq(&mut cursor), Ok(Some(63)));
        assert_eq!(decode_opt_seq(&mut cursor), Err(DecodeError::Short));
    }

    #[test]
    fn optional_sequence_limit() {
        let mut out = Vec::new();
        assert!(encode_opt_seq(Some(VarInt::MAX.into_inner()), &mut out).is_err());
        assert!(encode_opt_seq(Some(u64::MAX), &mut out).is_err());
        encode_opt_seq(Some(VarInt::MAX.into_inner() - 1), &mut out).unwrap();
        assert_eq!(out, [0xff; 8]);
    }

    #[test]
    fn bool_is_strict() {
        let mut cursor: &[u8] = &[0x00, 0x01, 0x02];
        assert_eq!(bool::decode(&mut cursor), Ok(false));
        assert_eq!(bool::decode(&mut cursor), Ok(true));
        assert!(matches!(bool::decode(&mut cursor), Err(DecodeError::Invalid(_))));
        assert_eq!(u8::decode(&mut cursor), Err(DecodeError::Short));
    }

    proptest! {
        #[test]
        fn optional_sequence_round_trip(v in proptest::option::of(0..VarInt::MAX.into_inner())) {
            let mut out = Vec::new();
            encode_opt_seq(v, &mut out).unwrap();
            let mut cursor = &out[..];
            prop_assert_eq!(decode_opt_seq(&mut cursor), Ok(v));
            prop_assert!(cursor.is_empty());
        }
    }
}

//! The draft-aware integer helpers every message uses: "a varint" is a QUIC
//! varint (RFC 9000 section 16, at most 2^62 - 1) in drafts 14 to 16 and a
//! leading-ones [`Vi64`] from draft-17 (section 1.3.1); both live in
//! [`moq_lite::coding`], and [`Draft::ints`] says which a draft writes.

use bytes::{Buf, BufMut, Bytes};
pub use moq_lite::coding::Vi64;
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;

/// Writes `v` as the draft's variable-length integer: a QUIC varint (fails at
/// 2^62 or more) before draft-17, a [`Vi64`] from draft-17.
pub fn put_vi<B: BufMut>(draft: Draft, v: u64, buf: &mut B) -> Result<(), EncodeError> {
    draft.ints().put(v, buf)
}

/// Reads the draft's variable-length integer.
pub fn get_vi<B: Buf>(buf: &mut B, draft: Draft) -> Result<u64, DecodeError> {
    draft.ints().get(buf)
}

/// Reads a draft varint that must fit `usize`, checked against `max`.
pub fn get_len<B: Buf>(
    buf: &mut B,
    draft: Draft,
    max: usize,
    what: &'static str,
) -> Result<usize, DecodeError> {
    draft.ints().get_len(buf, max, what)
}

/// Writes a length-prefixed byte string of at most `max` bytes.
pub fn put_bytes<B: BufMut>(
    draft: Draft,
    bytes: &[u8],
    max: usize,
    what: &'static str,
    buf: &mut B,
) -> Result<(), EncodeError> {
    draft.ints().put_bytes(bytes, max, what, buf)
}

/// Reads a length-prefixed byte string of at most `max` bytes; the length is
/// checked against `max` and against what is buffered before copying.
pub fn get_bytes<B: Buf>(
    buf: &mut B,
    draft: Draft,
    max: usize,
    what: &'static str,
) -> Result<Bytes, DecodeError> {
    draft.ints().get_bytes(buf, max, what)
}

/// Copies exactly `len` bytes, or [`DecodeError::Short`].
pub fn take<B: Buf>(buf: &mut B, len: usize) -> Result<Bytes, DecodeError> {
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    Ok(buf.copy_to_bytes(len))
}

/// Writes a length-prefixed UTF-8 string of at most `max` bytes.
pub fn put_string<B: BufMut>(
    draft: Draft,
    s: &str,
    max: usize,
    what: &'static str,
    buf: &mut B,
) -> Result<(), EncodeError> {
    put_bytes(draft, s.as_bytes(), max, what, buf)
}

/// Reads a length-prefixed UTF-8 string of at most `max` bytes.
pub fn get_string<B: Buf>(
    buf: &mut B,
    draft: Draft,
    max: usize,
    what: &'static str,
) -> Result<String, DecodeError> {
    let bytes = get_bytes(buf, draft, max, what)?;
    String::from_utf8(bytes.into()).map_err(|_| DecodeError::Invalid("string is not UTF-8"))
}

/// Reads one raw byte (an `(8)` field).
pub fn get_u8<B: Buf>(buf: &mut B) -> Result<u8, DecodeError> {
    if !buf.has_remaining() {
        return Err(DecodeError::Short);
    }
    Ok(buf.get_u8())
}

/// Reads an `(8)` field that must be 0 or 1.
pub fn get_flag<B: Buf>(buf: &mut B, what: &'static str) -> Result<bool, DecodeError> {
    match get_u8(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn draft_helpers() {
        let mut out = Vec::new();
        put_vi(Draft::D14, 100, &mut out).unwrap();
        put_vi(Draft::D17, 100, &mut out).unwrap();
        // QUIC: 0x40 0x64; vi64: 100 < 128 fits one byte.
        assert_eq!(out, [0x40, 0x64, 0x64]);
        assert!(put_vi(Draft::D16, 1 << 62, &mut Vec::new()).is_err());
        put_vi(Draft::D17, 1 << 62, &mut Vec::new()).unwrap();
        let mut c: &[u8] = &[0x05, b'a'];
        assert_eq!(get_bytes(&mut c, Draft::D15, 16, "b"), Err(DecodeError::Short));
        let mut c: &[u8] = &[0xff; 9];
        assert_eq!(
            get_bytes(&mut c, Draft::D17, 16, "b"),
            Err(DecodeError::TooLarge("b"))
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            for d in Draft::ALL {
                let _ = get_vi(&mut &bytes[..], d);
                let _ = get_string(&mut &bytes[..], d, 8, "s");
            }
        }
    }
}

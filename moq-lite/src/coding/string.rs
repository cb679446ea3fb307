//! Length-prefixed byte strings and UTF-8 strings with explicit upper bounds.
//!
//! The drafts write these as `(b)` / `(s)`: a varint length followed by that
//! many bytes. The length comes from the peer, so every decoder takes a
//! maximum and checks the length against it, and against what is buffered,
//! before copying anything. (Broadcast paths, built on these strings, are
//! encoded by the protocol that carries them: see [`crate::lite`].)

use bytes::{Buf, BufMut, Bytes};

use super::{DecodeError, EncodeError, IntEncoding};

/// Writes `bytes` with a varint length prefix, refusing more than `max` bytes.
///
/// `what` names the field in the error.
pub fn encode_bytes<B: BufMut>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
    buf: &mut B,
) -> Result<(), EncodeError> {
    IntEncoding::Quic.put_bytes(bytes, max, what, buf)
}

/// Reads a varint-length-prefixed byte string of at most `max` bytes.
///
/// The length is checked against `max` before anything is copied, so a
/// huge length yields [`DecodeError::TooLarge`] without allocating; a length
/// within `max` but beyond what is buffered yields [`DecodeError::Short`].
pub fn decode_bytes<B: Buf>(buf: &mut B, max: usize, what: &'static str) -> Result<Bytes, DecodeError> {
    IntEncoding::Quic.get_bytes(buf, max, what)
}

/// Writes a UTF-8 string with a varint length prefix, refusing more than
/// `max` bytes.
pub fn encode_string<B: BufMut>(
    s: &str,
    max: usize,
    what: &'static str,
    buf: &mut B,
) -> Result<(), EncodeError> {
    encode_bytes(s.as_bytes(), max, what, buf)
}

/// Reads a varint-length-prefixed UTF-8 string of at most `max` bytes.
pub fn decode_string<B: Buf>(buf: &mut B, max: usize, what: &'static str) -> Result<String, DecodeError> {
    let bytes = decode_bytes(buf, max, what)?;
    String::from_utf8(bytes.into()).map_err(|_| DecodeError::Invalid("string is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn string_bytes() {
        let mut out = Vec::new();
        encode_string("héllo", 16, "s", &mut out).unwrap();
        // 0x06: length (h, é as two bytes, l, l, o), then the UTF-8 bytes
        assert_eq!(out, [0x06, b'h', 0xc3, 0xa9, b'l', b'l', b'o']);
        let mut cursor = &out[..];
        assert_eq!(decode_string(&mut cursor, 16, "s").as_deref(), Ok("héllo"));
    }

    #[test]
    fn limits() {
        let mut out = Vec::new();
        assert_eq!(
            encode_string("abc", 2, "s", &mut out),
            Err(EncodeError::TooLarge("s"))
        );
        encode_string("abc", 3, "s", &mut out).unwrap();
        let mut cursor = &out[..];
        assert_eq!(
            decode_string(&mut cursor, 2, "s"),
            Err(DecodeError::TooLarge("s"))
        );
        // A length of 2^62 - 1 with nothing behind it: refused by the limit, no allocation.
        let mut cursor: &[u8] = &[0xff; 8];
        assert_eq!(
            decode_bytes(&mut cursor, 1 << 20, "b"),
            Err(DecodeError::TooLarge("b"))
        );
        // A length within the limit but not yet buffered.
        let mut cursor: &[u8] = &[0x05, b'a', b'b'];
        assert_eq!(decode_bytes(&mut cursor, 16, "b"), Err(DecodeError::Short));
    }

    #[test]
    fn invalid_utf8() {
        let mut cursor: &[u8] = &[0x02, 0xc3, 0x28];
        assert!(matches!(
            decode_string(&mut cursor, 16, "s"),
            Err(DecodeError::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn string_round_trip(s in ".{0,40}") {
            let mut out = Vec::new();
            encode_string(&s, 1024, "s", &mut out).unwrap();
            let mut cursor = &out[..];
            prop_assert_eq!(decode_string(&mut cursor, 1024, "s"), Ok(s));
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut cursor = &bytes[..];
            let _ = decode_string(&mut cursor, 32, "s");
        }
    }
}

//! Length-prefixed messages.
//!
//! moq-lite prefixes (almost) every message with a varint length; the SETUP
//! path (CLIENT_SETUP / SERVER_SETUP, draft-ietf-moq-transport-14 section 9)
//! uses a 16-bit big-endian length instead. Either way the length is the
//! number of body bytes that follow. A receiver decodes the body from exactly
//! that many bytes: a body that needs more bytes than its frame, or leaves
//! some unread, is malformed (moq-lite "Message Length": an unexpected length
//! is a PROTOCOL_VIOLATION; draft-14 section 9 says the same). This is also
//! what makes a message decodable all at once: until the whole frame is
//! buffered the decoder answers [`DecodeError::Short`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Decode, DecodeError, Encode, EncodeError, VarInt};

/// The largest message body we accept or send with a varint length prefix.
///
/// Messages are small (paths and a few integers); the largest is moq-lite-02's
/// ANNOUNCE_INIT, which lists every active broadcast under a prefix. The limit
/// bounds how much a peer can make us buffer for one message.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// How a message's length is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthPrefix {
    /// A QUIC varint (moq-lite messages), bounded by [`MAX_MESSAGE_SIZE`].
    VarInt,
    /// A 16-bit big-endian integer (the SETUP-path control messages), so at
    /// most 65535 bytes.
    U16,
}

impl LengthPrefix {
    /// The largest body this prefix allows.
    pub const fn max_size(self) -> usize {
        match self {
            LengthPrefix::VarInt => MAX_MESSAGE_SIZE,
            LengthPrefix::U16 => u16::MAX as usize,
        }
    }
}

/// Writes a message: its length in the form `prefix` says, then the body
/// written by `body`.
///
/// The body is first written to a scratch buffer to learn its length.
pub fn encode_framed<B, F>(buf: &mut B, prefix: LengthPrefix, body: F) -> Result<(), EncodeError>
where
    B: BufMut,
    F: FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
{
    let mut scratch = BytesMut::new();
    body(&mut scratch)?;
    if scratch.len() > prefix.max_size() {
        return Err(EncodeError::TooLarge("message body"));
    }
    match prefix {
        LengthPrefix::VarInt => VarInt::try_from(scratch.len())?.encode(buf)?,
        // Cannot truncate: checked against u16::MAX above.
        LengthPrefix::U16 => buf.put_u16(scratch.len() as u16),
    }
    buf.put_slice(&scratch);
    Ok(())
}

/// Reads one message: its length, then the body, decoded by `body` from a
/// buffer holding exactly the body's bytes.
///
/// Returns [`DecodeError::Short`] until the whole message is buffered,
/// [`DecodeError::TooLarge`] for a length over the prefix's limit (before
/// buffering or allocating anything), and [`DecodeError::Invalid`] when the
/// body does not fill its frame exactly.
pub fn decode_framed<B, T, F>(buf: &mut B, prefix: LengthPrefix, body: F) -> Result<T, DecodeError>
where
    B: Buf,
    F: FnOnce(&mut Bytes) -> Result<T, DecodeError>,
{
    let len = match prefix {
        LengthPrefix::VarInt => {
            let len = u64::decode(buf)?;
            usize::try_from(len).map_err(|_| DecodeError::TooLarge("message length"))?
        }
        LengthPrefix::U16 => {
            if buf.remaining() < 2 {
                return Err(DecodeError::Short);
            }
            buf.get_u16() as usize
        }
    };
    if len > prefix.max_size() {
        return Err(DecodeError::TooLarge("message length"));
    }
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    let mut frame = buf.copy_to_bytes(len);
    let value = body(&mut frame).map_err(|err| match err {
        // More bytes would not help: the frame is complete and too short.
        DecodeError::Short => DecodeError::Invalid("message shorter than its fields"),
        other => other,
    })?;
    if frame.has_remaining() {
        return Err(DecodeError::Invalid("message longer than its fields"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_varints(buf: &mut Bytes) -> Result<(u64, u64), DecodeError> {
        Ok((u64::decode(buf)?, u64::decode(buf)?))
    }

    #[test]
    fn varint_frame() {
        let mut out = Vec::new();
        encode_framed(&mut out, LengthPrefix::VarInt, |b| {
            5u64.encode(b)?;
            300u64.encode(b)
        })
        .unwrap();
        #[rustfmt::skip]
        let expected = [
            0x03,       // length: 3 bytes follow
            0x05,       // 5
            0x41, 0x2c, // 300 = 0x12c as a two-byte varint
        ];
        assert_eq!(out, expected);
        let mut cursor = &out[..];
        assert_eq!(
            decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
            Ok((5, 300))
        );
        assert!(cursor.is_empty());
    }

    #[test]
    fn u16_frame() {
        let mut out = Vec::new();
        encode_framed(&mut out, LengthPrefix::U16, |b| 5u64.encode(b)).unwrap();
        // 0x00 0x01: 16-bit big-endian length 1, then 0x05
        assert_eq!(out, [0x00, 0x01, 0x05]);
    }

    #[test]
    fn short_until_complete() {
        let full = [0x03, 0x05, 0x41, 0x2c];
        for n in 0..full.len() {
            let mut cursor = &full[..n];
            assert_eq!(
                decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
                Err(DecodeError::Short),
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn wrong_lengths_are_invalid() {
        // length 2 but the fields need 3 bytes
        let mut cursor: &[u8] = &[0x02, 0x05, 0x41, 0x2c];
        assert!(matches!(
            decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
            Err(DecodeError::Invalid(_))
        ));
        // length 4 but the fields use 3 bytes
        let mut cursor: &[u8] = &[0x04, 0x05, 0x41, 0x2c, 0x00];
        assert!(matches!(
            decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn oversized_is_too_large_without_buffering() {
        // A length of 2^62 - 1 with no body: refused at once, not Short.
        let mut cursor: &[u8] = &[0xff; 8];
        assert!(matches!(
            decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
            Err(DecodeError::TooLarge(_))
        ));
        let mut out = Vec::new();
        VarInt::try_from(MAX_MESSAGE_SIZE + 1)
            .unwrap()
            .encode(&mut out)
            .unwrap();
        let mut cursor = &out[..];
        assert!(matches!(
            decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints),
            Err(DecodeError::TooLarge(_))
        ));
        let big = vec![0u8; u16::MAX as usize + 1];
        let mut out = Vec::new();
        let res = encode_framed(&mut out, LengthPrefix::U16, |b| {
            b.put_slice(&big);
            Ok(())
        });
        assert_eq!(res, Err(EncodeError::TooLarge("message body")));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut cursor = &bytes[..];
            let _ = decode_framed(&mut cursor, LengthPrefix::VarInt, two_varints);
            let mut cursor = &bytes[..];
            let _ = decode_framed(&mut cursor, LengthPrefix::U16, two_varints);
        }
    }
}

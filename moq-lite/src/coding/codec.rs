//! The [`Encode`] and [`Decode`] traits for values with one wire form.
//!
//! Values whose encoding depends on the protocol version (the messages of
//! [`crate::lite`]) have their own version-aware methods instead; these
//! traits are for the version-independent building blocks.

use bytes::{Buf, BufMut};

use super::{DecodeError, EncodeError};

/// A value that can be written to the wire.
pub trait Encode {
    /// Appends the wire form of `self` to `buf`.
    ///
    /// On error nothing useful was written; callers discard `buf`.
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
}

/// A value that can be read from the wire.
pub trait Decode: Sized {
    /// Reads one value from the front of `buf`.
    ///
    /// Returns [`DecodeError::Short`] when `buf` ends too early; how much of
    /// `buf` was consumed is then unspecified (see the [module docs](super)).
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError>;
}

/// Encodes `value` into a fresh buffer, for tests and one-off messages.
pub fn encode_to_vec<T: Encode + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    value.encode(&mut out)?;
    Ok(out)
}

/// Runs `decode` on the bytes a streaming reader has buffered so far.
///
/// Returns `Ok(None)` when more bytes are needed, else the value and how many
/// bytes of `data` it used, so the reader can advance its buffer by exactly
/// that much (and not at all when waiting).
pub fn try_decode<T, F>(data: &[u8], decode: F) -> Result<Option<(T, usize)>, DecodeError>
where
    F: FnOnce(&mut &[u8]) -> Result<T, DecodeError>,
{
    let mut cursor = data;
    match decode(&mut cursor) {
        Ok(value) => Ok(Some((value, data.len() - cursor.len()))),
        Err(DecodeError::Short) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_decode_reports_consumed_bytes() {
        // 0x40 0x25: 37 as a two-byte varint, followed by an unrelated byte
        let data = [0x40, 0x25, 0x07];
        assert_eq!(try_decode(&data[..1], |c| u64::decode(c)), Ok(None));
        assert_eq!(try_decode(&data, |c| u64::decode(c)), Ok(Some((37, 2))));
        assert_eq!(
            try_decode(&[0x05][..], |c| bool::decode(c)),
            Err(DecodeError::Invalid("boolean byte is not 0 or 1"))
        );
    }
}

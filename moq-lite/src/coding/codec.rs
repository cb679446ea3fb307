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

//! The wire codec's building blocks, independent of any protocol version.
//!
//! Everything on the wire is built from a handful of primitives: QUIC
//! variable-length integers ([`VarInt`]) or leading-ones ones ([`Vi64`]),
//! chosen per version by [`IntEncoding`]; single bytes; length-prefixed
//! strings and byte strings with an explicit upper bound; key-value pairs
//! ([`KeyValuePairs`]); and length-prefixed messages ([`LengthPrefix`]). Message types of a particular protocol (see
//! [`crate::lite`]) are written in terms of these.
//!
//! # Decoding from a stream
//!
//! Decoders read from any [`bytes::Buf`]. When the buffer ends too early they
//! return [`DecodeError::Short`]; the buffer's position is then unspecified, so
//! a streaming reader decodes from a cheap copy of what it has buffered (a
//! `&[u8]` cursor or a cloned [`bytes::Bytes`]), and only advances its real
//! buffer once a decode succeeds:
//!
//! ```
//! use moq_lite::coding::{Decode, DecodeError, VarInt};
//!
//! let buffered: &[u8] = &[0x40]; // the first half of a two-byte varint
//! let mut cursor = buffered;
//! assert_eq!(VarInt::decode(&mut cursor), Err(DecodeError::Short));
//!
//! let buffered: &[u8] = &[0x40, 0x25, 0xff];
//! let mut cursor = buffered;
//! assert_eq!(VarInt::decode(&mut cursor).map(VarInt::into_inner), Ok(37));
//! let consumed = buffered.len() - cursor.len();
//! assert_eq!(consumed, 2);
//! ```
//!
//! Decoders never panic on any input and never allocate from a length read off
//! the wire before checking it against a named limit and against
//! [`bytes::Buf::remaining`].

mod codec;
mod error;
mod frame;
mod integers;
mod kvp;
mod primitives;
mod string;
mod varint;
mod vi64;
mod wire_enum;

pub use codec::*;
pub use error::*;
pub use frame::*;
pub use integers::*;
pub use kvp::*;
pub use primitives::*;
pub use string::*;
pub use varint::*;
pub use vi64::*;

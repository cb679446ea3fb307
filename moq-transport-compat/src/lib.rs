//! IETF moq-transport drafts 14 to 17 on the wire.
//!
//! This crate is the pure codec (no I/O, no session state) for
//! draft-ietf-moq-transport-14, -15, -16 and -17:
//!
//! - [`Draft`]: the versions, their ALPN strings and the draft-14 SETUP code.
//! - [`varint`]: helpers that write "a varint" for any draft (a [`Vi64`]
//!   from draft-17, QUIC varints before).
//! - [`KeyValuePairs`] (moq-lite's, shared): setup parameters, message parameters (drafts 14 to
//!   16), extension headers; delta-coded types from draft-16.
//! - [`TrackNamespace`] with conversions to and from [`moq_lite::model::Path`],
//!   [`Location`], [`SubscriptionFilter`], reason phrases.
//! - [`control`]: every control message, and [`control::ControlMessage`]
//!   with version-aware `encode` / `decode`.
//! - [`data`]: SUBGROUP_HEADER and subgroup objects, FETCH_HEADER and fetch
//!   objects, OBJECT_DATAGRAM, object status and extension headers.
//!
//! Errors are moq-lite's [`moq_lite::coding::DecodeError`] (Short / Invalid /
//! TooLarge) and [`moq_lite::coding::EncodeError`]. Decoders never panic and
//! check every length read from the wire against a named limit and against
//! what is buffered before allocating.
//!
//! On top of the codec: [`ietf::Session`], the IETF session (drafts 14 to
//! 17) mapped onto moq-lite's model, and [`connect`] / [`accept`], one entry
//! point that runs moq-lite or IETF by negotiated protocol and returns one
//! [`Session`] handle.

#![warn(missing_docs)]

pub mod common;
pub mod control;
pub mod data;
mod dispatch;
pub mod ietf;
pub mod kvp;
pub mod namespace;
pub mod protocols;
pub mod varint;
mod version;

pub use common::{Location, MAX_REASON_LEN, SubscriptionFilter};
pub use dispatch::{
    ALL_PROTOCOLS, Handshake, IETF_PROTOCOLS, Session, Version, accept, connect, handshake,
    supported_protocols,
};
pub use kvp::{KeyValuePair, KeyValuePairs, Value};
pub use namespace::{NamespaceError, TrackNamespace};
pub use varint::Vi64;
pub use version::Draft;

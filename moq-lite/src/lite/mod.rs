//! The moq-lite wire messages, for every version we speak.
//!
//! moq-lite-05, -04 and -03 are chosen by ALPN; -02 and -01 through the SETUP
//! path (see [`Version`]). Every stream starts with a stream type
//! ([`ControlStream`], [`DataStream`], [`SetupStream`]); the messages that
//! follow are length-prefixed and implement [`Message`], whose `encode` /
//! `decode` take the negotiated [`Version`] and refuse messages the version
//! does not have. Fields a version lacks are left out on encode and take
//! their neutral value on decode (for example the hop list of a -02
//! ANNOUNCE is empty).
//!
//! This module is pure encoding: it checks that values are well-formed and
//! within limits, not that messages arrive in a sensible order. It does no
//! I/O; the session (`Session`'s publisher and subscriber halves) reads and
//! writes these messages on streams.

mod announce;
mod datagram;
mod fetch;
mod goaway;
mod group;
mod message;
mod path;
mod probe;
mod setup;
mod setup_stream;
mod stream;
mod subscribe;
mod track;
mod version;

pub use announce::*;
pub use datagram::*;
pub use fetch::*;
pub use goaway::*;
pub use group::*;
pub use message::*;
pub use probe::*;
pub use setup::*;
pub use setup_stream::*;
pub use stream::*;
pub use subscribe::*;
pub use track::*;
pub use version::*;

#[cfg(test)]
pub(crate) use message::test_util;

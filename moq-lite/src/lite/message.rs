//! The [`Message`] trait: a version-aware body inside a varint length prefix.
//!
//! Every moq-lite message is `Message Length (i)` followed by the body (the
//! lite drafts, section "Message Length"). Which fields the body has depends
//! on the version, and some messages exist only in some versions, so the
//! trait passes the [`Version`] down and refuses messages a version lacks.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Version;
use crate::coding::{DecodeError, EncodeError, LengthPrefix, decode_framed, encode_framed};

/// A moq-lite message with a varint length prefix.
pub trait Message: Sized {
    /// The message name, as the drafts spell it, for errors.
    const NAME: &'static str;

    /// Whether the message exists in `version`.
    fn exists_in(version: Version) -> bool;

    /// Writes the body (without the length prefix) for `version`.
    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError>;

    /// Reads the body from a buffer holding exactly the body's bytes.
    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError>;

    /// Writes the length-prefixed message; fails with [`EncodeError::Version`]
    /// when `version` has no such message.
    fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        if !Self::exists_in(version) {
            return Err(EncodeError::Version(Self::NAME));
        }
        encode_framed(buf, LengthPrefix::VarInt, |body| self.encode_body(version, body))
    }

    /// Reads one length-prefixed message; [`DecodeError::Short`] until all of
    /// it is buffered (see [`crate::coding`] for retrying).
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        if !Self::exists_in(version) {
            return Err(DecodeError::Invalid("message not defined in this version"));
        }
        decode_framed(buf, LengthPrefix::VarInt, |body| Self::decode_body(body, version))
    }
}

/// Shared checks for the message tests of every file.
#[cfg(test)]
pub(crate) mod test_util {
    use std::fmt::Debug;

    use proptest::prelude::*;

    use super::*;
    use crate::model::Path;

    /// Checks a hand-derived byte vector both ways, and that every strict
    /// prefix of it is [`DecodeError::Short`].
    pub fn check_bytes<T, E, D>(value: &T, expected: &[u8], encode: E, decode: D)
    where
        T: PartialEq + Debug,
        E: Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
        D: Fn(&mut &[u8]) -> Result<T, DecodeError>,
    {
        let mut out = Vec::new();
        encode(value, &mut out).expect("encodes");
        assert_eq!(out, expected, "encoding of {value:?}");
        let mut cursor = expected;
        assert_eq!(decode(&mut cursor).as_ref(), Ok(value));
        assert!(cursor.is_empty(), "decode left bytes");
        for n in 0..expected.len() {
            let mut cursor = &expected[..n];
            assert_eq!(
                decode(&mut cursor),
                Err(DecodeError::Short),
                "prefix of {n} bytes"
            );
        }
    }

    /// [`check_bytes`] for a [`Message`].
    pub fn check_message<M: Message + PartialEq + Debug>(msg: &M, version: Version, expected: &[u8]) {
        check_bytes(
            msg,
            expected,
            |m, out| m.encode(version, out),
            |c| M::decode(c, version),
        );
    }

    /// Encodes and decodes a message, which must come back equal.
    pub fn round_trip<M: Message + PartialEq + Debug>(
        msg: &M,
        version: Version,
    ) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        msg.encode(version, &mut out)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut cursor = &out[..];
        let decoded = M::decode(&mut cursor, version);
        prop_assert_eq!(decoded.as_ref(), Ok(msg));
        prop_assert!(cursor.is_empty());
        Ok(())
    }

    /// Feeds arbitrary bytes to a decoder: it must not panic, and whatever it
    /// accepts must re-encode to something that decodes to the same value.
    pub fn garbage<T, E, D>(bytes: &[u8], encode: E, decode: D)
    where
        T: PartialEq + Debug,
        E: Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
        D: Fn(&mut &[u8]) -> Result<T, DecodeError>,
    {
        let mut cursor = bytes;
        if let Ok(value) = decode(&mut cursor) {
            let mut out = Vec::new();
            encode(&value, &mut out).expect("a decoded value re-encodes");
            let mut cursor = &out[..];
            assert_eq!(decode(&mut cursor), Ok(value));
        }
    }

    /// [`garbage`] for a [`Message`] in every version.
    pub fn garbage_message<M: Message + PartialEq + Debug>(bytes: &[u8]) {
        for version in Version::ALL {
            garbage(
                bytes,
                |m: &M, out| m.encode(version, out),
                |c| M::decode(c, version),
            );
        }
    }

    /// Arbitrary bytes, mostly small, often starting with a plausible length.
    pub fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..48),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut v| {
                let len = v.len() as u8;
                v.insert(0, len);
                v
            }),
        ]
    }

    /// Valid broadcast paths, including the root.
    pub fn any_path() -> impl Strategy<Value = Path> {
        "([a-z0-9_-]{1,6}(/[a-zé0-9]{1,6}){0,3})?".prop_map(Path::new)
    }

    /// Track names: any short UTF-8.
    pub fn any_name() -> impl Strategy<Value = String> {
        ".{0,12}"
    }

    /// Varint-sized integers, biased to the length boundaries.
    pub fn any_varint() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..70,
            Just(16_383u64),
            Just(16_384u64),
            0..=crate::coding::VarInt::MAX.into_inner()
        ]
    }

    /// Optional group sequences whose `+ 1` still fits a varint.
    pub fn any_opt_seq() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(0..crate::coding::VarInt::MAX.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::DecodeError;
    use crate::lite::*;

    // A length of 2^62 - 1 with nothing behind it: every message refuses it at
    // once (no waiting for more bytes, no allocation).
    #[test]
    fn huge_lengths_are_too_large() {
        let huge: &[u8] = &[0xff; 8];
        for v in Version::ALL {
            let too_large =
                |r: Result<(), DecodeError>| assert!(matches!(r, Err(DecodeError::TooLarge(_))), "{v}");
            too_large(Subscribe::decode(&mut &huge[..], v).map(drop));
            too_large(SubscribeUpdate::decode(&mut &huge[..], v).map(drop));
            if v.has_typed_announces() {
                let mut typed = vec![0x00];
                typed.extend_from_slice(huge);
                too_large(AnnounceEvent::decode(&mut &typed[..], v).map(drop));
            } else {
                too_large(Announce::decode(&mut &huge[..], v).map(drop));
            }
            too_large(AnnounceInterest::decode(&mut &huge[..], v).map(drop));
            too_large(Group::decode(&mut &huge[..], v).map(drop));
            let mut typed = vec![0x00];
            typed.extend_from_slice(huge);
            let resp = SubscribeResponse::decode(&mut &typed[..], v).map(drop);
            // Before -03 there is no type prefix and 0x00 is a zero-length SUBSCRIBE_OK.
            if !v.uses_setup() {
                too_large(resp);
            }
        }
        too_large_v(Fetch::decode(&mut &huge[..], Version::Lite04).map(drop));
        too_large_v(Probe::decode(&mut &huge[..], Version::Lite03).map(drop));
        too_large_v(Goaway::decode(&mut &huge[..], Version::Lite04).map(drop));
        too_large_v(AnnounceInit::decode(&mut &huge[..], Version::Lite02).map(drop));
        too_large_v(SessionUpdate::decode(&mut &huge[..], Version::Lite01).map(drop));
    }

    fn too_large_v(r: Result<(), DecodeError>) {
        assert!(matches!(r, Err(DecodeError::TooLarge(_))));
    }
}

//! Session establishment on the SETUP path (moq-lite-01/02 and draft-14).
//!
//! With ALPN `moql` (or no WebTransport protocol) the client opens a
//! bidirectional stream and writes CLIENT_SETUP: type 0x20, a 16-bit
//! big-endian length, its version codes and draft-14 style parameters
//! (draft-ietf-moq-transport-14 section 9.3). The server answers SERVER_SETUP
//! (0x21) with the version it picked. The 0x20 doubles as the stream type of
//! moq-lite-02's "SessionCompat" stream; if a lite version wins the stream
//! carries SESSION_UPDATE messages afterwards.
//!
//! moq-lite-02 also defines a native Session stream (type 0x0) with
//! SESSION_CLIENT / SESSION_SERVER, varint-length messages whose extensions
//! are plain `(id, bytes)` pairs rather than draft-14 key/value pairs. Real
//! peers use the SessionCompat form, but both are here.
//!
//! Parameters are kept in order, duplicates included: draft-14 section 9.2
//! says receivers MUST allow duplicates of unknown parameters and ignore
//! unrecognized ones, so the codec keeps everything and lets the session pick
//! what it understands.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{
    Decode, DecodeError, Encode, EncodeError, KeyValuePair, KeyValuePairs, LengthPrefix, MAX_KEY_VALUE_LEN,
    Value, decode_bytes, decode_framed, encode_bytes, encode_framed,
};

/// The most extensions one SESSION_CLIENT / SESSION_SERVER may carry.
pub const MAX_EXTENSIONS: usize = 64;

/// The longest extension payload (the 2^16 - 1 that caps a key-value value,
/// [`MAX_KEY_VALUE_LEN`]).
pub const MAX_EXTENSION_LEN: usize = MAX_KEY_VALUE_LEN;

/// The most version codes one CLIENT_SETUP / SESSION_CLIENT may offer.
pub const MAX_VERSIONS: usize = 32;

crate::wire_enum! {
    /// Setup parameter types (draft-ietf-moq-transport-14 section 9.3.2;
    /// draft-17 calls them setup options), shared by moq-lite's SETUP path
    /// and every IETF draft.
    pub enum SetupParameter {
        /// PATH (odd: bytes): the URI path on raw QUIC.
        Path = 0x01,
        /// MAX_REQUEST_ID (even: integer, drafts 14 to 16); draft-14 peers
        /// need it, the default is 0.
        MaxRequestId = 0x02,
        /// AUTHORIZATION TOKEN (odd: bytes).
        AuthorizationToken = 0x03,
        /// MAX_AUTH_TOKEN_CACHE_SIZE (even: integer).
        MaxAuthTokenCacheSize = 0x04,
        /// AUTHORITY (odd: bytes): the URI authority on raw QUIC.
        Authority = 0x05,
        /// MOQT_IMPLEMENTATION (odd: bytes). The -14 text says 0x05, which
        /// clashes with AUTHORITY; peers use 0x07, as -15 does.
        Implementation = 0x07,
    }
}

/// Setup parameters in wire order, duplicates kept: the draft-14 key-value
/// pairs both protocol families share (see [`KeyValuePairs`]).
pub type Parameters = KeyValuePairs;

/// One setup parameter.
pub type Parameter = KeyValuePair;

/// A setup parameter's value: an integer for an even key, bytes for an odd one.
pub type ParameterValue = Value;

fn encode_versions<B: BufMut>(versions: &[u32], buf: &mut B) -> Result<(), EncodeError> {
    if versions.len() > MAX_VERSIONS {
        return Err(EncodeError::TooLarge("version count"));
    }
    (versions.len() as u64).encode(buf)?;
    for v in versions {
        (*v as u64).encode(buf)?;
    }
    Ok(())
}

fn decode_version<B: Buf>(buf: &mut B) -> Result<u32, DecodeError> {
    // draft-14 section 9.3.1: versions are 32-bit integers encoded as varints.
    u32::try_from(u64::decode(buf)?).map_err(|_| DecodeError::Invalid("version code over 32 bits"))
}

fn decode_versions<B: Buf>(buf: &mut B) -> Result<Vec<u32>, DecodeError> {
    let count = u64::decode(buf)?;
    if count > MAX_VERSIONS as u64 {
        return Err(DecodeError::TooLarge("version count"));
    }
    let mut versions = Vec::with_capacity((count as usize).min(buf.remaining()));
    for _ in 0..count {
        versions.push(decode_version(buf)?);
    }
    Ok(versions)
}

fn expect_type<B: Buf>(buf: &mut B, expected: u64, what: &'static str) -> Result<(), DecodeError> {
    if u64::decode(buf)? != expected {
        return Err(DecodeError::Invalid(what));
    }
    Ok(())
}

/// CLIENT_SETUP: the versions the client speaks (codes, preferred first) and
/// its setup parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientSetup {
    /// Version codes, e.g. [`Version::code`] or [`super::DRAFT_14_CODE`].
    pub versions: Vec<u32>,
    /// Setup parameters.
    pub parameters: Parameters,
}

impl ClientSetup {
    /// The message type, also the SessionCompat stream type.
    pub const TYPE: u64 = 0x20;

    /// Reads the 16-bit length and body, after the 0x20 type was consumed
    /// as the stream type (see [`super::SetupStream`]).
    pub fn decode_after_type<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_framed(buf, LengthPrefix::U16, |body| {
            Ok(ClientSetup {
                versions: decode_versions(body)?,
                parameters: Parameters::decode(body)?,
            })
        })
    }

    /// The first moq-lite version offered that is also in `supported`.
    pub fn pick_lite(&self, supported: &[Version]) -> Option<Version> {
        self.versions
            .iter()
            .filter_map(|&code| Version::from_code(code))
            .find(|v| supported.contains(v))
    }
}

/// Type 0x20, 16-bit length, then the body.
impl Encode for ClientSetup {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        Self::TYPE.encode(buf)?;
        encode_framed(buf, LengthPrefix::U16, |body| {
            encode_versions(&self.versions, body)?;
            self.parameters.encode(body)
        })
    }
}

/// Type 0x20, 16-bit length, then the body.
impl Decode for ClientSetup {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        expect_type(buf, Self::TYPE, "expected CLIENT_SETUP (0x20)")?;
        Self::decode_after_type(buf)
    }
}

/// SERVER_SETUP: the version the server picked and its setup parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSetup {
    /// The selected version code; one the client offered.
    pub version: u32,
    /// Setup parameters.
    pub parameters: Parameters,
}

impl ServerSetup {
    /// The message type.
    pub const TYPE: u64 = 0x21;
}

/// Type 0x21, 16-bit length, then the body.
impl Encode for ServerSetup {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        Self::TYPE.encode(buf)?;
        encode_framed(buf, LengthPrefix::U16, |body| {
            (self.version as u64).encode(body)?;
            self.parameters.encode(body)
        })
    }
}

/// Type 0x21, 16-bit length, then the body.
impl Decode for ServerSetup {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        expect_type(buf, Self::TYPE, "expected SERVER_SETUP (0x21)")?;
        decode_framed(buf, LengthPrefix::U16, |body| {
            Ok(ServerSetup {
                version: decode_version(body)?,
                parameters: Parameters::decode(body)?,
            })
        })
    }
}

/// moq-lite-02 extensions: `(Extension ID (i), Extension Payload (b))` pairs,
/// at most [`MAX_EXTENSIONS`], payloads at most [`MAX_EXTENSION_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extensions(pub Vec<(u64, Bytes)>);

impl Encode for Extensions {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        if self.0.len() > MAX_EXTENSIONS {
            return Err(EncodeError::TooLarge("extension count"));
        }
        (self.0.len() as u64).encode(buf)?;
        for (id, payload) in &self.0 {
            id.encode(buf)?;
            encode_bytes(payload, MAX_EXTENSION_LEN, "extension payload", buf)?;
        }
        Ok(())
    }
}

impl Decode for Extensions {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let count = u64::decode(buf)?;
        if count > MAX_EXTENSIONS as u64 {
            return Err(DecodeError::TooLarge("extension count"));
        }
        let mut out = Vec::with_capacity((count as usize).min(buf.remaining() / 2));
        for _ in 0..count {
            let id = u64::decode(buf)?;
            out.push((id, decode_bytes(buf, MAX_EXTENSION_LEN, "extension payload")?));
        }
        Ok(Extensions(out))
    }
}

/// SESSION_CLIENT (moq-lite-02 Session stream): offered version codes and
/// extensions, with a varint length. Sent before a version is chosen, so its
/// encoding takes no version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionClient {
    /// Supported version codes.
    pub versions: Vec<u32>,
    /// Extensions.
    pub extensions: Extensions,
}

impl Encode for SessionClient {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        encode_framed(buf, LengthPrefix::VarInt, |body| {
            encode_versions(&self.versions, body)?;
            self.extensions.encode(body)
        })
    }
}

impl Decode for SessionClient {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_framed(buf, LengthPrefix::VarInt, |body| {
            Ok(SessionClient {
                versions: decode_versions(body)?,
                extensions: Extensions::decode(body)?,
            })
        })
    }
}

/// SESSION_SERVER (moq-lite-02 Session stream): the selected version code
/// and extensions, with a varint length.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionServer {
    /// The selected version code.
    pub version: u32,
    /// Extensions.
    pub extensions: Extensions,
}

impl Encode for SessionServer {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        encode_framed(buf, LengthPrefix::VarInt, |body| {
            (self.version as u64).encode(body)?;
            self.extensions.encode(body)
        })
    }
}

impl Decode for SessionServer {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_framed(buf, LengthPrefix::VarInt, |body| {
            Ok(SessionServer {
                version: decode_version(body)?,
                extensions: Extensions::decode(body)?,
            })
        })
    }
}

/// SESSION_UPDATE (moq-lite-01/02): the sender's estimated session bitrate,
/// sent on the session stream after setup. Replaced by PROBE in -03.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionUpdate {
    /// Bits per second from the congestion controller; 0 = not available.
    pub bitrate: u64,
}

impl Message for SessionUpdate {
    const NAME: &'static str = "SESSION_UPDATE";

    fn exists_in(version: Version) -> bool {
        version.uses_setup()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.bitrate.encode(buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(SessionUpdate {
            bitrate: u64::decode(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::DRAFT_14_CODE;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    fn check<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T, expected: &[u8]) {
        check_bytes(value, expected, |v, out| v.encode(out), |c| T::decode(c));
    }

    #[test]
    fn client_setup_bytes() {
        let mut parameters = Parameters::new();
        parameters.set_int(SetupParameter::MaxRequestId.code(), 100);
        parameters.set_bytes(SetupParameter::Path.code(), &b"/x"[..]);
        let msg = ClientSetup {
            versions: vec![Version::Lite02.code(), Version::Lite01.code(), DRAFT_14_CODE],
            parameters,
        };
        #[rustfmt::skip]
        let expected = [
            0x20,       // type CLIENT_SETUP
            0x00, 0x21, // 16-bit length: 33 body bytes
            0x03,       // 3 versions
            // 0xff0dad02 >= 2^30, so an 8-byte varint: 0b11 prefix on 0x00000000ff0dad02
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x0d, 0xad, 0x02,
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x0d, 0xad, 0x01, // 0xff0dad01
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x0e, // 0xff00000e (draft-14)
            0x02,       // 2 parameters
            0x02,       // MAX_REQUEST_ID: even key, so a varint value follows
            0x40, 0x64, // 100 as a two-byte varint
            0x01,       // PATH: odd key, so length and bytes follow
            0x02, b'/', b'x',
        ];
        check(&msg, &expected);
        assert_eq!(
            msg.pick_lite(&[Version::Lite01, Version::Lite02]),
            Some(Version::Lite02)
        );
        assert_eq!(msg.pick_lite(&[Version::Lite04]), None);

        // Read as the SessionCompat stream: type first, then the rest.
        let mut cursor = &expected[..];
        assert_eq!(
            crate::lite::SetupStream::decode(&mut cursor),
            Ok(crate::lite::StreamType::Known(crate::lite::SetupStream::Compat))
        );
        assert_eq!(ClientSetup::decode_after_type(&mut cursor), Ok(msg));
    }

    #[test]
    fn server_setup_bytes() {
        let msg = ServerSetup {
            version: Version::Lite02.code(),
            parameters: Parameters::new(),
        };
        #[rustfmt::skip]
        let expected = [
            0x21,       // type SERVER_SETUP
            0x00, 0x09, // 16-bit length: 9
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x0d, 0xad, 0x02, // selected 0xff0dad02
            0x00,       // no parameters
        ];
        check(&msg, &expected);
    }

    #[test]
    fn unknown_parameters_are_kept() {
        #[rustfmt::skip]
        let bytes = [
            0x21, 0x00, 0x09, // SERVER_SETUP, length 9
            0x01,             // version 1
            0x03,             // 3 parameters
            0x3e, 0x07,       // unknown even key 0x3e = 7
            0x3e, 0x08,       // the same unknown key again: allowed
            0x3f, 0x01, 0xaa, // unknown odd key 0x3f with one byte
        ];
        let mut cursor = &bytes[..];
        let msg = ServerSetup::decode(&mut cursor).unwrap();
        assert_eq!(msg.parameters.count(0x3e), 2);
        assert_eq!(msg.parameters.get_int(0x3e), Some(7));
        assert_eq!(msg.parameters.get_bytes(0x3f).map(|b| &b[..]), Some(&[0xaa][..]));
    }

    #[test]
    fn parameter_limits() {
        // 129 parameters (0x40 0x81 is a two-byte varint): over MAX_KEY_VALUE_PAIRS, refused from the count alone.
        let mut cursor: &[u8] = &[0x21, 0x00, 0x03, 0x01, 0x40, 0x81];
        assert!(matches!(
            ServerSetup::decode(&mut cursor),
            Err(DecodeError::TooLarge(_))
        ));
        let mut cursor: &[u8] = &[0x40, 0x81];
        assert!(matches!(
            Parameters::decode(&mut cursor),
            Err(DecodeError::TooLarge(_))
        ));
        // An odd key whose length is 2^16: over MAX_KEY_VALUE_LEN.
        let mut cursor: &[u8] = &[0x01, 0x01, 0x80, 0x01, 0x00, 0x00];
        assert!(matches!(
            Parameters::decode(&mut cursor),
            Err(DecodeError::TooLarge(_))
        ));
        // A value whose kind does not match its key cannot be encoded.
        let bad = KeyValuePairs(vec![Parameter {
            key: 1,
            value: ParameterValue::Int(1),
        }]);
        assert!(bad.encode(&mut Vec::new()).is_err());
        // A version code over 32 bits.
        let mut cursor: &[u8] = &[0x21, 0x00, 0x09, 0xc0, 0, 0, 0x01, 0, 0, 0, 0, 0x00];
        assert!(matches!(
            ServerSetup::decode(&mut cursor),
            Err(DecodeError::Invalid(_))
        ));
        // Not a CLIENT_SETUP at all.
        let mut cursor: &[u8] = &[0x21, 0x00, 0x00];
        assert!(matches!(
            ClientSetup::decode(&mut cursor),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn session_client_server_update_bytes() {
        let msg = SessionClient {
            versions: vec![Version::Lite02.code()],
            extensions: Extensions(vec![(0x05, Bytes::from_static(b"hi"))]),
        };
        #[rustfmt::skip]
        let expected = [
            0x0e, // length 14
            0x01, // 1 version
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x0d, 0xad, 0x02, // 0xff0dad02
            0x01, // 1 extension
            0x05, // id 5
            0x02, b'h', b'i', // payload (b)
        ];
        check(&msg, &expected);

        let msg = SessionServer {
            version: Version::Lite01.code(),
            extensions: Extensions::default(),
        };
        #[rustfmt::skip]
        let expected = [
            0x09, // length 9
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x0d, 0xad, 0x01, // 0xff0dad01
            0x00, // no extensions
        ];
        check(&msg, &expected);

        let msg = SessionUpdate { bitrate: 1_000_000 };
        // 1_000_000 = 0x0f4240 < 2^30: four-byte varint 0x800f4240
        let expected = [0x04, 0x80, 0x0f, 0x42, 0x40];
        for v in [Version::Lite02, Version::Lite01] {
            check_message(&msg, v, &expected);
        }
        assert!(msg.encode(Version::Lite03, &mut Vec::new()).is_err());
    }

    fn any_params() -> impl Strategy<Value = Parameters> {
        proptest::collection::vec(
            (any_varint(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(key, bytes)| {
                if key % 2 == 0 {
                    Parameter {
                        key,
                        value: ParameterValue::Int(key / 3),
                    }
                } else {
                    Parameter {
                        key,
                        value: ParameterValue::Bytes(bytes.into()),
                    }
                }
            }),
            0..6,
        )
        .prop_map(KeyValuePairs)
    }

    proptest! {
        #[test]
        fn round_trips(versions in proptest::collection::vec(any::<u32>(), 0..5), version in any::<u32>(),
                       params in any_params(), bitrate in any_varint()) {
            let client = ClientSetup { versions: versions.clone(), parameters: params.clone() };
            let mut out = Vec::new();
            client.encode(&mut out).unwrap();
            prop_assert_eq!(ClientSetup::decode(&mut &out[..]), Ok(client));
            let server = ServerSetup { version, parameters: params };
            let mut out = Vec::new();
            server.encode(&mut out).unwrap();
            prop_assert_eq!(ServerSetup::decode(&mut &out[..]), Ok(server));
            let session = SessionClient { versions, extensions: Extensions(vec![(7, Bytes::from_static(b"x"))]) };
            let mut out = Vec::new();
            session.encode(&mut out).unwrap();
            prop_assert_eq!(SessionClient::decode(&mut &out[..]), Ok(session));
            round_trip(&SessionUpdate { bitrate }, Version::Lite02)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage(&bytes, |v: &ClientSetup, out| v.encode(out), |c| ClientSetup::decode(c));
            let _ = ClientSetup::decode_after_type(&mut &bytes[..]);
            garbage(&bytes, |v: &ServerSetup, out| v.encode(out), |c| ServerSetup::decode(c));
            garbage(&bytes, |v: &SessionClient, out| v.encode(out), |c| SessionClient::decode(c));
            garbage(&bytes, |v: &SessionServer, out| v.encode(out), |c| SessionServer::decode(c));
            garbage_message::<SessionUpdate>(&bytes);
        }
    }
}

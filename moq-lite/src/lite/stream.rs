//! The stream type that opens every stream.
//!
//! Each QUIC stream starts with `Stream Type (i)` (section "STREAM_TYPE").
//! The values differ per version and per direction:
//!
//! | value | bidirectional                      | versions   |
//! |------:|:-----------------------------------|:-----------|
//! |  0x0  | Session                            | 01, 02     |
//! |  0x1  | Announce                           | all        |
//! |  0x2  | Subscribe                          | all        |
//! |  0x3  | Fetch                              | 03, 04     |
//! |  0x4  | Probe                              | 03, 04     |
//! |  0x5  | Goaway                             | 04, 05     |
//! |  0x6  | Track                              | 05         |
//! |  0x20 | SessionCompat (CLIENT_SETUP)       | SETUP path |
//!
//! Unidirectional streams: 0x0 Group in every version, 0x1 Setup from 05.
//!
//! An unknown type is not a decode error: moq-lite-03/04 negotiate extensions
//! by opening streams of new types, and the receiver resets just that stream
//! (section "STREAM_TYPE"; `shared/specs/README.md` says the same for every
//! version). So decoding yields [`StreamType::Unknown`] and leaves the choice
//! to the session. (moq-lite-02's text says an unknown type closes the
//! session; resetting the stream is the lenient reading.)
//!
//! The SETUP path's first stream is decoded before any version is chosen, by
//! [`SetupStream::decode`].

use bytes::{Buf, BufMut};

use super::Version;
use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// A decoded stream type: one this version knows, or an unknown value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType<T> {
    /// A type defined in the negotiated version.
    Known(T),
    /// A value this version does not define; reset only this stream.
    Unknown(u64),
}

/// The bidirectional (control) streams after the session is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlStream {
    /// moq-lite-01/02 session stream (SESSION_CLIENT, SESSION_SERVER,
    /// SESSION_UPDATE). Opened once, by the client.
    Session,
    /// Announce stream, opened by the subscriber with an announce request.
    Announce,
    /// Subscribe stream, opened by the subscriber with SUBSCRIBE.
    Subscribe,
    /// Fetch stream (moq-lite-03+), opened by the subscriber with FETCH.
    Fetch,
    /// Probe stream (moq-lite-03+), opened by the subscriber with PROBE.
    Probe,
    /// Goaway stream (moq-lite-04+), opened by either side with GOAWAY.
    Goaway,
    /// Track stream (moq-lite-05+), opened by the subscriber with TRACK.
    Track,
}

impl ControlStream {
    /// The wire value of this type.
    pub const fn code(self) -> u64 {
        match self {
            ControlStream::Session => 0x0,
            ControlStream::Announce => 0x1,
            ControlStream::Subscribe => 0x2,
            ControlStream::Fetch => 0x3,
            ControlStream::Probe => 0x4,
            ControlStream::Goaway => 0x5,
            ControlStream::Track => 0x6,
        }
    }

    /// Whether `version` defines this stream type.
    pub const fn exists_in(self, version: Version) -> bool {
        match self {
            ControlStream::Session => version.uses_setup(),
            ControlStream::Announce | ControlStream::Subscribe => true,
            ControlStream::Fetch | ControlStream::Probe => !version.uses_setup(),
            ControlStream::Goaway => version.has_goaway(),
            ControlStream::Track => version.has_track_stream(),
        }
    }

    /// The type with wire value `code` in `version`, if it defines one.
    pub fn from_code(code: u64, version: Version) -> Option<ControlStream> {
        let kind = match code {
            0x0 => ControlStream::Session,
            0x1 => ControlStream::Announce,
            0x2 => ControlStream::Subscribe,
            0x3 => ControlStream::Fetch,
            0x4 => ControlStream::Probe,
            0x5 => ControlStream::Goaway,
            0x6 => ControlStream::Track,
            _ => return None,
        };
        kind.exists_in(version).then_some(kind)
    }

    /// Writes the stream type; fails if `version` lacks this stream.
    pub fn encode<B: BufMut>(self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        if !self.exists_in(version) {
            return Err(EncodeError::Version("stream type"));
        }
        self.code().encode(buf)
    }

    /// Reads a stream type; an undefined value is [`StreamType::Unknown`].
    pub fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<StreamType<ControlStream>, DecodeError> {
        let code = u64::decode(buf)?;
        Ok(match ControlStream::from_code(code, version) {
            Some(kind) => StreamType::Known(kind),
            None => StreamType::Unknown(code),
        })
    }
}

/// The unidirectional (data) streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataStream {
    /// Group stream: a GROUP header followed by FRAMEs.
    Group,
    /// Setup stream (moq-lite-05+): one SETUP, then FIN; one each way.
    Setup,
}

impl DataStream {
    /// The wire value of this type.
    pub const fn code(self) -> u64 {
        match self {
            DataStream::Group => 0x0,
            DataStream::Setup => 0x1,
        }
    }

    /// Whether `version` defines this stream type.
    pub const fn exists_in(self, version: Version) -> bool {
        match self {
            DataStream::Group => true,
            DataStream::Setup => version.has_setup_stream(),
        }
    }

    /// Writes the stream type; fails if `version` lacks this stream.
    pub fn encode<B: BufMut>(self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        if !self.exists_in(version) {
            return Err(EncodeError::Version("stream type"));
        }
        self.code().encode(buf)
    }

    /// Reads a stream type; an undefined value is [`StreamType::Unknown`].
    pub fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<StreamType<DataStream>, DecodeError> {
        Ok(match u64::decode(buf)? {
            0x0 => StreamType::Known(DataStream::Group),
            0x1 if version.has_setup_stream() => StreamType::Known(DataStream::Setup),
            code => StreamType::Unknown(code),
        })
    }
}

/// The first bidirectional stream when the version is chosen in SETUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStream {
    /// 0x0: moq-lite-02's own session stream; SESSION_CLIENT follows.
    Session,
    /// 0x20: SessionCompat. The value doubles as CLIENT_SETUP's message type,
    /// so what follows is CLIENT_SETUP's 16-bit length and body (read it with
    /// [`super::ClientSetup::decode_after_type`]).
    Compat,
}

impl SetupStream {
    /// The wire value.
    pub const fn code(self) -> u64 {
        match self {
            SetupStream::Session => 0x0,
            SetupStream::Compat => 0x20,
        }
    }

    /// Reads the first stream's type; anything else is [`StreamType::Unknown`].
    pub fn decode<B: Buf>(buf: &mut B) -> Result<StreamType<SetupStream>, DecodeError> {
        Ok(match u64::decode(buf)? {
            0x0 => StreamType::Known(SetupStream::Session),
            0x20 => StreamType::Known(SetupStream::Compat),
            code => StreamType::Unknown(code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn control(bytes: &[u8], version: Version) -> Result<StreamType<ControlStream>, DecodeError> {
        let mut cursor = bytes;
        ControlStream::decode(&mut cursor, version)
    }

    #[test]
    fn lite04_types() {
        use ControlStream::*;
        for (byte, kind) in [
            (0x01, Announce),
            (0x02, Subscribe),
            (0x03, Fetch),
            (0x04, Probe),
            (0x05, Goaway),
        ] {
            assert_eq!(control(&[byte], Version::Lite04), Ok(StreamType::Known(kind)));
            let mut out = Vec::new();
            kind.encode(Version::Lite04, &mut out).unwrap();
            assert_eq!(out, [byte]);
        }
        assert_eq!(control(&[0x00], Version::Lite04), Ok(StreamType::Unknown(0)));
        assert_eq!(control(&[0x06], Version::Lite04), Ok(StreamType::Unknown(6)));
        // 0x40 0x20: a two-byte varint for 0x20, an extension probe
        assert_eq!(
            control(&[0x40, 0x20], Version::Lite04),
            Ok(StreamType::Unknown(0x20))
        );
    }

    #[test]
    fn lite03_types() {
        assert_eq!(
            control(&[0x04], Version::Lite03),
            Ok(StreamType::Known(ControlStream::Probe))
        );
        // GOAWAY came with lite-04.
        assert_eq!(control(&[0x05], Version::Lite03), Ok(StreamType::Unknown(5)));
        let mut out = Vec::new();
        assert!(ControlStream::Goaway.encode(Version::Lite03, &mut out).is_err());
    }

    #[test]
    fn lite02_types() {
        for v in [Version::Lite02, Version::Lite01] {
            assert_eq!(control(&[0x00], v), Ok(StreamType::Known(ControlStream::Session)));
            assert_eq!(
                control(&[0x01], v),
                Ok(StreamType::Known(ControlStream::Announce))
            );
            assert_eq!(
                control(&[0x02], v),
                Ok(StreamType::Known(ControlStream::Subscribe))
            );
            assert_eq!(control(&[0x03], v), Ok(StreamType::Unknown(3)));
        }
    }

    #[test]
    fn data_and_setup_types() {
        let mut cursor: &[u8] = &[0x00];
        assert_eq!(
            DataStream::decode(&mut cursor, Version::Lite04),
            Ok(StreamType::Known(DataStream::Group))
        );
        let mut cursor: &[u8] = &[0x01];
        assert_eq!(
            DataStream::decode(&mut cursor, Version::Lite02),
            Ok(StreamType::Unknown(1))
        );
        let mut cursor: &[u8] = &[0x20];
        assert_eq!(
            SetupStream::decode(&mut cursor),
            Ok(StreamType::Known(SetupStream::Compat))
        );
        let mut cursor: &[u8] = &[];
        assert_eq!(SetupStream::decode(&mut cursor), Err(DecodeError::Short));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            for v in Version::ALL {
                let _ = control(&bytes, v);
                let mut cursor = &bytes[..];
                let _ = DataStream::decode(&mut cursor, v);
            }
            let mut cursor = &bytes[..];
            let _ = SetupStream::decode(&mut cursor);
        }
    }
}

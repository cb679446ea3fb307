//! Session setup: CLIENT_SETUP (0x20) / SERVER_SETUP (0x21) in drafts 14 to
//! 16, the single SETUP (0x2F00) of draft-17.
//!
//! Draft-14 carries the offered versions and the selected version; from
//! draft-15 the version comes from ALPN and the messages carry only setup
//! parameters. Setup parameters are key-value pairs (delta-coded from
//! draft-16); draft-17's SETUP has no count: its options run to the end of
//! the message. Unknown setup parameters are kept (receivers ignore them).
//!
//! moq-lite's [`moq_lite::lite::ClientSetup`] / [`moq_lite::lite::ServerSetup`]
//! encode exactly the draft-14 form; they do not fit drafts 15 to 17 (no
//! versions, delta-coded pairs), so these types cover all four drafts and
//! convert to and from moq-lite's for draft-14 (see the `From` impls, and the
//! test that both produce the same bytes). Both carry the same parameter
//! type, [`KeyValuePairs`].
//!
//! Traps from real draft-14 peers: send MAX_REQUEST_ID in SETUP (the default
//! is 0, so the peer could make no requests), and MOQT_IMPLEMENTATION is
//! 0x07, not the 0x05 of the -14 text (which is AUTHORITY).

use bytes::{Buf, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::MessageBody;
use crate::Draft;
use crate::kvp::KeyValuePairs;
use crate::varint::{get_len, get_vi, put_vi};

/// The most versions one CLIENT_SETUP may offer.
pub const MAX_VERSIONS: usize = moq_lite::lite::MAX_VERSIONS;

pub use moq_lite::lite::SetupParameter;

fn check_versions(versions: &[u32]) -> Result<(), EncodeError> {
    if versions.len() > MAX_VERSIONS {
        return Err(EncodeError::TooLarge("version count"));
    }
    Ok(())
}

fn get_version<B: Buf>(buf: &mut B, draft: Draft) -> Result<u32, DecodeError> {
    u32::try_from(get_vi(buf, draft)?).map_err(|_| DecodeError::Invalid("version over 32 bits"))
}

/// CLIENT_SETUP (0x20, drafts 14 to 16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientSetup {
    /// Offered version codes (draft-14 only; empty otherwise).
    pub versions: Vec<u32>,
    /// Setup parameters.
    pub parameters: KeyValuePairs,
}

impl MessageBody for ClientSetup {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft == Draft::D14 {
            check_versions(&self.versions)?;
            put_vi(draft, self.versions.len() as u64, buf)?;
            for v in &self.versions {
                put_vi(draft, *v as u64, buf)?;
            }
        }
        self.parameters.encode_counted(draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut versions = Vec::new();
        if draft == Draft::D14 {
            let count = get_len(buf, draft, MAX_VERSIONS, "version count")?;
            versions.reserve(count);
            for _ in 0..count {
                versions.push(get_version(buf, draft)?);
            }
        }
        Ok(ClientSetup {
            versions,
            parameters: KeyValuePairs::decode_counted(buf, draft)?,
        })
    }
}

/// SERVER_SETUP (0x21, drafts 14 to 16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSetup {
    /// The selected version code (draft-14 only; 0 otherwise).
    pub version: u32,
    /// Setup parameters.
    pub parameters: KeyValuePairs,
}

impl MessageBody for ServerSetup {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft == Draft::D14 {
            put_vi(draft, self.version as u64, buf)?;
        }
        self.parameters.encode_counted(draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let version = if draft == Draft::D14 {
            get_version(buf, draft)?
        } else {
            0
        };
        Ok(ServerSetup {
            version,
            parameters: KeyValuePairs::decode_counted(buf, draft)?,
        })
    }
}

/// SETUP (0x2F00, draft-17): sent by both endpoints as the first message of
/// their unidirectional control stream; 0x2F00 is also the stream type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    /// Setup options (key-value pairs, no count: they fill the message).
    pub options: KeyValuePairs,
}

impl MessageBody for Setup {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.options.encode_pairs(draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(Setup {
            options: KeyValuePairs::decode_to_end(buf, draft)?,
        })
    }
}

/// The draft-14 CLIENT_SETUP as moq-lite's SETUP-path message.
impl From<&ClientSetup> for moq_lite::lite::ClientSetup {
    fn from(m: &ClientSetup) -> Self {
        moq_lite::lite::ClientSetup {
            versions: m.versions.clone(),
            parameters: m.parameters.clone(),
        }
    }
}

/// moq-lite's SETUP-path CLIENT_SETUP as a draft-14 message.
impl From<&moq_lite::lite::ClientSetup> for ClientSetup {
    fn from(m: &moq_lite::lite::ClientSetup) -> Self {
        ClientSetup {
            versions: m.versions.clone(),
            parameters: m.parameters.clone(),
        }
    }
}

/// The draft-14 SERVER_SETUP as moq-lite's SETUP-path message.
impl From<&ServerSetup> for moq_lite::lite::ServerSetup {
    fn from(m: &ServerSetup) -> Self {
        moq_lite::lite::ServerSetup {
            version: m.version,
            parameters: m.parameters.clone(),
        }
    }
}

/// moq-lite's SETUP-path SERVER_SETUP as a draft-14 message.
impl From<&moq_lite::lite::ServerSetup> for ServerSetup {
    fn from(m: &moq_lite::lite::ServerSetup) -> Self {
        ServerSetup {
            version: m.version,
            parameters: m.parameters.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlMessage;
    use crate::control::tests::check;
    use crate::kvp::{KeyValuePair, Value};
    use moq_lite::coding::encode_to_vec;

    #[test]
    fn client_setup_d14_with_traps() {
        let mut parameters = KeyValuePairs::new();
        // Trap: MAX_REQUEST_ID must be sent, or the peer may make no requests.
        parameters.set_int(SetupParameter::MaxRequestId.code(), 100);
        // Trap: MOQT_IMPLEMENTATION is 0x07 in practice, not the -14 text's 0x05.
        parameters.set_bytes(SetupParameter::Implementation.code(), &b"moq"[..]);
        let msg = ClientSetup {
            versions: vec![0xff00000e],
            parameters,
        };
        #[rustfmt::skip]
        let expected = [
            0x20,       // type CLIENT_SETUP
            0x00, 0x12, // 16-bit length 18
            0x01,       // one version
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x0e, // 0xff00000e, an 8-byte QUIC varint
            0x02,       // two parameters
            0x02, 0x40, 0x64, // MAX_REQUEST_ID (even): 100 as a two-byte varint
            0x07, 0x03, b'm', b'o', b'q', // IMPLEMENTATION (odd 0x07): length 3, "moq"
        ];
        check(&ControlMessage::ClientSetup(msg.clone()), Draft::D14, &expected);
        // moq-lite's SETUP-path encoder writes the same bytes.
        let lite: moq_lite::lite::ClientSetup = (&msg).into();
        assert_eq!(encode_to_vec(&lite).unwrap(), expected);
        assert_eq!(ClientSetup::from(&lite), msg);
    }

    #[test]
    fn server_setup_d14() {
        let msg = ServerSetup {
            version: 0xff00000e,
            parameters: KeyValuePairs(vec![KeyValuePair {
                key: SetupParameter::MaxRequestId.code(),
                value: Value::Int(10),
            }]),
        };
        #[rustfmt::skip]
        let expected = [
            0x21,       // type SERVER_SETUP
            0x00, 0x0b, // length 11
            0xc0, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x0e, // selected 0xff00000e
            0x01, 0x02, 0x0a, // one parameter: MAX_REQUEST_ID = 10
        ];
        check(&ControlMessage::ServerSetup(msg.clone()), Draft::D14, &expected);
        let lite: moq_lite::lite::ServerSetup = (&msg).into();
        assert_eq!(encode_to_vec(&lite).unwrap(), expected);
        assert_eq!(ServerSetup::from(&lite), msg);
    }

    #[test]
    fn setup_d15_d16() {
        let mut parameters = KeyValuePairs::new();
        parameters.set_bytes(SetupParameter::Implementation.code(), &b"x"[..]);
        parameters.set_int(SetupParameter::MaxRequestId.code(), 4);
        let client = ClientSetup {
            versions: vec![],
            parameters: parameters.clone(),
        };
        #[rustfmt::skip]
        let d15 = [
            0x20, 0x00, 0x06, // CLIENT_SETUP, length 6 (no versions from -15)
            0x02,             // two parameters, in insertion order
            0x07, 0x01, b'x', // IMPLEMENTATION "x"
            0x02, 0x04,       // MAX_REQUEST_ID 4
        ];
        check(&ControlMessage::ClientSetup(client.clone()), Draft::D15, &d15);
        let mut sorted = client.clone();
        sorted.parameters.0.reverse();
        #[rustfmt::skip]
        let d16 = [
            0x20, 0x00, 0x06, // CLIENT_SETUP, length 6
            0x02,             // two parameters, sorted and delta-coded
            0x02, 0x04,       // delta 2: MAX_REQUEST_ID 4
            0x05, 0x01, b'x', // delta 5: type 7 IMPLEMENTATION "x"
        ];
        check(&ControlMessage::ClientSetup(sorted), Draft::D16, &d16);
        let server = ServerSetup {
            version: 0,
            parameters: KeyValuePairs::new(),
        };
        // SERVER_SETUP, length 1, no parameters
        check(
            &ControlMessage::ServerSetup(server.clone()),
            Draft::D15,
            &[0x21, 0x00, 0x01, 0x00],
        );
        check(
            &ControlMessage::ServerSetup(server),
            Draft::D16,
            &[0x21, 0x00, 0x01, 0x00],
        );
    }

    #[test]
    fn setup_d17() {
        let mut options = KeyValuePairs::new();
        options.set_bytes(SetupParameter::Path.code(), &b"/a"[..]);
        options.set_bytes(SetupParameter::Implementation.code(), &b"x"[..]);
        #[rustfmt::skip]
        let expected = [
            0xaf, 0x00,       // type 0x2F00 as a two-byte vi64 (0x8000 | 0x2f00)
            0x00, 0x07,       // length 7
            0x01, 0x02, b'/', b'a', // delta 1: PATH "/a"
            0x06, 0x01, b'x', // delta 6: type 7 IMPLEMENTATION "x"; no count, fills the message
        ];
        check(&ControlMessage::Setup(Setup { options }), Draft::D17, &expected);
        assert!(
            ControlMessage::ClientSetup(ClientSetup::default())
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
    }
}

//! The Setup stream (moq-lite-05+): one SETUP message each way.
//!
//! Each endpoint opens one unidirectional stream of type 0x1, writes one
//! SETUP, and finishes it (lite-05 section "SETUP"). The body is
//! `Parameter Count (i)` then, per parameter, `ID (i) | Length (i) | Value`.
//! The -05 text defines Probe (0x1) and Path (0x2); the shipped code also
//! sends Role (0x3), Cost (0x4) and Hop (0x5) on -05, so all five are read
//! here and any other ID is skipped (`lite-06-shipped-notes.md` section 4).
//! A repeated ID is an error; parameters may come in any order.
//!
//! ```
//! use moq_lite::lite::{Message, Setup, Version};
//!
//! // The empty SETUP every endpoint sends at least: length 1, no parameters.
//! let mut out = Vec::new();
//! Setup::default().encode(Version::Lite05, &mut out).unwrap();
//! assert_eq!(out, [0x01, 0x00]);
//! ```

use bytes::{Buf, Bytes, BytesMut};

use super::{HopId, Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// The most parameters one SETUP may carry.
pub const MAX_SETUP_PARAMETERS: u64 = 64;

/// The largest SETUP body we read (the shipped code refuses more than 64 KiB).
pub const MAX_SETUP_SIZE: usize = 64 * 1024;

/// The longest Path parameter, in bytes.
pub const MAX_SETUP_PATH: usize = 8192;

const PROBE: u64 = 0x1;
const PATH: u64 = 0x2;
const ROLE: u64 = 0x3;
const COST: u64 = 0x4;
const HOP: u64 = 0x5;

/// Which directions the client wired (parameter Role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Publishes and subscribes (no Role parameter, or any other value).
    #[default]
    Both,
    /// 1: only publishes.
    Publisher,
    /// 2: only subscribes.
    Subscriber,
}

/// SETUP: what an endpoint tells its peer when a -05+ session starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    /// Probe level: 0 none, 1 reports estimates, 2 can also raise its send
    /// rate on request (values above 2 read as 2). `None`: not sent.
    pub probe: Option<u64>,
    /// The client's session root and query (`path?query`), for transports
    /// without a URL (raw QUIC). Raw UTF-8 on the wire.
    pub path: Option<String>,
    /// The client's directions.
    pub role: Role,
    /// The price of pulling over this link, for route selection (absent = 1).
    pub cost: Option<u64>,
    /// The sender's hop ID; 0 on the wire reads as absent.
    pub hop: Option<HopId>,
}

fn encode_int_param(id: u64, value: u64, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let mut inner = BytesMut::new();
    value.encode(&mut inner)?;
    id.encode(buf)?;
    (inner.len() as u64).encode(buf)?;
    buf.extend_from_slice(&inner);
    Ok(())
}

/// A parameter value that must be exactly one varint.
fn decode_int_value(mut value: Bytes) -> Result<u64, DecodeError> {
    let v = u64::decode(&mut value).map_err(|_| DecodeError::Invalid("SETUP parameter is not a varint"))?;
    if value.has_remaining() {
        return Err(DecodeError::Invalid("SETUP parameter longer than its varint"));
    }
    Ok(v)
}

impl Message for Setup {
    const NAME: &'static str = "SETUP";

    fn exists_in(version: Version) -> bool {
        version.has_setup_stream()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let role = match self.role {
            Role::Both => None,
            Role::Publisher => Some(1),
            Role::Subscriber => Some(2),
        };
        let hop = self.hop.filter(|hop| !hop.is_unknown());
        let count = [
            self.probe.is_some(),
            self.path.is_some(),
            role.is_some(),
            self.cost.is_some(),
            hop.is_some(),
        ]
        .into_iter()
        .filter(|present| *present)
        .count() as u64;
        count.encode(buf)?;
        if let Some(probe) = self.probe {
            encode_int_param(PROBE, probe, buf)?;
        }
        if let Some(path) = &self.path {
            if path.len() > MAX_SETUP_PATH {
                return Err(EncodeError::TooLarge("SETUP path"));
            }
            PATH.encode(buf)?;
            (path.len() as u64).encode(buf)?;
            buf.extend_from_slice(path.as_bytes());
        }
        if let Some(role) = role {
            encode_int_param(ROLE, role, buf)?;
        }
        if let Some(cost) = self.cost {
            encode_int_param(COST, cost, buf)?;
        }
        if let Some(hop) = hop {
            encode_int_param(HOP, hop.into_inner(), buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        // The body is already whole here (within the reader's message bound);
        // SETUP has a tighter one, as the shipped code has.
        if buf.remaining() > MAX_SETUP_SIZE {
            return Err(DecodeError::TooLarge("SETUP"));
        }
        let count = u64::decode(buf)?;
        if count > MAX_SETUP_PARAMETERS {
            return Err(DecodeError::TooLarge("SETUP parameter count"));
        }
        let mut setup = Setup::default();
        let mut seen = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let id = u64::decode(buf)?;
            if seen.contains(&id) {
                return Err(DecodeError::Invalid("repeated SETUP parameter"));
            }
            seen.push(id);
            let len = u64::decode(buf)?;
            if len > buf.remaining() as u64 {
                return Err(DecodeError::Invalid("SETUP parameter runs past the message"));
            }
            let value = buf.split_to(len as usize);
            match id {
                PROBE => setup.probe = Some(decode_int_value(value)?.min(2)),
                PATH => {
                    if value.len() > MAX_SETUP_PATH {
                        return Err(DecodeError::TooLarge("SETUP path"));
                    }
                    let path = String::from_utf8(value.to_vec())
                        .map_err(|_| DecodeError::Invalid("SETUP path is not UTF-8"))?;
                    setup.path = Some(path);
                }
                ROLE => {
                    setup.role = match decode_int_value(value)? {
                        1 => Role::Publisher,
                        2 => Role::Subscriber,
                        _ => Role::Both,
                    }
                }
                COST => setup.cost = Some(decode_int_value(value)?),
                HOP => {
                    setup.hop = Some(HopId::from_wire(decode_int_value(value)?)).filter(|h| !h.is_unknown())
                }
                // Unknown IDs are ignored: extensions.
                _ => {}
            }
        }
        Ok(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn empty_setup() {
        // Section 4 of the shipped notes: `01 01 00` with the stream type.
        check_message(&Setup::default(), Version::Lite05, &[0x01, 0x00]);
    }

    #[test]
    fn setup_with_every_parameter() {
        let msg = Setup {
            probe: Some(1),
            path: Some("anon?jwt=x".into()),
            role: Role::Subscriber,
            cost: Some(100),
            hop: HopId::new(5),
        };
        #[rustfmt::skip]
        let expected = [
            0x1a,                   // length 26
            0x05,                   // five parameters
            0x01, 0x01, 0x01,       // Probe: 1
            0x02, 0x0a, b'a', b'n', b'o', b'n', b'?', b'j', b'w', b't', b'=', b'x', // Path
            0x03, 0x01, 0x02,       // Role: subscriber
            0x04, 0x02, 0x40, 0x64, // Cost: 100 (two-byte varint)
            0x05, 0x01, 0x05,       // Hop: 5
        ];
        check_message(&msg, Version::Lite05, &expected);
    }

    #[test]
    fn unknown_parameters_are_skipped_and_order_is_free() {
        // Hop before Probe, and an unknown ID 0x21 with two bytes.
        let bytes = [
            0x0b, 0x03, 0x05, 0x01, 0x07, 0x21, 0x02, 0xaa, 0xbb, 0x01, 0x01, 0x07,
        ];
        let setup = Setup::decode(&mut &bytes[..], Version::Lite05).unwrap();
        assert_eq!(setup.hop, HopId::new(7));
        assert_eq!(setup.probe, Some(2), "a probe level above 2 reads as 2");
        assert_eq!(setup.path, None);
    }

    #[test]
    fn bad_setups_are_refused() {
        // The same ID twice.
        let twice = [0x07, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
        assert!(Setup::decode(&mut &twice[..], Version::Lite05).is_err());
        // A value running past the message.
        let long = [0x04, 0x01, 0x02, 0x09, b'a'];
        assert!(Setup::decode(&mut &long[..], Version::Lite05).is_err());
        // Too many parameters.
        let many = [0x02, 0x40, 0x41];
        assert!(Setup::decode(&mut &many[..], Version::Lite05).is_err());
        // Not in -04.
        assert!(Setup::default().encode(Version::Lite04, &mut Vec::new()).is_err());
        // A body past 64 KiB, however well formed inside.
        let mut big = vec![0x80, 0x01, 0x00, 0x01]; // length 65 537, one parameter
        big.extend_from_slice(&[0x21, 0x80, 0x00, 0xff, 0xfa]); // unknown ID, 65 530 bytes
        big.resize(4 + 65_537, 0);
        assert_eq!(
            Setup::decode(&mut &big[..], Version::Lite05),
            Err(DecodeError::TooLarge("SETUP"))
        );
    }

    proptest! {
        #[test]
        fn setup_round_trips(probe in proptest::option::of(0u64..3), path in proptest::option::of(".{0,20}"),
                             cost in proptest::option::of(any_varint()), hop in proptest::option::of(1u64..(1 << 53))) {
            let msg = Setup { probe, path, role: Role::Publisher, cost, hop: hop.and_then(HopId::new) };
            round_trip(&msg, Version::Lite05)?;
        }

        #[test]
        fn setup_garbage(bytes in any_bytes()) {
            garbage_message::<Setup>(&bytes);
        }
    }
}

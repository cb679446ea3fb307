//! PROBE (moq-lite-03+): bitrate probing on the Probe stream.
//!
//! The subscriber sends target bitrates; the publisher answers with its
//! estimates. -04 added the smoothed RTT; in -03 the field is absent and
//! decodes as 0 (unknown). moq-lite-01/02 carried a bitrate in
//! SESSION_UPDATE instead (see [`super::SessionUpdate`]).

use bytes::{Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// PROBE: a target (from the subscriber) or an estimate (from the publisher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// Bits per second; 0 = unknown.
    pub bitrate: u64,
    /// Smoothed RTT in milliseconds (RFC 9002); 0 = unknown. -04 only: not
    /// sent to -03 peers.
    pub rtt_ms: u64,
}

impl Message for Probe {
    const NAME: &'static str = "PROBE";

    fn exists_in(version: Version) -> bool {
        !version.uses_setup()
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.bitrate.encode(buf)?;
        if version.has_probe_rtt() {
            self.rtt_ms.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let bitrate = u64::decode(buf)?;
        let rtt_ms = if version.has_probe_rtt() {
            u64::decode(buf)?
        } else {
            0
        };
        Ok(Probe { bitrate, rtt_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn probe_bytes() {
        let msg = Probe {
            bitrate: 1_000_000,
            rtt_ms: 25,
        };
        #[rustfmt::skip]
        let expected = [
            0x05,                   // length
            0x80, 0x0f, 0x42, 0x40, // bitrate 1_000_000 = 0x0f4240, four-byte varint
            0x19,                   // RTT 25 ms
        ];
        check_message(&msg, Version::Lite04, &expected);

        let msg = Probe {
            bitrate: 1_000_000,
            rtt_ms: 0,
        };
        // length 4, bitrate only: -03 has no RTT
        check_message(&msg, Version::Lite03, &[0x04, 0x80, 0x0f, 0x42, 0x40]);
        assert!(msg.encode(Version::Lite02, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(bitrate in any_varint(), rtt_ms in any_varint()) {
            round_trip(&Probe { bitrate, rtt_ms }, Version::Lite04)?;
            round_trip(&Probe { bitrate, rtt_ms: 0 }, Version::Lite03)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Probe>(&bytes);
        }
    }
}

//! GOAWAY (moq-lite-04): graceful shutdown, optionally redirecting.
//!
//! Sent on its own Goaway stream. The URI is not interpreted here; the
//! receiver must check it against local policy before reconnecting.

use bytes::{Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{DecodeError, EncodeError, decode_string, encode_string};

/// The longest New Session URI we accept or send.
pub const MAX_URI_LEN: usize = 8192;

/// GOAWAY: stop opening streams; reconnect to `uri` if it is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Goaway {
    /// The new session URI; empty for no redirect.
    pub uri: String,
}

impl Message for Goaway {
    const NAME: &'static str = "GOAWAY";

    fn exists_in(version: Version) -> bool {
        version.has_goaway()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        encode_string(&self.uri, MAX_URI_LEN, "new session URI", buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(Goaway {
            uri: decode_string(buf, MAX_URI_LEN, "new session URI")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn goaway_bytes() {
        let msg = Goaway {
            uri: "moqt://b/x".into(),
        };
        #[rustfmt::skip]
        let expected = [
            0x0b, // length 11
            0x0a, // URI length 10
            b'm', b'o', b'q', b't', b':', b'/', b'/', b'b', b'/', b'x',
        ];
        check_message(&msg, Version::Lite04, &expected);
        // length 1, empty URI: no redirect
        check_message(&Goaway::default(), Version::Lite04, &[0x01, 0x00]);
        for v in [Version::Lite03, Version::Lite02, Version::Lite01] {
            assert_eq!(
                msg.encode(v, &mut Vec::new()),
                Err(EncodeError::Version("GOAWAY"))
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips(uri in ".{0,30}") {
            round_trip(&Goaway { uri }, Version::Lite04)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Goaway>(&bytes);
        }
    }
}

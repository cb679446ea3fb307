//! Session-wide messages: GOAWAY, MAX_REQUEST_ID, REQUESTS_BLOCKED.
//!
//! MAX_REQUEST_ID and REQUESTS_BLOCKED exist in drafts 14 to 16 (draft-17
//! removed request flow control). Draft-17 adds a Timeout to GOAWAY; draft-18
//! adds a Request ID on the control stream (the smallest request of the
//! receiver's that may not have been processed; absent on a request stream,
//! known only from the length), and draft-19 removes it again.

use bytes::{Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::MessageBody;
use crate::Draft;
use crate::varint::{get_string, get_vi, put_string, put_vi};

/// The longest GOAWAY New Session URI, in bytes.
pub const MAX_GOAWAY_URI_LEN: usize = 8192;

/// GOAWAY (0x10): the sender will close the session soon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoAway {
    /// Where to reconnect; empty means the current URI.
    pub uri: String,
    /// Milliseconds before the sender closes (draft-17; 0 otherwise).
    pub timeout: u64,
    /// Draft-18, control stream: the smallest of the receiver's Request IDs
    /// the sender did not or might not process. `None` on a request stream
    /// and in other drafts.
    pub request_id: Option<u64>,
}

impl MessageBody for GoAway {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_string(draft, &self.uri, MAX_GOAWAY_URI_LEN, "GOAWAY URI", buf)?;
        if draft >= Draft::D17 {
            put_vi(draft, self.timeout, buf)?;
        }
        if let (true, Some(id)) = (draft.goaway_request_id(), self.request_id) {
            put_vi(draft, id, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let uri = get_string(buf, draft, MAX_GOAWAY_URI_LEN, "GOAWAY URI")?;
        let timeout = if draft >= Draft::D17 {
            get_vi(buf, draft)?
        } else {
            0
        };
        let request_id = match draft.goaway_request_id() && !buf.is_empty() {
            true => Some(get_vi(buf, draft)?),
            false => None,
        };
        Ok(GoAway {
            uri,
            timeout,
            request_id,
        })
    }
}

/// MAX_REQUEST_ID (0x15, drafts 14 to 16): the new maximum request ID plus 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaxRequestId {
    /// The new Maximum Request ID plus 1 (field "Request ID" in -14, "Max
    /// Request ID" from -15).
    pub request_id: u64,
}

impl MessageBody for MaxRequestId {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(MaxRequestId {
            request_id: get_vi(buf, draft)?,
        })
    }
}

/// REQUESTS_BLOCKED (0x1A, drafts 14 to 16): the sender is blocked at this maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestsBlocked {
    /// The Maximum Request ID the sender is blocked on.
    pub max_request_id: u64,
}

impl MessageBody for RequestsBlocked {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.max_request_id, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(RequestsBlocked {
            max_request_id: get_vi(buf, draft)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlMessage as M;
    use crate::control::tests::{check, garbage, round_trip};
    use proptest::prelude::*;

    #[test]
    fn goaway_bytes() {
        let m = M::GoAway(GoAway {
            uri: "moqt://b".into(),
            timeout: 0,
            request_id: None,
        });
        #[rustfmt::skip]
        let d14 = [
            0x10,       // GOAWAY
            0x00, 0x09, // length 9
            0x08, b'm', b'o', b'q', b't', b':', b'/', b'/', b'b', // URI length 8, bytes
        ];
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            check(&m, d, &d14);
        }
        let m = M::GoAway(GoAway {
            uri: String::new(),
            timeout: 200,
            request_id: None,
        });
        // draft-17: type 0x10, length 3, empty URI, Timeout 200 (vi64 0x8000 | 200)
        check(&m, Draft::D17, &[0x10, 0x00, 0x03, 0x00, 0x80, 0xc8]);
        // draft-18 on a request stream: the same bytes.
        check(&m, Draft::D18, &[0x10, 0x00, 0x03, 0x00, 0x80, 0xc8]);
        // draft-18 on the control stream, from a server (timeout 5000 =
        // vi64 0x9388): Request ID 0, the client's first.
        let m = M::GoAway(GoAway {
            uri: String::new(),
            timeout: 5000,
            request_id: Some(0),
        });
        check(&m, Draft::D18, &[0x10, 0x00, 0x04, 0x00, 0x93, 0x88, 0x00]);
        // A URI length over 8192 is refused from the length alone.
        let mut c: &[u8] = &[0x10, 0x00, 0x04, 0x80, 0x00, 0x20, 0x01];
        assert!(matches!(
            M::decode(&mut c, Draft::D14),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn request_id_flow_bytes() {
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            // MAX_REQUEST_ID, length 2, 100 as a two-byte QUIC varint
            check(
                &M::MaxRequestId(MaxRequestId { request_id: 100 }),
                d,
                &[0x15, 0x00, 0x02, 0x40, 0x64],
            );
            // REQUESTS_BLOCKED, length 1, 10
            check(
                &M::RequestsBlocked(RequestsBlocked { max_request_id: 10 }),
                d,
                &[0x1a, 0x00, 0x01, 0x0a],
            );
        }
        assert!(
            M::MaxRequestId(MaxRequestId::default())
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
        assert!(
            M::RequestsBlocked(RequestsBlocked::default())
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn round_trips(uri in "[a-z:/]{0,20}", a in any::<u64>(), b in 0u64..1 << 62) {
            for d in Draft::ALL {
                round_trip(&M::GoAway(GoAway { uri: uri.clone(), timeout: a, request_id: None }), d)?;
                round_trip(&M::MaxRequestId(MaxRequestId { request_id: b }), d)?;
                round_trip(&M::RequestsBlocked(RequestsBlocked { max_request_id: b }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..24)) {
            for ty in [0x10u8, 0x15, 0x1a] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

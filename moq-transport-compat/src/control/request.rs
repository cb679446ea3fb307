//! Generic request replies: REQUEST_OK and REQUEST_ERROR (draft-15+), and the
//! draft-14 per-request messages with the same layouts.
//!
//! Draft-14 has one error message per request (SUBSCRIBE_ERROR 0x05,
//! PUBLISH_ERROR 0x1F, FETCH_ERROR 0x19, TRACK_STATUS_ERROR 0x0F,
//! PUBLISH_NAMESPACE_ERROR 0x08, SUBSCRIBE_NAMESPACE_ERROR 0x13), all
//! `{Request ID, Error Code, Reason}`: [`RequestError`] encodes them all, and
//! 0x05 becomes REQUEST_ERROR in draft-15. Likewise PUBLISH_NAMESPACE_OK
//! (0x07) and SUBSCRIBE_NAMESPACE_OK (0x12) are `{Request ID}` in draft-14,
//! and 0x07 becomes REQUEST_OK with parameters in draft-15. Draft-16 adds a
//! Retry Interval to REQUEST_ERROR; draft-17 drops the Request ID from both
//! (they are sent on the request's own stream). Draft-18 adds Track
//! Properties to REQUEST_OK (filling the rest of the message; non-empty only
//! when it answers TRACK_STATUS, and it also answers PUBLISH), and a Redirect
//! to REQUEST_ERROR with code REDIRECT (0x34).

use bytes::{Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::{MessageBody, Parameters, decode_parameters, encode_parameters};
use crate::Draft;
use crate::common::{get_reason, put_reason};
use crate::kvp::KeyValuePairs;
use crate::namespace::{NamespaceRole, TrackNamespace};
use crate::varint::{get_bytes, get_string, get_vi, put_bytes, put_string, put_vi};

/// REQUEST_ERROR's code REDIRECT (draft-18): a Redirect follows the reason.
pub const REDIRECT_CODE: u64 = 0x34;

/// The longest Redirect Connect URI, in bytes (as GOAWAY's).
pub const MAX_REDIRECT_URI_LEN: usize = super::MAX_GOAWAY_URI_LEN;

/// REQUEST_OK (0x07, 15+); PUBLISH_NAMESPACE_OK / SUBSCRIBE_NAMESPACE_OK in
/// draft-14; PUBLISH_OK from draft-18.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestOk {
    /// The request replied to (absent in draft-17).
    pub request_id: u64,
    /// Parameters (absent in draft-14).
    pub parameters: Parameters,
    /// Draft-18+: Track Properties (only a TRACK_STATUS answer has any).
    pub track_properties: KeyValuePairs,
}

impl MessageBody for RequestOk {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        if draft > Draft::D14 {
            encode_parameters(&self.parameters, draft, buf)?;
        }
        if draft.request_ok_for_publish() {
            self.track_properties.encode_pairs(draft, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = if draft < Draft::D17 {
            get_vi(buf, draft)?
        } else {
            0
        };
        let parameters = if draft > Draft::D14 {
            decode_parameters(buf, draft)?
        } else {
            Parameters::new()
        };
        let track_properties = match draft.request_ok_for_publish() {
            true => KeyValuePairs::decode_to_end(buf, draft)?,
            false => KeyValuePairs::default(),
        };
        Ok(RequestOk {
            request_id,
            parameters,
            track_properties,
        })
    }
}

/// REQUEST_ERROR (0x05, 15+) and the draft-14 `*_ERROR` messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestError {
    /// The request replied to (absent in draft-17).
    pub request_id: u64,
    /// The error code.
    pub error_code: u64,
    /// Minimum milliseconds before retrying, plus one; 0 = do not retry
    /// (draft-16+; 0 otherwise).
    pub retry_interval: u64,
    /// Diagnostic text, at most [`crate::MAX_REASON_LEN`] bytes.
    pub reason: String,
    /// Draft-18+, with [`REDIRECT_CODE`]: where to ask instead.
    pub redirect: Option<Redirect>,
}

/// Where a REDIRECT sends the requester (draft-18+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    /// The session to use; empty means this one.
    pub connect_uri: String,
    /// The new track namespace; empty, with an empty name, means the same
    /// track.
    pub namespace: TrackNamespace,
    /// The new track name (empty for namespace requests).
    pub name: Bytes,
}

impl Redirect {
    fn encode(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_string(
            draft,
            &self.connect_uri,
            MAX_REDIRECT_URI_LEN,
            "redirect URI",
            buf,
        )?;
        self.namespace.encode(draft, NamespaceRole::Prefix, buf)?;
        put_bytes(
            draft,
            &self.name,
            crate::namespace::MAX_FULL_TRACK_NAME,
            "track name",
            buf,
        )
    }

    fn decode(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(Redirect {
            connect_uri: get_string(buf, draft, MAX_REDIRECT_URI_LEN, "redirect URI")?,
            namespace: TrackNamespace::decode(buf, draft, NamespaceRole::Prefix)?,
            name: get_bytes(buf, draft, crate::namespace::MAX_FULL_TRACK_NAME, "track name")?,
        })
    }
}

impl MessageBody for RequestError {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        put_vi(draft, self.error_code, buf)?;
        if draft >= Draft::D16 {
            put_vi(draft, self.retry_interval, buf)?;
        }
        put_reason(draft, &self.reason, buf)?;
        if draft.request_ok_for_publish() && self.error_code == REDIRECT_CODE {
            self.redirect.clone().unwrap_or_default().encode(draft, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = if draft < Draft::D17 {
            get_vi(buf, draft)?
        } else {
            0
        };
        let error_code = get_vi(buf, draft)?;
        let retry_interval = if draft >= Draft::D16 {
            get_vi(buf, draft)?
        } else {
            0
        };
        let reason = get_reason(buf, draft)?;
        // The text makes the Redirect mandatory with REDIRECT; one left out
        // reads as "same session, same track" (the empty Redirect, which is
        // also what encoding `None` writes).
        let redirect = match (
            draft.request_ok_for_publish() && error_code == REDIRECT_CODE,
            buf.is_empty(),
        ) {
            (true, false) => Some(Redirect::decode(buf, draft)?),
            (true, true) => Some(Redirect::default()),
            (false, _) => None,
        };
        Ok(RequestError {
            request_id,
            error_code,
            retry_interval,
            reason,
            redirect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Location;
    use crate::control::ControlMessage as M;
    use crate::control::tests::garbage;
    use crate::control::tests::{check, round_trip};
    use crate::control::{MessageParameter, set_location};
    use proptest::prelude::*;

    fn err() -> RequestError {
        RequestError {
            request_id: 2,
            error_code: 4,
            retry_interval: 0,
            reason: "no".into(),
            redirect: None,
        }
    }

    #[test]
    fn d14_error_messages() {
        // Every draft-14 error: Request ID 2, Error Code 4, reason "no" (length 2).
        let body = [0x00, 0x05, 0x02, 0x04, 0x02, b'n', b'o'];
        let cases = [
            (M::RequestError(err()), 0x05),            // SUBSCRIBE_ERROR
            (M::PublishError(err()), 0x1f),            // PUBLISH_ERROR
            (M::FetchError(err()), 0x19),              // FETCH_ERROR
            (M::TrackStatusError(err()), 0x0f),        // TRACK_STATUS_ERROR
            (M::PublishNamespaceError(err()), 0x08),   // PUBLISH_NAMESPACE_ERROR
            (M::SubscribeNamespaceError(err()), 0x13), // SUBSCRIBE_NAMESPACE_ERROR
        ];
        for (m, ty) in cases {
            let mut expected = vec![ty];
            expected.extend_from_slice(&body);
            check(&m, Draft::D14, &expected);
        }
        assert!(
            M::PublishError(err())
                .encode(Draft::D15, &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn request_error_later_drafts() {
        // draft-15: REQUEST_ERROR 0x05, length 5: id 2, code 4, "no"
        check(
            &M::RequestError(err()),
            Draft::D15,
            &[0x05, 0x00, 0x05, 0x02, 0x04, 0x02, b'n', b'o'],
        );
        let mut e = err();
        e.retry_interval = 1001;
        #[rustfmt::skip]
        check(&M::RequestError(e.clone()), Draft::D16, &[
            0x05, 0x00, 0x07, // REQUEST_ERROR, length 7
            0x02,             // Request ID 2
            0x04,             // Error Code 4
            0x43, 0xe9,       // Retry Interval 1001 (QUIC two-byte 0x4000 | 0x3e9)
            0x02, b'n', b'o', // reason
        ]);
        #[rustfmt::skip]
        check(&M::RequestError(RequestError { request_id: 0, ..e }), Draft::D17, &[
            0x05, 0x00, 0x06, // REQUEST_ERROR, length 6; no Request ID in -17
            0x04,             // Error Code 4
            0x83, 0xe9,       // Retry Interval 1001 (vi64 two-byte 0x8000 | 0x3e9)
            0x02, b'n', b'o', // reason
        ]);
        // Reason over 1024 bytes: refused from the length.
        let mut c: &[u8] = &[0x05, 0x00, 0x04, 0x02, 0x04, 0x44, 0x01];
        assert!(matches!(
            M::decode(&mut c, Draft::D15),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn request_ok_all_drafts() {
        let ok = RequestOk {
            request_id: 6,
            parameters: Parameters::new(),
            track_properties: KeyValuePairs::new(),
        };
        // draft-14 PUBLISH_NAMESPACE_OK 0x07 / SUBSCRIBE_NAMESPACE_OK 0x12: just Request ID 6
        check(&M::RequestOk(ok.clone()), Draft::D14, &[0x07, 0x00, 0x01, 0x06]);
        check(
            &M::SubscribeNamespaceOk(ok.clone()),
            Draft::D14,
            &[0x12, 0x00, 0x01, 0x06],
        );
        let mut with = ok.clone();
        with.parameters.set_int(MessageParameter::Expires.code(), 5);
        // draft-15/16: Request ID 6, one parameter EXPIRES (0x08) = 5
        check(
            &M::RequestOk(with.clone()),
            Draft::D15,
            &[0x07, 0x00, 0x04, 0x06, 0x01, 0x08, 0x05],
        );
        check(
            &M::RequestOk(with.clone()),
            Draft::D16,
            &[0x07, 0x00, 0x04, 0x06, 0x01, 0x08, 0x05],
        );
        with.request_id = 0;
        // draft-17: no Request ID; one parameter EXPIRES = 5
        check(
            &M::RequestOk(with.clone()),
            Draft::D17,
            &[0x07, 0x00, 0x03, 0x01, 0x08, 0x05],
        );
        // draft-18: the same, then Track Properties to the end.
        check(
            &M::RequestOk(with.clone()),
            Draft::D18,
            &[0x07, 0x00, 0x03, 0x01, 0x08, 0x05],
        );
        // A TRACK_STATUS answer: LARGEST_OBJECT {5, 2}, then
        // DEFAULT_PUBLISHER_GROUP_ORDER (0x22) = 1 as a Track Property.
        let mut status = RequestOk::default();
        set_location(
            &mut status.parameters,
            MessageParameter::LargestObject.code(),
            Location::new(5, 2),
            Draft::D18,
        )
        .unwrap();
        status.track_properties.set_int(0x22, 1);
        check(
            &M::RequestOk(status),
            Draft::D18,
            &[0x07, 0x00, 0x06, 0x01, 0x09, 0x05, 0x02, 0x22, 0x01],
        );
        // PUBLISH_OK with FORWARD = 1 is a REQUEST_OK in draft-18 (0x1E before).
        let mut publish_ok = crate::control::PublishOk::default();
        publish_ok.parameters.set_int(MessageParameter::Forward.code(), 1);
        let mut out = Vec::new();
        M::PublishOk(publish_ok.clone())
            .encode(Draft::D18, &mut out)
            .unwrap();
        assert_eq!(out, [0x07, 0x00, 0x03, 0x01, 0x10, 0x01]);
        out.clear();
        M::PublishOk(publish_ok).encode(Draft::D17, &mut out).unwrap();
        assert_eq!(out, [0x1e, 0x00, 0x03, 0x01, 0x10, 0x01]);
    }

    #[test]
    fn request_error_redirect() {
        let e = RequestError {
            error_code: REDIRECT_CODE,
            retry_interval: 1,
            redirect: Some(Redirect {
                connect_uri: "moqt://b/".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        #[rustfmt::skip]
        check(&M::RequestError(e.clone()), Draft::D18, &[
            0x05, 0x00, 0x0f,
            0x34, 0x01, 0x00,                                      // REDIRECT, retry 1, no reason
            0x09, b'm', b'o', b'q', b't', b':', b'/', b'/', b'b', b'/', // Connect URI
            0x00, 0x00,                                            // same namespace and name
        ]);
        // Draft-17 has no Redirect: the code alone.
        let mut out = Vec::new();
        M::RequestError(e).encode(Draft::D17, &mut out).unwrap();
        assert_eq!(out, [0x05, 0x00, 0x03, 0x34, 0x01, 0x00]);
    }

    proptest! {
        #[test]
        fn round_trips(id in 0u64..1 << 62, code in 0u64..1 << 62, retry in 0u64..1000, reason in ".{0,20}",
                       params in crate::control::params::tests::any_params()) {
            for d in Draft::ALL {
                let e = RequestError { request_id: id, error_code: code, retry_interval: retry, reason: reason.clone(), redirect: None };
                round_trip(&M::RequestError(e.clone()), d)?;
                round_trip(&M::FetchError(e), d)?;
                round_trip(&M::RequestOk(RequestOk { request_id: id, parameters: params.clone(), track_properties: KeyValuePairs::new() }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..24)) {
            for ty in [0x05u8, 0x07, 0x08, 0x0f, 0x12, 0x13, 0x19, 0x1f] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

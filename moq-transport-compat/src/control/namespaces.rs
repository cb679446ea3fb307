//! Namespace discovery: PUBLISH_NAMESPACE (ANNOUNCE before -14) and its
//! DONE / CANCEL, SUBSCRIBE_NAMESPACE, UNSUBSCRIBE_NAMESPACE, and draft-16's
//! NAMESPACE / NAMESPACE_DONE and draft-17's PUBLISH_BLOCKED.
//!
//! The draft-14 replies PUBLISH_NAMESPACE_OK / _ERROR and
//! SUBSCRIBE_NAMESPACE_OK / _ERROR are [`super::RequestOk`] and
//! [`super::RequestError`]. PUBLISH_NAMESPACE_DONE and _CANCEL name the
//! namespace in drafts 14 and 15 and the request in draft-16; both are gone
//! in draft-17. UNSUBSCRIBE_NAMESPACE names the prefix in draft-14 and the
//! request in draft-15; it is gone from draft-16 (SUBSCRIBE_NAMESPACE has
//! its own stream). SUBSCRIBE_NAMESPACE gains Subscribe Options in draft-16.

use bytes::{Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::subscribe::{get_required, put_required};
use super::{MessageBody, Parameters, decode_parameters, encode_parameters};
use crate::Draft;
use crate::common::{get_reason, put_reason};
use crate::namespace::{NamespaceRole, TrackNamespace, get_track_name, put_track_name};
use crate::varint::{get_vi, put_vi};

/// PUBLISH_NAMESPACE (0x06).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishNamespace {
    /// This request's ID.
    pub request_id: u64,
    /// Draft-17: Required Request ID Delta.
    pub required_request_id_delta: u64,
    /// The namespace published.
    pub namespace: TrackNamespace,
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for PublishNamespace {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        self.namespace.encode(draft, NamespaceRole::Namespace, buf)?;
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = get_vi(buf, draft)?;
        Ok(PublishNamespace {
            request_id,
            required_request_id_delta: get_required(draft, request_id, buf)?,
            namespace: TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?,
            parameters: decode_parameters(buf, draft)?,
        })
    }
}

/// PUBLISH_NAMESPACE_DONE (0x09, drafts 14 to 16; UNANNOUNCE before -14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishNamespaceDone {
    /// Drafts 14 and 15: the namespace.
    pub namespace: TrackNamespace,
    /// Draft-16: the PUBLISH_NAMESPACE's Request ID.
    pub request_id: u64,
}

impl MessageBody for PublishNamespaceDone {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft <= Draft::D15 {
            self.namespace.encode(draft, NamespaceRole::Namespace, buf)
        } else {
            put_vi(draft, self.request_id, buf)
        }
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = PublishNamespaceDone::default();
        if draft <= Draft::D15 {
            m.namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
        } else {
            m.request_id = get_vi(buf, draft)?;
        }
        Ok(m)
    }
}

/// PUBLISH_NAMESPACE_CANCEL (0x0C, drafts 14 to 16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishNamespaceCancel {
    /// Drafts 14 and 15: the namespace.
    pub namespace: TrackNamespace,
    /// Draft-16: the PUBLISH_NAMESPACE's Request ID.
    pub request_id: u64,
    /// The error code.
    pub error_code: u64,
    /// Diagnostic text.
    pub reason: String,
}

impl MessageBody for PublishNamespaceCancel {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft <= Draft::D15 {
            self.namespace.encode(draft, NamespaceRole::Namespace, buf)?;
        } else {
            put_vi(draft, self.request_id, buf)?;
        }
        put_vi(draft, self.error_code, buf)?;
        put_reason(draft, &self.reason, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = PublishNamespaceCancel::default();
        if draft <= Draft::D15 {
            m.namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
        } else {
            m.request_id = get_vi(buf, draft)?;
        }
        m.error_code = get_vi(buf, draft)?;
        m.reason = get_reason(buf, draft)?;
        Ok(m)
    }
}

/// Subscribe Options of SUBSCRIBE_NAMESPACE (draft-16+): what the
/// subscriber wants sent. Any other code is a protocol violation, so there
/// is no `Unknown` arm. Earlier drafts behave as [`SubscribeOptions::Publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubscribeOptions {
    /// 0x00: send matching PUBLISH messages.
    #[default]
    Publish,
    /// 0x01: send matching NAMESPACE messages.
    Namespace,
    /// 0x02: both.
    Both,
}

impl SubscribeOptions {
    /// The code on the wire.
    pub const fn code(self) -> u64 {
        match self {
            SubscribeOptions::Publish => 0x00,
            SubscribeOptions::Namespace => 0x01,
            SubscribeOptions::Both => 0x02,
        }
    }

    /// The option a code names, if any.
    pub const fn from_code(code: u64) -> Option<Self> {
        match code {
            0x00 => Some(SubscribeOptions::Publish),
            0x01 => Some(SubscribeOptions::Namespace),
            0x02 => Some(SubscribeOptions::Both),
            _ => None,
        }
    }

    /// Whether matching namespaces are to be reported with NAMESPACE.
    pub const fn wants_namespaces(self) -> bool {
        !matches!(self, SubscribeOptions::Publish)
    }

    /// Whether matching tracks are to be offered with PUBLISH.
    pub const fn wants_publish(self) -> bool {
        !matches!(self, SubscribeOptions::Namespace)
    }
}

/// SUBSCRIBE_NAMESPACE (0x11; SUBSCRIBE_ANNOUNCES before -14). From draft-18
/// the options are the message type: SUBSCRIBE_NAMESPACE (0x50) is
/// [`SubscribeOptions::Namespace`], SUBSCRIBE_TRACKS (0x51)
/// [`SubscribeOptions::Publish`]; `Both` has no draft-18 form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeNamespace {
    /// This request's ID.
    pub request_id: u64,
    /// Draft-17: Required Request ID Delta.
    pub required_request_id_delta: u64,
    /// The namespace prefix (0 fields allowed from draft-16).
    pub prefix: TrackNamespace,
    /// Draft-16+: what to send.
    pub subscribe_options: SubscribeOptions,
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for SubscribeNamespace {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        self.prefix.encode(draft, NamespaceRole::Prefix, buf)?;
        // Draft-18 says it with the message type (0x50 / 0x51) instead.
        if draft >= Draft::D16 && !draft.split_namespace_requests() {
            put_vi(draft, self.subscribe_options.code(), buf)?;
        }
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = get_vi(buf, draft)?;
        let required_request_id_delta = get_required(draft, request_id, buf)?;
        let prefix = TrackNamespace::decode(buf, draft, NamespaceRole::Prefix)?;
        let subscribe_options = if draft >= Draft::D16 && !draft.split_namespace_requests() {
            SubscribeOptions::from_code(get_vi(buf, draft)?)
                .ok_or(DecodeError::Invalid("subscribe options"))?
        } else {
            SubscribeOptions::Publish
        };
        Ok(SubscribeNamespace {
            request_id,
            required_request_id_delta,
            prefix,
            subscribe_options,
            parameters: decode_parameters(buf, draft)?,
        })
    }
}

/// UNSUBSCRIBE_NAMESPACE (0x14, drafts 14 and 15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubscribeNamespace {
    /// Draft-14: the prefix.
    pub prefix: TrackNamespace,
    /// Draft-15: the SUBSCRIBE_NAMESPACE's Request ID.
    pub request_id: u64,
}

impl MessageBody for UnsubscribeNamespace {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft == Draft::D14 {
            self.prefix.encode(draft, NamespaceRole::Prefix, buf)
        } else {
            put_vi(draft, self.request_id, buf)
        }
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = UnsubscribeNamespace::default();
        if draft == Draft::D14 {
            m.prefix = TrackNamespace::decode(buf, draft, NamespaceRole::Prefix)?;
        } else {
            m.request_id = get_vi(buf, draft)?;
        }
        Ok(m)
    }
}

/// NAMESPACE (0x08, draft-16+): a namespace under the subscribed prefix,
/// sent on the SUBSCRIBE_NAMESPACE stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// The fields after the prefix.
    pub suffix: TrackNamespace,
}

impl MessageBody for Namespace {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.suffix.encode(draft, NamespaceRole::Suffix, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(Namespace {
            suffix: TrackNamespace::decode(buf, draft, NamespaceRole::Suffix)?,
        })
    }
}

/// NAMESPACE_DONE (0x0E, draft-16+): a namespace under the prefix went away.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceDone {
    /// The fields after the prefix.
    pub suffix: TrackNamespace,
}

impl MessageBody for NamespaceDone {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.suffix.encode(draft, NamespaceRole::Suffix, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(NamespaceDone {
            suffix: TrackNamespace::decode(buf, draft, NamespaceRole::Suffix)?,
        })
    }
}

/// PUBLISH_BLOCKED (0x0F, draft-17): a matching PUBLISH could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishBlocked {
    /// The namespace fields after the prefix.
    pub suffix: TrackNamespace,
    /// The track name.
    pub name: Bytes,
}

impl MessageBody for PublishBlocked {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.suffix.encode(draft, NamespaceRole::Suffix, buf)?;
        put_track_name(draft, &self.suffix, &self.name, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let suffix = TrackNamespace::decode(buf, draft, NamespaceRole::Suffix)?;
        let name = get_track_name(buf, draft, &suffix)?;
        Ok(PublishBlocked { suffix, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlMessage as M;
    use crate::control::tests::{check, garbage, round_trip};
    use crate::namespace::tests::any_namespace;
    use proptest::prelude::*;

    fn ns() -> TrackNamespace {
        TrackNamespace::from_fields(["a", "b"])
    }

    #[test]
    fn publish_namespace_bytes() {
        let m = PublishNamespace {
            request_id: 2,
            namespace: ns(),
            ..Default::default()
        };
        // PUBLISH_NAMESPACE, length 7: id 2, ("a", "b"), no parameters
        let expected = [0x06, 0x00, 0x07, 0x02, 0x02, 0x01, b'a', 0x01, b'b', 0x00];
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            check(&M::PublishNamespace(m.clone()), d, &expected);
        }
        // draft-17: id 2, Required Request ID Delta 0, ("a", "b"), no parameters
        check(
            &M::PublishNamespace(m),
            Draft::D17,
            &[0x06, 0x00, 0x08, 0x02, 0x00, 0x02, 0x01, b'a', 0x01, b'b', 0x00],
        );
    }

    #[test]
    fn done_and_cancel_bytes() {
        let done = PublishNamespaceDone {
            namespace: ns(),
            request_id: 2,
        };
        // drafts 14/15: PUBLISH_NAMESPACE_DONE, length 5, ("a", "b")
        for d in [Draft::D14, Draft::D15] {
            check(
                &M::PublishNamespaceDone(PublishNamespaceDone {
                    request_id: 0,
                    ..done.clone()
                }),
                d,
                &[0x09, 0x00, 0x05, 0x02, 0x01, b'a', 0x01, b'b'],
            );
        }
        // draft-16: Request ID 2
        check(
            &M::PublishNamespaceDone(PublishNamespaceDone {
                namespace: TrackNamespace::default(),
                ..done
            }),
            Draft::D16,
            &[0x09, 0x00, 0x01, 0x02],
        );
        let cancel = PublishNamespaceCancel {
            namespace: ns(),
            request_id: 0,
            error_code: 1,
            reason: String::new(),
        };
        // drafts 14/15: PUBLISH_NAMESPACE_CANCEL, length 7: ("a", "b"), code 1, empty reason
        for d in [Draft::D14, Draft::D15] {
            check(
                &M::PublishNamespaceCancel(cancel.clone()),
                d,
                &[0x0c, 0x00, 0x07, 0x02, 0x01, b'a', 0x01, b'b', 0x01, 0x00],
            );
        }
        let cancel16 = PublishNamespaceCancel {
            namespace: TrackNamespace::default(),
            request_id: 2,
            ..cancel
        };
        // draft-16: Request ID 2, code 1, empty reason
        check(
            &M::PublishNamespaceCancel(cancel16.clone()),
            Draft::D16,
            &[0x0c, 0x00, 0x03, 0x02, 0x01, 0x00],
        );
        assert!(
            M::PublishNamespaceCancel(cancel16)
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn subscribe_namespace_bytes() {
        let m = SubscribeNamespace {
            request_id: 4,
            prefix: TrackNamespace::from_fields(["a"]),
            subscribe_options: SubscribeOptions::Both,
            ..Default::default()
        };
        // drafts 14/15: SUBSCRIBE_NAMESPACE, length 5: id 4, ("a"), no parameters
        for d in [Draft::D14, Draft::D15] {
            check(
                &M::SubscribeNamespace(SubscribeNamespace {
                    subscribe_options: SubscribeOptions::Publish,
                    ..m.clone()
                }),
                d,
                &[0x11, 0x00, 0x05, 0x04, 0x01, 0x01, b'a', 0x00],
            );
        }
        // draft-16: ... then Subscribe Options 2 before the parameters
        check(
            &M::SubscribeNamespace(m.clone()),
            Draft::D16,
            &[0x11, 0x00, 0x06, 0x04, 0x01, 0x01, b'a', 0x02, 0x00],
        );
        // draft-16 allows an empty prefix: id 4, 0 fields, options 2, no parameters
        let empty = SubscribeNamespace {
            prefix: TrackNamespace::default(),
            ..m.clone()
        };
        check(
            &M::SubscribeNamespace(empty),
            Draft::D16,
            &[0x11, 0x00, 0x04, 0x04, 0x00, 0x02, 0x00],
        );
        // draft-17: id 4, Required Request ID Delta 0, ("a"), options 2, no parameters
        check(
            &M::SubscribeNamespace(m),
            Draft::D17,
            &[0x11, 0x00, 0x07, 0x04, 0x00, 0x01, 0x01, b'a', 0x02, 0x00],
        );
    }

    #[test]
    fn unsubscribe_namespace_bytes() {
        let d14 = UnsubscribeNamespace {
            prefix: TrackNamespace::from_fields(["a"]),
            request_id: 0,
        };
        // draft-14: UNSUBSCRIBE_NAMESPACE, length 3, prefix ("a")
        check(
            &M::UnsubscribeNamespace(d14),
            Draft::D14,
            &[0x14, 0x00, 0x03, 0x01, 0x01, b'a'],
        );
        let d15 = UnsubscribeNamespace {
            prefix: TrackNamespace::default(),
            request_id: 4,
        };
        // draft-15: Request ID 4
        check(
            &M::UnsubscribeNamespace(d15.clone()),
            Draft::D15,
            &[0x14, 0x00, 0x01, 0x04],
        );
        assert!(
            M::UnsubscribeNamespace(d15)
                .encode(Draft::D16, &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn namespace_messages_d16_d17() {
        let suffix = TrackNamespace::from_fields(["b"]);
        for d in [Draft::D16, Draft::D17] {
            // NAMESPACE 0x08 / NAMESPACE_DONE 0x0E, length 3, suffix ("b")
            check(
                &M::Namespace(Namespace {
                    suffix: suffix.clone(),
                }),
                d,
                &[0x08, 0x00, 0x03, 0x01, 0x01, b'b'],
            );
            check(
                &M::NamespaceDone(NamespaceDone {
                    suffix: suffix.clone(),
                }),
                d,
                &[0x0e, 0x00, 0x03, 0x01, 0x01, b'b'],
            );
        }
        let pb = PublishBlocked {
            suffix,
            name: Bytes::from_static(b"t"),
        };
        // PUBLISH_BLOCKED 0x0F, length 5: suffix ("b"), name "t"
        check(
            &M::PublishBlocked(pb.clone()),
            Draft::D17,
            &[0x0f, 0x00, 0x05, 0x01, 0x01, b'b', 0x01, b't'],
        );
        assert!(M::PublishBlocked(pb).encode(Draft::D16, &mut Vec::new()).is_err());
        assert!(
            M::Namespace(Namespace::default())
                .encode(Draft::D15, &mut Vec::new())
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn round_trips(ns in any_namespace(), id in 0u64..1000, delta in 0u64..500, opts in 0u64..3,
                       code in any::<u32>(), params in crate::control::params::tests::any_params()) {
            for d in Draft::ALL {
                round_trip(&M::PublishNamespace(PublishNamespace { request_id: id, required_request_id_delta: delta,
                    namespace: ns.clone(), parameters: params.clone() }), d)?;
                round_trip(&M::PublishNamespaceDone(PublishNamespaceDone { namespace: ns.clone(), request_id: id }), d)?;
                round_trip(&M::PublishNamespaceCancel(PublishNamespaceCancel { namespace: ns.clone(), request_id: id,
                    error_code: code as u64, reason: "r".into() }), d)?;
                round_trip(&M::SubscribeNamespace(SubscribeNamespace { request_id: id, required_request_id_delta: delta,
                    prefix: ns.clone(), subscribe_options: SubscribeOptions::from_code(opts).unwrap(), parameters: params.clone() }), d)?;
                round_trip(&M::UnsubscribeNamespace(UnsubscribeNamespace { prefix: ns.clone(), request_id: id }), d)?;
                round_trip(&M::Namespace(Namespace { suffix: ns.clone() }), d)?;
                round_trip(&M::NamespaceDone(NamespaceDone { suffix: ns.clone() }), d)?;
                round_trip(&M::PublishBlocked(PublishBlocked { suffix: ns.clone(), name: Bytes::from_static(b"x") }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            for ty in [0x06u8, 0x08, 0x09, 0x0c, 0x0e, 0x0f, 0x11, 0x14] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

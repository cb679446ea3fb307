//! Publisher-initiated subscriptions: PUBLISH, PUBLISH_OK, and PUBLISH_DONE
//! (SUBSCRIBE_DONE before draft-14). PUBLISH_ERROR is draft-14's
//! [`super::RequestError`] under type 0x1F.
//!
//! The -14 text gives PUBLISH and PUBLISH_OK a varint length; real peers
//! (and -15) use the 16-bit length like every other control message, and so
//! does this codec. The publisher chooses the track alias (in PUBLISH).

use bytes::{BufMut, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::subscribe::{get_largest, get_required, put_largest, put_required};
use super::{MessageBody, Parameters, decode_parameters, encode_parameters};
use crate::Draft;
use crate::common::{
    Location, SubscriptionFilter, check_group_order, get_group_order, get_reason, put_reason,
};
use crate::kvp::KeyValuePairs;
use crate::namespace::{NamespaceRole, TrackNamespace, get_track_name, put_track_name};
use crate::varint::{get_flag, get_u8, get_vi, put_vi};

/// PUBLISH (0x1D).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// This request's ID.
    pub request_id: u64,
    /// Draft-17: Required Request ID Delta.
    pub required_request_id_delta: u64,
    /// The track namespace.
    pub namespace: TrackNamespace,
    /// The track name.
    pub name: Bytes,
    /// The alias the publisher chose for this track's data.
    pub track_alias: u64,
    /// Draft-14: Group Order (1 or 2).
    pub group_order: u8,
    /// Draft-14: the largest location, if content exists.
    pub largest: Option<Location>,
    /// Draft-14: Forward.
    pub forward: bool,
    /// Parameters.
    pub parameters: Parameters,
    /// Track Extensions (draft-16+).
    pub track_extensions: KeyValuePairs,
}

impl MessageBody for Publish {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        self.namespace.encode(draft, NamespaceRole::Namespace, buf)?;
        put_track_name(draft, &self.namespace, &self.name, buf)?;
        put_vi(draft, self.track_alias, buf)?;
        if draft == Draft::D14 {
            buf.put_u8(check_group_order(self.group_order, false)?);
            put_largest(draft, &self.largest, buf)?;
            buf.put_u8(self.forward as u8);
        }
        encode_parameters(&self.parameters, draft, buf)?;
        if draft >= Draft::D16 {
            self.track_extensions.encode_pairs(draft, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = get_vi(buf, draft)?;
        let required_request_id_delta = get_required(draft, request_id, buf)?;
        let namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
        let name = get_track_name(buf, draft, &namespace)?;
        let mut m = Publish {
            request_id,
            required_request_id_delta,
            namespace,
            name,
            track_alias: get_vi(buf, draft)?,
            ..Default::default()
        };
        if draft == Draft::D14 {
            m.group_order = get_group_order(buf, false)?;
            m.largest = get_largest(draft, buf)?;
            m.forward = get_flag(buf, "forward")?;
        }
        m.parameters = decode_parameters(buf, draft)?;
        if draft >= Draft::D16 {
            m.track_extensions = KeyValuePairs::decode_to_end(buf, draft)?;
        }
        Ok(m)
    }
}

/// PUBLISH_OK (0x1E).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishOk {
    /// The PUBLISH replied to (absent in draft-17).
    pub request_id: u64,
    /// Draft-14: Forward.
    pub forward: bool,
    /// Draft-14: Subscriber Priority.
    pub subscriber_priority: u8,
    /// Draft-14: Group Order (1 or 2).
    pub group_order: u8,
    /// Draft-14: the filter.
    pub filter: SubscriptionFilter,
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for PublishOk {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        if draft == Draft::D14 {
            buf.put_u8(self.forward as u8);
            buf.put_u8(self.subscriber_priority);
            buf.put_u8(check_group_order(self.group_order, false)?);
            self.filter.encode(draft, buf)?;
        }
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = PublishOk::default();
        if draft < Draft::D17 {
            m.request_id = get_vi(buf, draft)?;
        }
        if draft == Draft::D14 {
            m.forward = get_flag(buf, "forward")?;
            m.subscriber_priority = get_u8(buf)?;
            m.group_order = get_group_order(buf, false)?;
            m.filter = SubscriptionFilter::decode(buf, draft)?;
        }
        m.parameters = decode_parameters(buf, draft)?;
        Ok(m)
    }
}

/// PUBLISH_STATE_NOTIFY (0x22, draft-20+): on a subscription's stream, the
/// publisher tells its state (LARGEST_OBJECT, FORWARD, LOCATION_FILTER);
/// nothing answers it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishStateNotify {
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for PublishStateNotify {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(PublishStateNotify {
            parameters: decode_parameters(buf, draft)?,
        })
    }
}

/// Draft-18 answers PUBLISH with REQUEST_OK: its parameters are the
/// PUBLISH_OK's.
impl From<super::RequestOk> for PublishOk {
    fn from(ok: super::RequestOk) -> Self {
        PublishOk {
            request_id: ok.request_id,
            parameters: ok.parameters,
            ..Default::default()
        }
    }
}

/// PUBLISH_DONE (0x0B): the publisher has finished a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishDone {
    /// The subscription's Request ID (absent in draft-17).
    pub request_id: u64,
    /// Why it ended.
    pub status_code: u64,
    /// How many data streams the publisher opened; 2^62 - 1 if unknown.
    pub stream_count: u64,
    /// Diagnostic text.
    pub reason: String,
}

impl MessageBody for PublishDone {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        put_vi(draft, self.status_code, buf)?;
        put_vi(draft, self.stream_count, buf)?;
        put_reason(draft, &self.reason, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = if draft < Draft::D17 {
            get_vi(buf, draft)?
        } else {
            0
        };
        Ok(PublishDone {
            request_id,
            status_code: get_vi(buf, draft)?,
            stream_count: get_vi(buf, draft)?,
            reason: get_reason(buf, draft)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlMessage as M;
    use crate::control::MessageParameter;
    use crate::control::subscribe::tests::any_filter;
    use crate::control::tests::{check, garbage, round_trip};
    use crate::kvp::tests::any_pairs;
    use crate::namespace::tests::any_namespace;
    use proptest::prelude::*;

    #[test]
    fn publish_d14_uses_16_bit_length() {
        let m = Publish {
            request_id: 1,
            namespace: TrackNamespace::from_fields(["a"]),
            name: Bytes::from_static(b"v"),
            track_alias: 9,
            group_order: 1,
            largest: Some(Location::new(3, 4)),
            forward: true,
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x1d,             // PUBLISH
            0x00, 0x0d,       // 16-bit length 13 (the -14 text's "Length (i)" is not what peers send)
            0x01,             // Request ID 1
            0x01, 0x01, b'a', // namespace ("a")
            0x01, b'v',       // name "v"
            0x09,             // Track Alias 9, chosen by the publisher
            0x01,             // Group Order ascending
            0x01, 0x03, 0x04, // Content Exists, Largest {3, 4}
            0x01,             // Forward 1
            0x00,             // no parameters
        ];
        check(&M::Publish(m), Draft::D14, &expected);
    }

    #[test]
    fn publish_later_drafts() {
        let mut m = Publish {
            request_id: 1,
            namespace: TrackNamespace::from_fields(["a"]),
            name: Bytes::from_static(b"v"),
            track_alias: 9,
            ..Default::default()
        };
        m.parameters.set_int(MessageParameter::Forward.code(), 0);
        #[rustfmt::skip]
        let d15 = [
            0x1d, 0x00, 0x0a, // PUBLISH, length 10
            0x01,             // Request ID 1
            0x01, 0x01, b'a', 0x01, b'v', // ("a") "v"
            0x09,             // Track Alias 9
            0x01, 0x10, 0x00, // one parameter FORWARD = 0
        ];
        check(&M::Publish(m.clone()), Draft::D15, &d15);
        m.track_extensions.set_int(0x30, 1);
        let mut d16 = d15.to_vec();
        d16[2] = 0x0c;
        d16.extend_from_slice(&[0x30, 0x01]); // Track Extensions: DYNAMIC_GROUPS (0x30) = 1
        check(&M::Publish(m.clone()), Draft::D16, &d16);
        #[rustfmt::skip]
        let d17 = [
            0x1d, 0x00, 0x0d, // PUBLISH, length 13
            0x01, 0x00,       // Request ID 1, Required Request ID Delta 0
            0x01, 0x01, b'a', 0x01, b'v', // ("a") "v"
            0x09,             // Track Alias 9
            0x01, 0x10, 0x00, // FORWARD (uint8) = 0
            0x30, 0x01,       // Track Properties: 0x30 = 1
        ];
        check(&M::Publish(m), Draft::D17, &d17);
    }

    #[test]
    fn publish_ok_bytes() {
        let m = PublishOk {
            request_id: 1,
            forward: true,
            subscriber_priority: 3,
            group_order: 2,
            filter: SubscriptionFilter::AbsoluteStart(Location::new(0, 0)),
            ..Default::default()
        };
        #[rustfmt::skip]
        let d14 = [
            0x1e, 0x00, 0x08, // PUBLISH_OK, 16-bit length 8
            0x01,             // Request ID 1
            0x01, 0x03, 0x02, // Forward 1, Subscriber Priority 3, Group Order descending
            0x03, 0x00, 0x00, // filter AbsoluteStart {0, 0}
            0x00,             // no parameters
        ];
        check(&M::PublishOk(m), Draft::D14, &d14);
        let m = PublishOk {
            request_id: 1,
            ..Default::default()
        };
        // PUBLISH_OK, length 2: Request ID 1, no parameters
        check(
            &M::PublishOk(m.clone()),
            Draft::D15,
            &[0x1e, 0x00, 0x02, 0x01, 0x00],
        );
        check(&M::PublishOk(m), Draft::D16, &[0x1e, 0x00, 0x02, 0x01, 0x00]);
        // draft-17: no Request ID; no parameters
        check(
            &M::PublishOk(PublishOk::default()),
            Draft::D17,
            &[0x1e, 0x00, 0x01, 0x00],
        );
    }

    #[test]
    fn publish_done_bytes() {
        let m = PublishDone {
            request_id: 4,
            status_code: 2,
            stream_count: 3,
            reason: "end".into(),
        };
        // PUBLISH_DONE, length 7: Request ID 4, TRACK_ENDED (2), 3 streams, "end"
        let expected = [0x0b, 0x00, 0x07, 0x04, 0x02, 0x03, 0x03, b'e', b'n', b'd'];
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            check(&M::PublishDone(m.clone()), d, &expected);
        }
        let m17 = PublishDone { request_id: 0, ..m };
        // draft-17: no Request ID
        check(
            &M::PublishDone(m17),
            Draft::D17,
            &[0x0b, 0x00, 0x06, 0x02, 0x03, 0x03, b'e', b'n', b'd'],
        );
    }

    proptest! {
        #[test]
        fn round_trips(ns in any_namespace(), name in proptest::collection::vec(any::<u8>(), 0..6),
                       id in 0u64..1000, delta in 0u64..500, prio in any::<u8>(), order in 1u8..3, fwd in any::<bool>(),
                       filter in any_filter(), params in crate::control::params::tests::any_params(),
                       ext in any_pairs(), largest in proptest::option::of((0u64..1 << 40, 0u64..1 << 40)),
                       reason in ".{0,10}") {
            for d in Draft::ALL {
                let p = Publish { request_id: id, required_request_id_delta: delta, namespace: ns.clone(),
                    name: name.clone().into(), track_alias: delta, group_order: order,
                    largest: largest.map(|(g, o)| Location::new(g, o)), forward: fwd, parameters: params.clone(),
                    track_extensions: ext.clone() };
                round_trip(&M::Publish(p), d)?;
                let ok = PublishOk { request_id: id, forward: fwd, subscriber_priority: prio, group_order: order,
                    filter, parameters: params.clone() };
                round_trip(&M::PublishOk(ok), d)?;
                round_trip(&M::PublishDone(PublishDone { request_id: id, status_code: delta, stream_count: id,
                    reason: reason.clone() }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            for ty in [0x0bu8, 0x1d, 0x1e] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

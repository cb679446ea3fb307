//! Subscriptions: SUBSCRIBE (also the TRACK_STATUS layout), SUBSCRIBE_OK
//! (also draft-14's TRACK_STATUS_OK), REQUEST_UPDATE (SUBSCRIBE_UPDATE in
//! drafts 14 and 15) and UNSUBSCRIBE.
//!
//! Draft-14 carries priority, group order, forward and the filter as fixed
//! fields; from draft-15 they are parameters (SUBSCRIBER_PRIORITY,
//! GROUP_ORDER, FORWARD, SUBSCRIPTION_FILTER, see [`super::param`]), and the
//! fixed fields here are then ignored on encode and default on decode.
//! SUBSCRIBE_OK loses Expires / Group Order / Largest Location in draft-15
//! (now EXPIRES / GROUP_ORDER / LARGEST_OBJECT parameters) and gains Track
//! Extensions (key-value pairs filling the rest of the message) in draft-16.
//! Draft-17 adds a Required Request ID Delta to requests and drops the
//! Request ID from SUBSCRIBE_OK.

use bytes::{Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::{MessageBody, Parameters, decode_parameters, encode_parameters};
use crate::Draft;
use crate::common::{Location, SubscriptionFilter, check_group_order, get_group_order};
use crate::kvp::KeyValuePairs;
use crate::namespace::{NamespaceRole, TrackNamespace, get_track_name, put_track_name};
use crate::varint::{get_flag, get_u8, get_vi, put_vi};

use bytes::BufMut;

/// SUBSCRIBE (0x03); TRACK_STATUS (0x0D) has the same layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    /// This request's ID.
    pub request_id: u64,
    /// Draft-17: the request this one depends on, as `(Request ID - Required) / 2`;
    /// 0 = none.
    pub required_request_id_delta: u64,
    /// The track namespace.
    pub namespace: TrackNamespace,
    /// The track name.
    pub name: Bytes,
    /// Draft-14: Subscriber Priority.
    pub subscriber_priority: u8,
    /// Draft-14: Group Order (0 = the publisher's).
    pub group_order: u8,
    /// Draft-14: Forward.
    pub forward: bool,
    /// Draft-14: the filter.
    pub filter: SubscriptionFilter,
    /// Parameters.
    pub parameters: Parameters,
}

/// Writes the draft-17 Required Request ID Delta, checking 2 × delta ≤
/// Request ID (draft-18 removed the field: nothing is written).
pub(crate) fn put_required(
    draft: Draft,
    request_id: u64,
    delta: u64,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    if draft.required_request_ids() {
        if delta.checked_mul(2).is_none_or(|d| d > request_id) {
            return Err(EncodeError::Invalid(
                "required request ID delta beyond request ID",
            ));
        }
        put_vi(draft, delta, buf)?;
    }
    Ok(())
}

/// Reads the draft-17 Required Request ID Delta (0 before draft-17).
pub(crate) fn get_required(draft: Draft, request_id: u64, buf: &mut Bytes) -> Result<u64, DecodeError> {
    if !draft.required_request_ids() {
        return Ok(0);
    }
    let delta = get_vi(buf, draft)?;
    if delta.checked_mul(2).is_none_or(|d| d > request_id) {
        return Err(DecodeError::Invalid(
            "required request ID delta beyond request ID",
        ));
    }
    Ok(delta)
}

impl MessageBody for Subscribe {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        self.namespace.encode(draft, NamespaceRole::Namespace, buf)?;
        put_track_name(draft, &self.namespace, &self.name, buf)?;
        if draft == Draft::D14 {
            buf.put_u8(self.subscriber_priority);
            buf.put_u8(check_group_order(self.group_order, true)?);
            buf.put_u8(self.forward as u8);
            self.filter.encode(draft, buf)?;
        }
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = get_vi(buf, draft)?;
        let required_request_id_delta = get_required(draft, request_id, buf)?;
        let namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
        let name = get_track_name(buf, draft, &namespace)?;
        let mut m = Subscribe {
            request_id,
            required_request_id_delta,
            namespace,
            name,
            ..Default::default()
        };
        if draft == Draft::D14 {
            m.subscriber_priority = get_u8(buf)?;
            m.group_order = get_group_order(buf, true)?;
            m.forward = get_flag(buf, "forward")?;
            m.filter = SubscriptionFilter::decode(buf, draft)?;
        }
        m.parameters = decode_parameters(buf, draft)?;
        Ok(m)
    }
}

/// SUBSCRIBE_OK (0x04); draft-14's TRACK_STATUS_OK (0x0E) has the same layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeOk {
    /// The SUBSCRIBE replied to (absent in draft-17).
    pub request_id: u64,
    /// The alias the publisher chose for this track's data.
    pub track_alias: u64,
    /// Draft-14: Expires (ms, 0 = never).
    pub expires: u64,
    /// Draft-14: Group Order (1 or 2).
    pub group_order: u8,
    /// Draft-14: the largest location, if content exists.
    pub largest: Option<Location>,
    /// Parameters.
    pub parameters: Parameters,
    /// Track Extensions (draft-16+; Track Properties in -17).
    pub track_extensions: KeyValuePairs,
}

/// Writes Content Exists and the optional Largest Location (draft-14).
pub(crate) fn put_largest(
    draft: Draft,
    largest: &Option<Location>,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    buf.put_u8(largest.is_some() as u8);
    if let Some(l) = largest {
        l.encode(draft, buf)?;
    }
    Ok(())
}

/// Reads Content Exists and the optional Largest Location (draft-14).
pub(crate) fn get_largest(draft: Draft, buf: &mut Bytes) -> Result<Option<Location>, DecodeError> {
    Ok(if get_flag(buf, "content exists")? {
        Some(Location::decode(buf, draft)?)
    } else {
        None
    })
}

impl MessageBody for SubscribeOk {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        put_vi(draft, self.track_alias, buf)?;
        if draft == Draft::D14 {
            put_vi(draft, self.expires, buf)?;
            buf.put_u8(check_group_order(self.group_order, false)?);
            put_largest(draft, &self.largest, buf)?;
        }
        encode_parameters(&self.parameters, draft, buf)?;
        if draft >= Draft::D16 {
            self.track_extensions.encode_pairs(draft, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = SubscribeOk::default();
        if draft < Draft::D17 {
            m.request_id = get_vi(buf, draft)?;
        }
        m.track_alias = get_vi(buf, draft)?;
        if draft == Draft::D14 {
            m.expires = get_vi(buf, draft)?;
            m.group_order = get_group_order(buf, false)?;
            m.largest = get_largest(draft, buf)?;
        }
        m.parameters = decode_parameters(buf, draft)?;
        if draft >= Draft::D16 {
            m.track_extensions = KeyValuePairs::decode_to_end(buf, draft)?;
        }
        Ok(m)
    }
}

/// REQUEST_UPDATE (0x02, 16+); SUBSCRIBE_UPDATE in drafts 14 and 15.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestUpdate {
    /// This request's ID.
    pub request_id: u64,
    /// The request being updated ("Subscription Request ID" in 14/15,
    /// "Existing Request ID" in 16; absent in 17, where the update travels
    /// on the request's stream).
    pub existing_request_id: u64,
    /// Draft-17: Required Request ID Delta.
    pub required_request_id_delta: u64,
    /// Draft-14: the new start location.
    pub start: Location,
    /// Draft-14: the new end group, inclusive; `None` = open ended (the
    /// wire carries end group + 1, with 0 for open ended).
    pub end_group: Option<u64>,
    /// Draft-14: Subscriber Priority.
    pub subscriber_priority: u8,
    /// Draft-14: Forward.
    pub forward: bool,
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for RequestUpdate {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        if draft < Draft::D17 {
            put_vi(draft, self.existing_request_id, buf)?;
        }
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        if draft == Draft::D14 {
            self.start.encode(draft, buf)?;
            let end = match self.end_group {
                None => 0,
                Some(g) => g.checked_add(1).ok_or(EncodeError::TooLarge("end group"))?,
            };
            put_vi(draft, end, buf)?;
            buf.put_u8(self.subscriber_priority);
            buf.put_u8(self.forward as u8);
        }
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = RequestUpdate {
            request_id: get_vi(buf, draft)?,
            ..Default::default()
        };
        if draft < Draft::D17 {
            m.existing_request_id = get_vi(buf, draft)?;
        }
        m.required_request_id_delta = get_required(draft, m.request_id, buf)?;
        if draft == Draft::D14 {
            m.start = Location::decode(buf, draft)?;
            m.end_group = get_vi(buf, draft)?.checked_sub(1);
            m.subscriber_priority = get_u8(buf)?;
            m.forward = get_flag(buf, "forward")?;
        }
        m.parameters = decode_parameters(buf, draft)?;
        Ok(m)
    }
}

/// UNSUBSCRIBE (0x0A, drafts 14 to 16; draft-17 cancels by resetting the
/// request stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unsubscribe {
    /// The subscription's Request ID.
    pub request_id: u64,
}

impl MessageBody for Unsubscribe {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(Unsubscribe {
            request_id: get_vi(buf, draft)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::control::ControlMessage as M;
    use crate::control::tests::{check, garbage, round_trip};
    use crate::control::{MessageParameter, set_filter, set_location};
    use crate::kvp::tests::any_pairs;
    use crate::namespace::tests::any_namespace;
    use proptest::prelude::*;

    fn sub(filter: SubscriptionFilter) -> Subscribe {
        Subscribe {
            request_id: 4,
            namespace: TrackNamespace::from_fields(["a"]),
            name: Bytes::from_static(b"v"),
            subscriber_priority: 0x80,
            group_order: 1,
            forward: true,
            filter,
            ..Default::default()
        }
    }

    #[test]
    fn subscribe_d14_every_filter() {
        #[rustfmt::skip]
        let head = [
            0x04,             // Request ID 4
            0x01, 0x01, b'a', // namespace: 1 field "a"
            0x01, b'v',       // track name "v"
            0x80,             // Subscriber Priority 128
            0x01,             // Group Order ascending
            0x01,             // Forward 1
        ];
        let cases: [(SubscriptionFilter, &[u8]); 4] = [
            (SubscriptionFilter::NextGroupStart, &[0x01]), // filter 0x1
            (SubscriptionFilter::LargestObject, &[0x02]),  // filter 0x2
            (
                SubscriptionFilter::AbsoluteStart(Location::new(5, 0)),
                &[0x03, 0x05, 0x00],
            ), // 0x3, start {5, 0}
            (
                SubscriptionFilter::AbsoluteRange {
                    start: Location::new(5, 1),
                    end_group: 9,
                },
                &[0x04, 0x05, 0x01, 0x09], // 0x4, start {5, 1}, end group 9
            ),
        ];
        for (filter, fbytes) in cases {
            let mut body = head.to_vec();
            body.extend_from_slice(fbytes);
            body.push(0x00); // no parameters
            let mut expected = vec![0x03, 0x00, body.len() as u8];
            expected.extend_from_slice(&body);
            check(&M::Subscribe(sub(filter)), Draft::D14, &expected);
            expected[0] = 0x0d; // TRACK_STATUS: identical layout
            check(&M::TrackStatus(sub(filter)), Draft::D14, &expected);
        }
        // Forward 2 and group order 3 are protocol errors.
        let mut bad = vec![0x03, 0x00, 0x0b];
        bad.extend_from_slice(&head[..8]);
        bad.extend_from_slice(&[0x02, 0x02, 0x00]);
        assert!(matches!(
            M::decode(&mut &bad[..], Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn subscribe_d15_to_d17() {
        let mut m = Subscribe {
            request_id: 4,
            namespace: TrackNamespace::from_fields(["a"]),
            name: Bytes::from_static(b"v"),
            ..Default::default()
        };
        m.parameters.set_int(MessageParameter::Forward.code(), 1);
        #[rustfmt::skip]
        let d15 = [
            0x03, 0x00, 0x09, // SUBSCRIBE, length 9
            0x04,             // Request ID 4
            0x01, 0x01, b'a', // namespace ("a")
            0x01, b'v',       // name "v"
            0x01, 0x10, 0x01, // one parameter: FORWARD (0x10) = 1
        ];
        check(&M::Subscribe(m.clone()), Draft::D15, &d15);
        check(&M::Subscribe(m.clone()), Draft::D16, &d15);
        m.required_request_id_delta = 1;
        #[rustfmt::skip]
        let d17 = [
            0x03, 0x00, 0x0a, // SUBSCRIBE, length 10
            0x04,             // Request ID 4
            0x01,             // Required Request ID Delta 1: depends on request 2
            0x01, 0x01, b'a', // namespace ("a")
            0x01, b'v',       // name "v"
            0x01, 0x10, 0x01, // one parameter: FORWARD (uint8) = 1
        ];
        check(&M::Subscribe(m.clone()), Draft::D17, &d17);
        m.required_request_id_delta = 3; // 6 > 4
        assert!(M::Subscribe(m).encode(Draft::D17, &mut Vec::new()).is_err());
    }

    #[test]
    fn subscribe_ok_all_drafts() {
        let m = SubscribeOk {
            request_id: 4,
            track_alias: 7,
            expires: 0,
            group_order: 2,
            largest: Some(Location::new(10, 3)),
            ..Default::default()
        };
        #[rustfmt::skip]
        let d14 = [
            0x04, 0x00, 0x08, // SUBSCRIBE_OK, length 8
            0x04,             // Request ID 4
            0x07,             // Track Alias 7 (chosen by the publisher)
            0x00,             // Expires 0
            0x02,             // Group Order descending
            0x01, 0x0a, 0x03, // Content Exists 1, Largest {10, 3}
            0x00,             // no parameters
        ];
        check(&M::SubscribeOk(m.clone()), Draft::D14, &d14);
        let mut ts = d14;
        ts[0] = 0x0e; // TRACK_STATUS_OK has the same layout in -14
        check(&M::TrackStatusOk(m.clone()), Draft::D14, &ts);
        let mut no_content = m.clone();
        no_content.largest = None;
        // SUBSCRIBE_OK, length 6: id 4, alias 7, expires 0, order 2, Content Exists 0, no params
        check(
            &M::SubscribeOk(no_content),
            Draft::D14,
            &[0x04, 0x00, 0x06, 0x04, 0x07, 0x00, 0x02, 0x00, 0x00],
        );

        let mut m15 = SubscribeOk {
            request_id: 4,
            track_alias: 7,
            ..Default::default()
        };
        set_location(
            &mut m15.parameters,
            MessageParameter::LargestObject.code(),
            Location::new(10, 3),
            Draft::D15,
        )
        .unwrap();
        #[rustfmt::skip]
        let d15 = [
            0x04, 0x00, 0x07, // SUBSCRIBE_OK, length 7
            0x04, 0x07,       // Request ID 4, Track Alias 7
            0x01,             // one parameter
            0x09, 0x02, 0x0a, 0x03, // LARGEST_OBJECT (odd 0x09): length 2, {10, 3}
        ];
        check(&M::SubscribeOk(m15.clone()), Draft::D15, &d15);
        let mut m16 = m15.clone();
        m16.track_extensions.set_int(0x0e, 5);
        #[rustfmt::skip]
        let d16 = [
            0x04, 0x00, 0x09, // SUBSCRIBE_OK, length 9
            0x04, 0x07,       // Request ID 4, Track Alias 7
            0x01, 0x09, 0x02, 0x0a, 0x03, // LARGEST_OBJECT {10, 3}
            0x0e, 0x05,       // Track Extensions to the end: DEFAULT_PUBLISHER_PRIORITY (0x0e) = 5
        ];
        check(&M::SubscribeOk(m16.clone()), Draft::D16, &d16);
        let mut m17 = SubscribeOk {
            track_alias: 7,
            track_extensions: m16.track_extensions.clone(),
            ..Default::default()
        };
        set_location(
            &mut m17.parameters,
            MessageParameter::LargestObject.code(),
            Location::new(10, 3),
            Draft::D17,
        )
        .unwrap();
        #[rustfmt::skip]
        let d17 = [
            0x04, 0x00, 0x07, // SUBSCRIBE_OK, length 7
            0x07,             // Track Alias 7 (no Request ID in -17)
            0x01, 0x09, 0x0a, 0x03, // one parameter LARGEST_OBJECT: a bare Location {10, 3}
            0x0e, 0x05,       // Track Properties: 0x0e = 5
        ];
        check(&M::SubscribeOk(m17), Draft::D17, &d17);
    }

    #[test]
    fn request_update_bytes() {
        let m = RequestUpdate {
            request_id: 6,
            existing_request_id: 4,
            start: Location::new(2, 0),
            end_group: None,
            subscriber_priority: 10,
            forward: true,
            ..Default::default()
        };
        #[rustfmt::skip]
        let d14 = [
            0x02, 0x00, 0x08, // SUBSCRIBE_UPDATE, length 8
            0x06, 0x04,       // Request ID 6, Subscription Request ID 4
            0x02, 0x00,       // Start {2, 0}
            0x00,             // End Group + 1 = 0: open ended
            0x0a, 0x01,       // Subscriber Priority 10, Forward 1
            0x00,             // no parameters
        ];
        check(&M::RequestUpdate(m.clone()), Draft::D14, &d14);
        let mut closed = m.clone();
        closed.end_group = Some(4);
        let mut d14b = d14;
        d14b[7] = 0x05; // end group 4 is written as 5
        check(&M::RequestUpdate(closed), Draft::D14, &d14b);
        let m15 = RequestUpdate {
            request_id: 6,
            existing_request_id: 4,
            ..Default::default()
        };
        for d in [Draft::D15, Draft::D16] {
            // REQUEST_UPDATE, length 3: Request ID 6, Existing Request ID 4, no parameters
            check(
                &M::RequestUpdate(m15.clone()),
                d,
                &[0x02, 0x00, 0x03, 0x06, 0x04, 0x00],
            );
        }
        let m17 = RequestUpdate {
            request_id: 6,
            required_request_id_delta: 1,
            ..Default::default()
        };
        // draft-17: Request ID 6, Required Request ID Delta 1, no parameters
        check(
            &M::RequestUpdate(m17),
            Draft::D17,
            &[0x02, 0x00, 0x03, 0x06, 0x01, 0x00],
        );
    }

    #[test]
    fn unsubscribe_bytes() {
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            // UNSUBSCRIBE, length 1, Request ID 4
            check(
                &M::Unsubscribe(Unsubscribe { request_id: 4 }),
                d,
                &[0x0a, 0x00, 0x01, 0x04],
            );
        }
        assert!(
            M::Unsubscribe(Unsubscribe::default())
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
    }

    pub fn any_filter() -> impl Strategy<Value = SubscriptionFilter> {
        prop_oneof![
            Just(SubscriptionFilter::NextGroupStart),
            Just(SubscriptionFilter::LargestObject),
            (any::<u32>(), any::<u32>())
                .prop_map(|(g, o)| SubscriptionFilter::AbsoluteStart(Location::new(g as u64, o as u64))),
            (any::<u32>(), any::<u32>(), any::<u16>()).prop_map(|(g, o, e)| {
                SubscriptionFilter::AbsoluteRange {
                    start: Location::new(g as u64, o as u64),
                    end_group: g as u64 + e as u64,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(ns in any_namespace(), name in proptest::collection::vec(any::<u8>(), 0..6),
                       id in 0u64..1000, delta in 0u64..500, prio in any::<u8>(), order in 0u8..3, fwd in any::<bool>(),
                       filter in any_filter(), params in crate::control::params::tests::any_params(),
                       ext in any_pairs(), largest in proptest::option::of((0u64..1 << 40, 0u64..1 << 40)),
                       end in proptest::option::of(0u64..1 << 40)) {
            for d in Draft::ALL {
                let mut params = params.clone();
                if d >= Draft::D15 { set_filter(&mut params, filter, d).unwrap(); }
                let s = Subscribe { request_id: id, required_request_id_delta: delta, namespace: ns.clone(),
                    name: name.clone().into(), subscriber_priority: prio, group_order: order, forward: fwd,
                    filter, parameters: params.clone() };
                round_trip(&M::Subscribe(s.clone()), d)?;
                round_trip(&M::TrackStatus(s), d)?;
                let ok = SubscribeOk { request_id: id, track_alias: delta, expires: id, group_order: order.max(1),
                    largest: largest.map(|(g, o)| Location::new(g, o)), parameters: params.clone(),
                    track_extensions: ext.clone() };
                round_trip(&M::SubscribeOk(ok.clone()), d)?;
                round_trip(&M::TrackStatusOk(ok), d)?;
                let up = RequestUpdate { request_id: id, existing_request_id: delta, required_request_id_delta: delta,
                    start: Location::new(delta, id), end_group: end, subscriber_priority: prio, forward: fwd,
                    parameters: params };
                round_trip(&M::RequestUpdate(up), d)?;
                round_trip(&M::Unsubscribe(Unsubscribe { request_id: id }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            for ty in [0x02u8, 0x03, 0x04, 0x0a, 0x0d, 0x0e] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

//! Fetches: FETCH (standalone, relative joining, absolute joining), FETCH_OK
//! and FETCH_CANCEL. FETCH_ERROR is draft-14's [`super::RequestError`] under
//! type 0x19.
//!
//! Draft-14 FETCH carries Subscriber Priority and Group Order; from draft-15
//! they are parameters. FETCH_OK loses Group Order in draft-15 and gains
//! Track Extensions in draft-16. FETCH_CANCEL is gone in draft-17 (reset the
//! request stream instead). A standalone End Location is "the end plus one":
//! an Object of 0 requests the whole End group; the codec carries it as is.
//! Draft-20 drops the Fetch Type and joining: a FETCH names a track and
//! its LOCATION_FILTER parameter the range ([`FetchType::Filtered`]), and
//! FETCH_OK's End Location becomes inclusive.

use bytes::{BufMut, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use super::subscribe::{get_required, put_required};
use super::{MessageBody, Parameters, decode_parameters, encode_parameters};
use crate::Draft;
use crate::common::{Location, check_group_order, get_group_order};
use crate::kvp::KeyValuePairs;
use crate::namespace::{NamespaceRole, TrackNamespace, get_track_name, put_track_name};
use crate::varint::{get_flag, get_u8, get_vi, put_vi};

/// What a FETCH asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchType {
    /// 0x1: a range of a named track.
    Standalone {
        /// The track namespace.
        namespace: TrackNamespace,
        /// The track name.
        name: Bytes,
        /// The first location.
        start: Location,
        /// The end location plus one object (Object 0 = the whole group).
        end: Location,
    },
    /// 0x2: the `joining_start` groups before the joined subscription's largest group.
    RelativeJoining {
        /// The subscription joined.
        joining_request_id: u64,
        /// Groups back from the subscription's largest group.
        joining_start: u64,
    },
    /// 0x3: from group `joining_start` up to the joined subscription.
    AbsoluteJoining {
        /// The subscription joined.
        joining_request_id: u64,
        /// The first group.
        joining_start: u64,
    },
    /// Draft-20+: a track, its range in the LOCATION_FILTER parameter
    /// (none: the whole track up to the largest object).
    Filtered {
        /// The track namespace.
        namespace: TrackNamespace,
        /// The track name.
        name: Bytes,
    },
}

impl Default for FetchType {
    fn default() -> Self {
        FetchType::RelativeJoining {
            joining_request_id: 0,
            joining_start: 0,
        }
    }
}

/// FETCH (0x16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetch {
    /// This request's ID.
    pub request_id: u64,
    /// Draft-17: Required Request ID Delta.
    pub required_request_id_delta: u64,
    /// Draft-14: Subscriber Priority.
    pub subscriber_priority: u8,
    /// Draft-14: Group Order (0 = the publisher's).
    pub group_order: u8,
    /// What to fetch.
    pub fetch_type: FetchType,
    /// Parameters.
    pub parameters: Parameters,
}

impl MessageBody for Fetch {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)?;
        put_required(draft, self.request_id, self.required_request_id_delta, buf)?;
        if draft == Draft::D14 {
            buf.put_u8(self.subscriber_priority);
            buf.put_u8(check_group_order(self.group_order, true)?);
        }
        match (&self.fetch_type, draft.filtered_fetch()) {
            (FetchType::Filtered { namespace, name }, true) => {
                namespace.encode(draft, NamespaceRole::Namespace, buf)?;
                put_track_name(draft, namespace, name, buf)?;
            }
            (FetchType::Filtered { .. }, false) => {
                return Err(EncodeError::Version("a FETCH without a Fetch Type is draft-20+"));
            }
            (_, true) => return Err(EncodeError::Version("draft-20 FETCH has no Fetch Type")),
            (
                FetchType::Standalone {
                    namespace,
                    name,
                    start,
                    end,
                },
                false,
            ) => {
                put_vi(draft, 0x1, buf)?;
                namespace.encode(draft, NamespaceRole::Namespace, buf)?;
                put_track_name(draft, namespace, name, buf)?;
                start.encode(draft, buf)?;
                end.encode(draft, buf)?;
            }
            (
                FetchType::RelativeJoining {
                    joining_request_id,
                    joining_start,
                }
                | FetchType::AbsoluteJoining {
                    joining_request_id,
                    joining_start,
                },
                false,
            ) => {
                let code = if matches!(self.fetch_type, FetchType::RelativeJoining { .. }) {
                    0x2
                } else {
                    0x3
                };
                put_vi(draft, code, buf)?;
                put_vi(draft, *joining_request_id, buf)?;
                put_vi(draft, *joining_start, buf)?;
            }
        }
        encode_parameters(&self.parameters, draft, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let request_id = get_vi(buf, draft)?;
        let required_request_id_delta = get_required(draft, request_id, buf)?;
        let (mut subscriber_priority, mut group_order) = (0, 0);
        if draft == Draft::D14 {
            subscriber_priority = get_u8(buf)?;
            group_order = get_group_order(buf, true)?;
        }
        let code = match draft.filtered_fetch() {
            true => None,
            false => Some(get_vi(buf, draft)?),
        };
        let fetch_type = match code {
            None => {
                let namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
                let name = get_track_name(buf, draft, &namespace)?;
                FetchType::Filtered { namespace, name }
            }
            Some(0x1) => {
                let namespace = TrackNamespace::decode(buf, draft, NamespaceRole::Namespace)?;
                let name = get_track_name(buf, draft, &namespace)?;
                FetchType::Standalone {
                    namespace,
                    name,
                    start: Location::decode(buf, draft)?,
                    end: Location::decode(buf, draft)?,
                }
            }
            Some(code @ (0x2 | 0x3)) => {
                let joining_request_id = get_vi(buf, draft)?;
                let joining_start = get_vi(buf, draft)?;
                if code == 0x2 {
                    FetchType::RelativeJoining {
                        joining_request_id,
                        joining_start,
                    }
                } else {
                    FetchType::AbsoluteJoining {
                        joining_request_id,
                        joining_start,
                    }
                }
            }
            _ => return Err(DecodeError::Invalid("fetch type")),
        };
        Ok(Fetch {
            request_id,
            required_request_id_delta,
            subscriber_priority,
            group_order,
            fetch_type,
            parameters: decode_parameters(buf, draft)?,
        })
    }
}

/// FETCH_OK (0x18).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOk {
    /// The FETCH replied to (absent in draft-17).
    pub request_id: u64,
    /// Draft-14: Group Order (1 or 2).
    pub group_order: u8,
    /// Whether End Location is the track's final object.
    pub end_of_track: bool,
    /// The largest object covered, plus one object (Object 0: the whole
    /// group) up to draft-19; the last object covered from draft-20.
    pub end_location: Location,
    /// Parameters.
    pub parameters: Parameters,
    /// Track Extensions (draft-16+).
    pub track_extensions: KeyValuePairs,
}

impl MessageBody for FetchOk {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if draft < Draft::D17 {
            put_vi(draft, self.request_id, buf)?;
        }
        if draft == Draft::D14 {
            buf.put_u8(check_group_order(self.group_order, false)?);
        }
        buf.put_u8(self.end_of_track as u8);
        self.end_location.encode(draft, buf)?;
        encode_parameters(&self.parameters, draft, buf)?;
        if draft >= Draft::D16 {
            self.track_extensions.encode_pairs(draft, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut m = FetchOk::default();
        if draft < Draft::D17 {
            m.request_id = get_vi(buf, draft)?;
        }
        if draft == Draft::D14 {
            m.group_order = get_group_order(buf, false)?;
        }
        m.end_of_track = get_flag(buf, "end of track")?;
        m.end_location = Location::decode(buf, draft)?;
        m.parameters = decode_parameters(buf, draft)?;
        if draft >= Draft::D16 {
            m.track_extensions = KeyValuePairs::decode_to_end(buf, draft)?;
        }
        Ok(m)
    }
}

/// FETCH_CANCEL (0x17, drafts 14 to 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchCancel {
    /// The FETCH cancelled.
    pub request_id: u64,
}

impl MessageBody for FetchCancel {
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_vi(draft, self.request_id, buf)
    }

    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        Ok(FetchCancel {
            request_id: get_vi(buf, draft)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlMessage as M;
    use crate::control::tests::{check, garbage, round_trip};
    use crate::kvp::tests::any_pairs;
    use crate::namespace::tests::any_namespace;
    use proptest::prelude::*;

    fn standalone() -> FetchType {
        FetchType::Standalone {
            namespace: TrackNamespace::from_fields(["a"]),
            name: Bytes::from_static(b"v"),
            start: Location::new(1, 0),
            end: Location::new(3, 0),
        }
    }

    #[test]
    fn fetch_d14_all_types() {
        let mut m = Fetch {
            request_id: 2,
            subscriber_priority: 5,
            group_order: 0,
            fetch_type: standalone(),
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x16, 0x00, 0x0e, // FETCH, length 14
            0x02,             // Request ID 2
            0x05, 0x00,       // Subscriber Priority 5, Group Order 0 (publisher's)
            0x01,             // Fetch Type standalone
            0x01, 0x01, b'a', 0x01, b'v', // ("a") "v"
            0x01, 0x00,       // Start {1, 0}
            0x03, 0x00,       // End {3, 0}: the whole of group 3
            0x00,             // no parameters
        ];
        check(&M::Fetch(m.clone()), Draft::D14, &expected);
        m.fetch_type = FetchType::RelativeJoining {
            joining_request_id: 0,
            joining_start: 2,
        };
        // FETCH, length 7: id 2, prio 5, order 0, type 0x2, joining request 0, start 2, no params
        let rel = [0x16, 0x00, 0x07, 0x02, 0x05, 0x00, 0x02, 0x00, 0x02, 0x00];
        check(&M::Fetch(m.clone()), Draft::D14, &rel);
        m.fetch_type = FetchType::AbsoluteJoining {
            joining_request_id: 0,
            joining_start: 2,
        };
        let mut abs = rel;
        abs[6] = 0x03; // Fetch Type absolute joining
        check(&M::Fetch(m), Draft::D14, &abs);
        // Fetch Type 4 is a protocol violation.
        let mut bad = rel;
        bad[6] = 0x04;
        assert!(matches!(
            M::decode(&mut &bad[..], Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn fetch_later_drafts() {
        let m = Fetch {
            request_id: 2,
            fetch_type: FetchType::AbsoluteJoining {
                joining_request_id: 0,
                joining_start: 7,
            },
            ..Default::default()
        };
        // FETCH, length 5: id 2, type 0x3, joining request 0, start 7, no params
        for d in [Draft::D15, Draft::D16] {
            check(
                &M::Fetch(m.clone()),
                d,
                &[0x16, 0x00, 0x05, 0x02, 0x03, 0x00, 0x07, 0x00],
            );
        }
        // draft-17 adds Required Request ID Delta (0) after the Request ID
        check(
            &M::Fetch(m),
            Draft::D17,
            &[0x16, 0x00, 0x06, 0x02, 0x00, 0x03, 0x00, 0x07, 0x00],
        );
    }

    #[test]
    fn fetch_ok_and_cancel() {
        let m = FetchOk {
            request_id: 2,
            group_order: 1,
            end_of_track: true,
            end_location: Location::new(3, 0),
            ..Default::default()
        };
        // FETCH_OK, length 6: id 2, order ascending, End Of Track 1, End {3, 0}, no params
        check(
            &M::FetchOk(m.clone()),
            Draft::D14,
            &[0x18, 0x00, 0x06, 0x02, 0x01, 0x01, 0x03, 0x00, 0x00],
        );
        // draft-15: no Group Order
        let m = FetchOk { group_order: 0, ..m };
        check(
            &M::FetchOk(m.clone()),
            Draft::D15,
            &[0x18, 0x00, 0x05, 0x02, 0x01, 0x03, 0x00, 0x00],
        );
        let mut m16 = m.clone();
        m16.track_extensions.set_bytes(0x3f, &b"z"[..]);
        // draft-16: ... then Track Extensions: odd type 0x3f, length 1, "z"
        #[rustfmt::skip]
        check(&M::FetchOk(m16.clone()), Draft::D16, &[
            0x18, 0x00, 0x08, 0x02, 0x01, 0x03, 0x00, 0x00, 0x3f, 0x01, b'z',
        ]);
        m16.request_id = 0;
        // draft-17: no Request ID
        #[rustfmt::skip]
        check(&M::FetchOk(m16), Draft::D17, &[0x18, 0x00, 0x07, 0x01, 0x03, 0x00, 0x00, 0x3f, 0x01, b'z']);
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            // FETCH_CANCEL, length 1, Request ID 2
            check(
                &M::FetchCancel(FetchCancel { request_id: 2 }),
                d,
                &[0x17, 0x00, 0x01, 0x02],
            );
        }
        assert!(
            M::FetchCancel(FetchCancel::default())
                .encode(Draft::D17, &mut Vec::new())
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn round_trips(ns in any_namespace(), id in 0u64..1000, delta in 0u64..500, prio in any::<u8>(),
                       order in 0u8..3, g in 0u64..1 << 40, o in 0u64..1 << 40, kind in 0u8..3,
                       params in crate::control::params::tests::any_params(), ext in any_pairs(), eot in any::<bool>()) {
            let fetch_type = match kind {
                0 => FetchType::Standalone { namespace: ns, name: Bytes::from_static(b"n"),
                    start: Location::new(g, o), end: Location::new(o, g) },
                1 => FetchType::RelativeJoining { joining_request_id: g, joining_start: o },
                _ => FetchType::AbsoluteJoining { joining_request_id: g, joining_start: o },
            };
            for d in Draft::ALL {
                round_trip(&M::Fetch(Fetch { request_id: id, required_request_id_delta: delta, subscriber_priority: prio,
                    group_order: order, fetch_type: fetch_type.clone(), parameters: params.clone() }), d)?;
                round_trip(&M::FetchOk(FetchOk { request_id: id, group_order: order.max(1), end_of_track: eot,
                    end_location: Location::new(g, o), parameters: params.clone(), track_extensions: ext.clone() }), d)?;
                round_trip(&M::FetchCancel(FetchCancel { request_id: id }), d)?;
            }
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            for ty in [0x16u8, 0x17, 0x18] {
                let mut m = vec![ty, 0, body.len() as u8];
                m.extend_from_slice(&body);
                garbage(&m);
            }
        }
    }
}

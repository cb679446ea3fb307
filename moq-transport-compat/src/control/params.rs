//! Message parameters (called version-specific parameters in draft-14/15)
//! and their well-known types.
//!
//! Drafts 14 to 16 write message parameters as a count followed by
//! key-value pairs ([`KeyValuePairs`]; delta-coded types from draft-16).
//! Draft-17 writes a count followed by type-value pairs: the type as a delta
//! from the previous one (ascending order), then a value whose form the
//! type decides: uint8, varint, Location or length-prefixed bytes. Since the
//! form of an unknown type cannot be known, draft-17 makes any unknown
//! parameter a PROTOCOL_VIOLATION; decoding returns [`DecodeError::Invalid`].
//!
//! In memory every draft uses [`KeyValuePairs`]: uint8 and varint values are
//! [`Value::Int`]; length-prefixed values are [`Value::Bytes`]; a draft-17
//! Location value is [`Value::Bytes`] holding its two varints as they are on
//! the wire, which is also what the odd-typed LARGEST_OBJECT of drafts 15 and
//! 16 carries. Use [`location`] / [`set_location`] and [`filter`] /
//! [`set_filter`] to read and write those values for a given draft.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;
use crate::common::{Location, SubscriptionFilter};
use crate::kvp::{KeyValuePair, KeyValuePairs, MAX_KEY_VALUE_LEN, MAX_KEY_VALUE_PAIRS, Value};
use crate::namespace::{NamespaceRole, TrackNamespace};
use crate::varint::{get_bytes, get_len, get_u8, get_vi, put_bytes, put_vi};

/// Message parameters: key-value pairs in memory, see the module docs.
pub type Parameters = KeyValuePairs;

thread_local! {
    /// Whether Location values are read with a length before them (see
    /// [`with_prefixed_locations`]).
    static PREFIXED_LOCATIONS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` reading draft-17+ Location parameters (LARGEST_OBJECT) as a
/// length then the Location. The texts give the Location bare, and so do
/// the reference implementation and aiomoqt; the browser client @moq/net
/// 0.3.4 writes a length first (the key-value rule for odd types), so a
/// message that does not parse bare is tried this way once
/// ([`super::ControlMessage::decode`]).
pub(crate) fn with_prefixed_locations<R>(f: impl FnOnce() -> R) -> R {
    PREFIXED_LOCATIONS.with(|p| p.set(true));
    let result = f();
    PREFIXED_LOCATIONS.with(|p| p.set(false));
    result
}

moq_lite::wire_enum! {
    /// Message parameter types.
    pub enum MessageParameter {
        /// DELIVERY_TIMEOUT (varint, ms); OBJECT_DELIVERY_TIMEOUT from draft-18.
        DeliveryTimeout = 0x02,
        /// AUTHORIZATION_TOKEN (bytes: a Token structure).
        AuthorizationToken = 0x03,
        /// MAX_CACHE_DURATION (varint, ms) in drafts 14 and 15; draft-17's
        /// RENDEZVOUS_TIMEOUT (varint, ms) has the same code.
        MaxCacheDuration = 0x04,
        /// SUBGROUP_DELIVERY_TIMEOUT (draft-18+, varint ms).
        SubgroupDeliveryTimeout = 0x06,
        /// EXPIRES (draft-15+, varint ms).
        Expires = 0x08,
        /// LARGEST_OBJECT (draft-15+, a Location).
        LargestObject = 0x09,
        /// FILL_TIMEOUT (draft-18+, varint ms): how long a relay may spend
        /// fetching upstream for a FETCH.
        FillTimeout = 0x0a,
        /// PUBLISHER_PRIORITY (draft-15 only; a track extension from draft-16).
        PublisherPriority = 0x0e,
        /// FORWARD (draft-15+, 0 or 1).
        Forward = 0x10,
        /// SUBSCRIBER_PRIORITY (draft-15+, 0 to 255).
        SubscriberPriority = 0x20,
        /// SUBSCRIPTION_FILTER (draft-15+, a Subscription Filter);
        /// LOCATION_FILTER from draft-19 (see [`SubscriptionFilter`]).
        SubscriptionFilter = 0x21,
        /// GROUP_ORDER (draft-15+, 1 or 2).
        GroupOrder = 0x22,
        /// FILL_PARAMETERS (draft-20+, length-prefixed parameters): the
        /// SUBSCRIBE also asks for a fill of what precedes its start.
        FillParameters = 0x23,
        /// SUBGROUP_FILTER (draft-19+, a length-prefixed range filter).
        SubgroupFilter = 0x25,
        /// OBJECTID_FILTER (draft-19+, a length-prefixed range filter).
        ObjectIdFilter = 0x26,
        /// PRIORITY_FILTER (draft-19+, a length-prefixed range filter).
        PriorityFilter = 0x27,
        /// OBJECT_PROPERTY_FILTER (draft-19+, a length-prefixed range filter).
        ObjectPropertyFilter = 0x28,
        /// TRACK_PROPERTY_FILTER (draft-19+, a length-prefixed range filter).
        TrackPropertyFilter = 0x29,
        /// DYNAMIC_GROUPS (draft-15 only; a track extension from draft-16).
        DynamicGroups = 0x30,
        /// NEW_GROUP_REQUEST (draft-15+, varint).
        NewGroupRequest = 0x32,
        /// TRACK_NAMESPACE_PREFIX (draft-18+, a Track Namespace): a new
        /// prefix for a namespace subscription, in REQUEST_UPDATE.
        TrackNamespacePrefix = 0x34,
        /// INCLUDE_PROPERTIES (draft-20+, 0 or 1): whether the answer should
        /// carry Track Properties.
        IncludeProperties = 0x35,
    }
}

impl MessageParameter {
    /// RENDEZVOUS_TIMEOUT (draft-17, varint ms): the code of MAX_CACHE_DURATION.
    pub const RENDEZVOUS_TIMEOUT: MessageParameter = MessageParameter::MaxCacheDuration;
}

/// The value form of a draft-17+ message parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form17 {
    U8,
    VarInt,
    Location,
    Prefixed,
    /// A Track Namespace as it is everywhere else (count, then each field
    /// length-prefixed), with no length of its own: draft-18 section
    /// "TRACK_NAMESPACE_PREFIX" says it "uses the Track Namespace encoding".
    Namespace,
    /// Draft-22's LOCATION_FILTER: a Location Filter Type then the fields it
    /// names, with no length of its own.
    TypedFilter,
}

impl MessageParameter {
    /// Whether this is one of draft-19's range filters (0x25 to 0x29).
    pub fn is_range_filter(self) -> bool {
        matches!(self.code(), 0x25..=0x29)
    }
}

fn form17(key: u64, draft: Draft) -> Option<Form17> {
    use MessageParameter as P;
    let d18 = draft.at_least(Draft::D18);
    Some(match P::from(key) {
        P::SubscriptionFilter if draft.typed_location_filter() => Form17::TypedFilter,
        p if p.is_range_filter() && draft.range_filters() => Form17::Prefixed,
        P::FillParameters if draft.filtered_fetch() => Form17::Prefixed,
        P::IncludeProperties if draft.filtered_fetch() => Form17::U8,
        P::DeliveryTimeout | P::MaxCacheDuration | P::Expires | P::NewGroupRequest => Form17::VarInt,
        P::SubgroupDeliveryTimeout | P::FillTimeout if d18 => Form17::VarInt,
        P::TrackNamespacePrefix if d18 => Form17::Namespace,
        P::AuthorizationToken | P::SubscriptionFilter => Form17::Prefixed,
        P::LargestObject => Form17::Location,
        P::Forward | P::SubscriberPriority | P::GroupOrder => Form17::U8,
        _ => return None,
    })
}

/// Writes a parameter count and the parameters in `draft`'s form.
pub fn encode_parameters<B: BufMut>(
    params: &Parameters,
    draft: Draft,
    buf: &mut B,
) -> Result<(), EncodeError> {
    if draft < Draft::D17 {
        return params.encode_counted(draft, buf);
    }
    if params.0.len() > MAX_KEY_VALUE_PAIRS {
        return Err(EncodeError::TooLarge("parameter count"));
    }
    put_vi(draft, params.0.len() as u64, buf)?;
    let mut sorted: Vec<&KeyValuePair> = params.0.iter().collect();
    sorted.sort_by_key(|p| p.key);
    let mut prev = 0;
    for p in sorted {
        put_vi(draft, p.key - prev, buf)?;
        prev = p.key;
        let form = form17(p.key, draft).ok_or(EncodeError::Invalid("unknown draft-17 message parameter"))?;
        match (form, &p.value) {
            (Form17::U8, Value::Int(v)) => {
                let v = u8::try_from(*v).map_err(|_| EncodeError::Invalid("uint8 parameter over 255"))?;
                buf.put_u8(v);
            }
            (Form17::VarInt, Value::Int(v)) => put_vi(draft, *v, buf)?,
            (Form17::Location, Value::Bytes(b)) => {
                let mut c = b.clone();
                Location::decode(&mut c, draft).map_err(|_| EncodeError::Invalid("location parameter"))?;
                if c.has_remaining() {
                    return Err(EncodeError::Invalid("location parameter"));
                }
                buf.put_slice(b);
            }
            (Form17::Prefixed, Value::Bytes(b)) => {
                put_bytes(draft, b, MAX_KEY_VALUE_LEN, "parameter value", buf)?
            }
            (Form17::TypedFilter, Value::Bytes(b)) => {
                let mut c = b.clone();
                SubscriptionFilter::decode_value(&mut c, draft)
                    .map_err(|_| EncodeError::Invalid("location filter parameter"))?;
                if c.has_remaining() {
                    return Err(EncodeError::Invalid("location filter parameter"));
                }
                buf.put_slice(b);
            }
            (Form17::Namespace, Value::Bytes(b)) => {
                let mut c = b.clone();
                TrackNamespace::decode(&mut c, draft, NamespaceRole::Prefix)
                    .map_err(|_| EncodeError::Invalid("namespace parameter"))?;
                if c.has_remaining() {
                    return Err(EncodeError::Invalid("namespace parameter"));
                }
                buf.put_slice(b);
            }
            _ => {
                return Err(EncodeError::Invalid(
                    "parameter value kind does not match its type",
                ));
            }
        }
    }
    Ok(())
}

/// Reads a parameter count and the parameters in `draft`'s form.
pub fn decode_parameters<B: Buf>(buf: &mut B, draft: Draft) -> Result<Parameters, DecodeError> {
    if draft < Draft::D17 {
        return KeyValuePairs::decode_counted(buf, draft);
    }
    let count = get_len(buf, draft, MAX_KEY_VALUE_PAIRS, "parameter count")?;
    let mut out = Vec::with_capacity(count.min(buf.remaining() / 2));
    let mut prev = 0u64;
    for _ in 0..count {
        let key = prev
            .checked_add(get_vi(buf, draft)?)
            .ok_or(DecodeError::Invalid("parameter type delta overflows"))?;
        prev = key;
        let value = match form17(key, draft)
            .ok_or(DecodeError::Invalid("unknown draft-17 message parameter"))?
        {
            Form17::U8 => Value::Int(get_u8(buf)? as u64),
            Form17::VarInt => Value::Int(get_vi(buf, draft)?),
            Form17::Location => {
                // Capture the two varints' bytes as they are on the wire.
                let mut raw = BytesMut::new();
                let loc = match PREFIXED_LOCATIONS.with(|p| p.get()) {
                    true => {
                        let mut value = get_bytes(buf, draft, MAX_KEY_VALUE_LEN, "parameter value")?;
                        let loc = Location::decode(&mut value, draft)?;
                        if value.has_remaining() {
                            return Err(DecodeError::Invalid("location parameter longer than a location"));
                        }
                        loc
                    }
                    false => Location::decode(buf, draft)?,
                };
                loc.encode(draft, &mut raw)
                    .map_err(|_| DecodeError::Invalid("location"))?;
                Value::Bytes(raw.freeze())
            }
            Form17::Prefixed => Value::Bytes(get_bytes(buf, draft, MAX_KEY_VALUE_LEN, "parameter value")?),
            Form17::TypedFilter => {
                let mut raw = BytesMut::new();
                SubscriptionFilter::decode_value(buf, draft)?
                    .encode_value(draft, &mut raw)
                    .map_err(|_| DecodeError::Invalid("location filter"))?;
                Value::Bytes(raw.freeze())
            }
            Form17::Namespace => {
                // Kept as its wire bytes, like a Location.
                let mut raw = BytesMut::new();
                TrackNamespace::decode(buf, draft, NamespaceRole::Prefix)?
                    .encode(draft, NamespaceRole::Prefix, &mut raw)
                    .map_err(|_| DecodeError::Invalid("namespace"))?;
                Value::Bytes(raw.freeze())
            }
        };
        out.push(KeyValuePair { key, value });
    }
    Ok(KeyValuePairs(out))
}

/// Reads a Location-valued parameter (LARGEST_OBJECT) for `draft`.
pub fn location(params: &Parameters, key: u64, draft: Draft) -> Result<Option<Location>, DecodeError> {
    let Some(b) = params.get_bytes(key) else {
        return Ok(None);
    };
    let mut c = b.clone();
    let loc = Location::decode(&mut c, draft).map_err(|_| DecodeError::Invalid("location parameter"))?;
    if c.has_remaining() {
        return Err(DecodeError::Invalid("location parameter longer than a location"));
    }
    Ok(Some(loc))
}

/// Sets a Location-valued parameter for `draft`.
pub fn set_location(
    params: &mut Parameters,
    key: u64,
    loc: Location,
    draft: Draft,
) -> Result<(), EncodeError> {
    let mut raw = BytesMut::new();
    loc.encode(draft, &mut raw)?;
    params.set_bytes(key, raw.freeze());
    Ok(())
}

/// The first Track Property of `properties` in the mandatory range
/// (0x4000-0x7FFF, draft-18 "Mandatory Track Properties"): we know none, so
/// any one there is unknown and the track must be refused. `None` before
/// draft-18, where the range means nothing.
pub fn unknown_mandatory_property(properties: &crate::KeyValuePairs, draft: Draft) -> Option<u64> {
    if !draft.mandatory_properties() {
        return None;
    }
    properties
        .0
        .iter()
        .map(|pair| pair.key)
        .find(|key| (0x4000..=0x7FFF).contains(key))
}

/// Reads the SUBSCRIPTION_FILTER / LOCATION_FILTER parameter for `draft`.
pub fn filter(params: &Parameters, draft: Draft) -> Result<Option<SubscriptionFilter>, DecodeError> {
    let Some(b) = params.get_bytes(MessageParameter::SubscriptionFilter.code()) else {
        return Ok(None);
    };
    let mut c: Bytes = b.clone();
    let f = SubscriptionFilter::decode_value(&mut c, draft)
        .map_err(|_| DecodeError::Invalid("filter parameter"))?;
    if c.has_remaining() {
        return Err(DecodeError::Invalid("filter parameter longer than its filter"));
    }
    Ok(Some(f))
}

/// Sets the SUBSCRIPTION_FILTER / LOCATION_FILTER parameter for `draft`.
pub fn set_filter(params: &mut Parameters, f: SubscriptionFilter, draft: Draft) -> Result<(), EncodeError> {
    let mut raw = BytesMut::new();
    f.encode_value(draft, &mut raw)?;
    params.set_bytes(MessageParameter::SubscriptionFilter.code(), raw.freeze());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parameters valid in every draft: only draft-17-known types with fitting values.
    pub fn any_params() -> impl Strategy<Value = Parameters> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just(MessageParameter::DeliveryTimeout.code()),
                    Just(MessageParameter::AuthorizationToken.code()),
                    Just(MessageParameter::Expires.code()),
                    Just(MessageParameter::Forward.code()),
                    Just(MessageParameter::SubscriberPriority.code()),
                    Just(MessageParameter::GroupOrder.code()),
                ],
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..4),
            )
                .prop_map(|(key, v, bytes)| crate::kvp::tests::pair(key, v.into(), bytes)),
            0..4,
        )
        .prop_map(KeyValuePairs)
    }

    #[test]
    fn draft17_typed_parameters() {
        let mut p = Parameters::new();
        p.set_int(MessageParameter::SubscriberPriority.code(), 200);
        p.set_int(MessageParameter::DeliveryTimeout.code(), 1000);
        set_location(
            &mut p,
            MessageParameter::LargestObject.code(),
            Location::new(3, 130),
            Draft::D17,
        )
        .unwrap();
        let mut out = Vec::new();
        encode_parameters(&p, Draft::D17, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x03,             // three parameters
            0x02, 0x83, 0xe8, // type 0x02 DELIVERY_TIMEOUT, varint 1000 (vi64 two bytes: 0x8000 | 1000)
            0x07, 0x03, 0x80, 0x82, // delta 7: type 0x09 LARGEST_OBJECT, Location {3, 130}
            0x17, 0xc8,       // delta 0x17: type 0x20 SUBSCRIBER_PRIORITY, uint8 200
        ]);
        let back = decode_parameters(&mut &out[..], Draft::D17).unwrap();
        assert_eq!(
            location(&back, MessageParameter::LargestObject.code(), Draft::D17),
            Ok(Some(Location::new(3, 130)))
        );
        assert_eq!(
            back.get_int(MessageParameter::SubscriberPriority.code()),
            Some(200)
        );
        // Unknown parameter type in draft-17: a protocol violation.
        assert!(matches!(
            decode_parameters(&mut &[0x01, 0x06, 0x00][..], Draft::D17),
            Err(DecodeError::Invalid(_))
        ));
        let mut bad = Parameters::new();
        bad.set_int(MessageParameter::Forward.code(), 256);
        assert!(encode_parameters(&bad, Draft::D17, &mut Vec::new()).is_err());
        // The same parameter in draft-15 is an even key-value pair.
        bad.set_int(MessageParameter::Forward.code(), 1);
        let mut out = Vec::new();
        encode_parameters(&bad, Draft::D15, &mut out).unwrap();
        assert_eq!(out, [0x01, 0x10, 0x01]); // one pair: type 0x10, varint 1
    }

    #[test]
    fn draft18_parameters() {
        let mut p = Parameters::new();
        p.set_int(MessageParameter::DeliveryTimeout.code(), 5000);
        p.set_int(MessageParameter::SubgroupDeliveryTimeout.code(), 9000);
        p.set_int(MessageParameter::FillTimeout.code(), 32);
        let mut out = Vec::new();
        encode_parameters(&p, Draft::D18, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x03,
            0x02, 0x93, 0x88, // OBJECT_DELIVERY_TIMEOUT 5000
            0x04, 0xa3, 0x28, // delta 4: SUBGROUP_DELIVERY_TIMEOUT 9000
            0x04, 0x20,       // delta 4: FILL_TIMEOUT 32
        ]);
        assert_eq!(decode_parameters(&mut &out[..], Draft::D18), Ok(p.clone()));
        // Neither exists in draft-17.
        assert!(encode_parameters(&p, Draft::D17, &mut Vec::new()).is_err());
        // TRACK_NAMESPACE_PREFIX ("ns"): the namespace with no length of its own.
        let bytes = [0x01, 0x34, 0x01, 0x02, b'n', b's'];
        let back = decode_parameters(&mut &bytes[..], Draft::D18).unwrap();
        assert_eq!(
            back.get_bytes(MessageParameter::TrackNamespacePrefix.code())
                .map(|b| &b[..]),
            Some(&bytes[2..])
        );
        let mut out = Vec::new();
        encode_parameters(&back, Draft::D18, &mut out).unwrap();
        assert_eq!(out, bytes);
        assert!(decode_parameters(&mut &bytes[..], Draft::D17).is_err());
    }

    #[test]
    fn filter_parameter() {
        for d in [Draft::D15, Draft::D16, Draft::D17, Draft::D18] {
            let mut p = Parameters::new();
            let f = SubscriptionFilter::AbsoluteStart(Location::new(1, 2));
            set_filter(&mut p, f, d).unwrap();
            let mut out = Vec::new();
            encode_parameters(&p, d, &mut out).unwrap();
            // one parameter; type 0x21 (odd, length-prefixed): length 3, filter type 3, {1, 2}
            assert_eq!(out, [0x01, 0x21, 0x03, 0x03, 0x01, 0x02]);
            let back = decode_parameters(&mut &out[..], d).unwrap();
            assert_eq!(filter(&back, d), Ok(Some(f)));
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for d in Draft::ALL {
                if let Ok(p) = decode_parameters(&mut &bytes[..], d) {
                    let _ = location(&p, MessageParameter::LargestObject.code(), d);
                    let _ = filter(&p, d);
                }
            }
        }
    }
}

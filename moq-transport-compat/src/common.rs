//! Structures shared by many messages: [`Location`], reason phrases,
//! subscription filters, group order.

use bytes::{Buf, BufMut};
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;
use crate::varint::{get_string, get_u8, get_vi, put_string, put_vi};

/// The longest reason phrase, in bytes (section 1.4 "Reason Phrase").
pub const MAX_REASON_LEN: usize = 1024;

/// A position in a track: `{Group, Object}`, ordered group first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// The group ID.
    pub group: u64,
    /// The object ID within the group.
    pub object: u64,
}

impl Location {
    /// A location.
    pub const fn new(group: u64, object: u64) -> Self {
        Location { group, object }
    }

    /// Writes the two varints.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        put_vi(draft, self.group, buf)?;
        put_vi(draft, self.object, buf)
    }

    /// Reads the two varints.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        Ok(Location {
            group: get_vi(buf, draft)?,
            object: get_vi(buf, draft)?,
        })
    }
}

/// `reason`, cut (at a character boundary) to fit [`MAX_REASON_LEN`]: a
/// reason we send must never be what makes its message unencodable.
pub fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

/// Writes a reason phrase: a length (at most [`MAX_REASON_LEN`]) and UTF-8.
pub fn put_reason<B: BufMut>(draft: Draft, reason: &str, buf: &mut B) -> Result<(), EncodeError> {
    put_string(draft, reason, MAX_REASON_LEN, "reason phrase", buf)
}

/// Reads a reason phrase of at most [`MAX_REASON_LEN`] bytes.
pub fn get_reason<B: Buf>(buf: &mut B, draft: Draft) -> Result<String, DecodeError> {
    get_string(buf, draft, MAX_REASON_LEN, "reason phrase")
}

/// Group order: 0 = the publisher's (requests only), 1 ascending, 2 descending.
pub mod group_order {
    /// Use the original publisher's order (valid in requests only).
    pub const PUBLISHER: u8 = 0;
    /// Ascending group IDs.
    pub const ASCENDING: u8 = 1;
    /// Descending group IDs.
    pub const DESCENDING: u8 = 2;
}

/// Reads a Group Order byte; `allow_zero` for requests, where 0 means "the
/// publisher's"; responses must say 1 or 2.
pub fn get_group_order<B: Buf>(buf: &mut B, allow_zero: bool) -> Result<u8, DecodeError> {
    match get_u8(buf)? {
        0 if allow_zero => Ok(0),
        v @ 1..=2 => Ok(v),
        _ => Err(DecodeError::Invalid("group order")),
    }
}

/// Checks a Group Order before writing it.
pub fn check_group_order(v: u8, allow_zero: bool) -> Result<u8, EncodeError> {
    match v {
        0 if allow_zero => Ok(0),
        1..=2 => Ok(v),
        _ => Err(EncodeError::Invalid("group order")),
    }
}

/// Which objects a subscription passes (draft-14 section 9.7; a SUBSCRIPTION_FILTER
/// parameter value from draft-15, LOCATION_FILTER from draft-19), and from
/// draft-20 the range of a FETCH.
///
/// The parameter value has three forms ([`Self::encode_value`]): up to
/// draft-19 a Filter Type then its fields; in drafts 20 and 21 the fields
/// alone, their count saying what they mean (the parameter's length counts
/// them); from draft-22 a Location Filter Type then its fields, with no
/// length of its own. The variants marked 20+ cannot be said earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionFilter {
    /// 0x1: from the start of the group after the largest object.
    NextGroupStart,
    /// 0x2: from the object after the largest object.
    #[default]
    LargestObject,
    /// 0x3: from `start`, open ended.
    AbsoluteStart(Location),
    /// 0x4: from `start` to the end of group `end_group` inclusive. Draft-17
    /// writes `end_group - start.group` (End Group Delta); earlier drafts the
    /// group itself.
    AbsoluteRange {
        /// The first location.
        start: Location,
        /// The last group, inclusive.
        end_group: u64,
    },
    /// 20+: from the start of the group `n - 1` groups before the largest
    /// object's (`n` at least 1; 0 is [`Self::NextGroupStart`]), open ended.
    RelativeStart(u64),
    /// 20+: from `start` to `end`, both inclusive.
    AbsoluteEnd {
        /// The first location.
        start: Location,
        /// The last location, inclusive.
        end: Location,
    },
    /// 20+: no filter: a subscription passes everything, a FETCH covers the
    /// whole track.
    Unfiltered,
}

/// Draft-22's Location Filter Types.
mod location_filter_type {
    pub const NONE: u64 = 0x0;
    pub const RELATIVE_START: u64 = 0x1;
    pub const ABSOLUTE_START: u64 = 0x2;
    pub const ABSOLUTE_START_GROUP_END: u64 = 0x3;
    pub const ABSOLUTE_RANGE: u64 = 0x4;
    pub const NEXT_OBJECT: u64 = 0x5;
}

impl SubscriptionFilter {
    /// The Filter Type code (drafts 14 to 19); `None` for the 20+ forms.
    pub const fn code(&self) -> Option<u64> {
        match self {
            SubscriptionFilter::NextGroupStart => Some(0x1),
            SubscriptionFilter::LargestObject => Some(0x2),
            SubscriptionFilter::AbsoluteStart(_) => Some(0x3),
            SubscriptionFilter::AbsoluteRange { .. } => Some(0x4),
            _ => None,
        }
    }

    /// What a SUBSCRIBE without a filter asks for: the largest object on
    /// (drafts 14 to 19, where the filter was always there in 14), or
    /// everything (draft-20 section "Location Filters").
    pub const fn absent(draft: Draft) -> Self {
        match draft.filtered_fetch() {
            true => SubscriptionFilter::Unfiltered,
            false => SubscriptionFilter::LargestObject,
        }
    }

    /// Writes the parameter value (or draft-14 field) of `draft`; see the
    /// type's docs.
    pub fn encode_value<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        use SubscriptionFilter as F;
        use location_filter_type as T;
        if !draft.filtered_fetch() {
            return self.encode(draft, buf);
        }
        let typed = draft.typed_location_filter();
        let (ty, fields): (u64, &[u64]) = match *self {
            F::Unfiltered => (T::NONE, &[]),
            // Draft-20 has no way to say {0, 0} open ended but saying nothing,
            // which it defines as the same.
            F::AbsoluteStart(Location { group: 0, object: 0 }) if !typed => (T::NONE, &[]),
            F::NextGroupStart => (T::RELATIVE_START, &[0]),
            F::RelativeStart(n) => (T::RELATIVE_START, &[n]),
            F::LargestObject => match typed {
                true => (T::NEXT_OBJECT, &[]),
                false => (T::ABSOLUTE_START, &[0, 0]),
            },
            F::AbsoluteStart(s) => {
                return put_fields(
                    draft,
                    typed.then_some(T::ABSOLUTE_START),
                    &[s.group, s.object],
                    buf,
                );
            }
            F::AbsoluteRange { start, end_group } => {
                let delta = end_group
                    .checked_sub(start.group)
                    .ok_or(EncodeError::Invalid("end group before start group"))?;
                return put_fields(
                    draft,
                    typed.then_some(T::ABSOLUTE_START_GROUP_END),
                    &[start.group, start.object, delta],
                    buf,
                );
            }
            F::AbsoluteEnd { start, end } => {
                let delta = end
                    .group
                    .checked_sub(start.group)
                    .ok_or(EncodeError::Invalid("end group before start group"))?;
                return put_fields(
                    draft,
                    typed.then_some(T::ABSOLUTE_RANGE),
                    &[start.group, start.object, delta, end.object],
                    buf,
                );
            }
        };
        put_fields(draft, typed.then_some(ty), fields, buf)
    }

    /// Reads a whole parameter value (or draft-14 field) of `draft`.
    pub fn decode_value<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        use SubscriptionFilter as F;
        use location_filter_type as T;
        if !draft.filtered_fetch() {
            return Self::decode(buf, draft);
        }
        let ty = match draft.typed_location_filter() {
            true => Some(get_vi(buf, draft)?),
            false => None,
        };
        let count = match ty {
            Some(T::NONE | T::NEXT_OBJECT) => 0,
            Some(T::RELATIVE_START) => 1,
            Some(T::ABSOLUTE_START) => 2,
            Some(T::ABSOLUTE_START_GROUP_END) => 3,
            Some(T::ABSOLUTE_RANGE) => 4,
            Some(_) => return Err(DecodeError::Invalid("location filter type")),
            // Draft-20: as many fields as the value holds, at most four.
            None => 4,
        };
        let mut f = [0u64; 4];
        let mut n = 0;
        while n < count && (ty.is_some() || buf.has_remaining()) {
            f[n] = get_vi(buf, draft)?;
            n += 1;
        }
        if ty.is_none() && buf.has_remaining() {
            return Err(DecodeError::Invalid("location filter with more than four fields"));
        }
        let end_group = |start: u64, delta: u64| {
            start
                .checked_add(delta)
                .ok_or(DecodeError::Invalid("end group delta overflows"))
        };
        Ok(match (ty, n) {
            (Some(T::NEXT_OBJECT), _) => F::LargestObject,
            (_, 0) => F::Unfiltered,
            (_, 1) if f[0] == 0 => F::NextGroupStart,
            (_, 1) => F::RelativeStart(f[0]),
            (None, 2) if f[..2] == [0, 0] => F::LargestObject,
            (_, 2) => F::AbsoluteStart(Location::new(f[0], f[1])),
            (_, 3) => F::AbsoluteRange {
                start: Location::new(f[0], f[1]),
                end_group: end_group(f[0], f[2])?,
            },
            _ => F::AbsoluteEnd {
                start: Location::new(f[0], f[1]),
                end: Location::new(end_group(f[0], f[2])?, f[3]),
            },
        })
    }

    /// Writes the filter type and its fields (drafts 14 to 19).
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        let code = self
            .code()
            .ok_or(EncodeError::Version("location filter form of draft-20 and later"))?;
        put_vi(draft, code, buf)?;
        match self {
            SubscriptionFilter::NextGroupStart | SubscriptionFilter::LargestObject => Ok(()),
            SubscriptionFilter::AbsoluteStart(start) => start.encode(draft, buf),
            SubscriptionFilter::AbsoluteRange { start, end_group } => {
                start.encode(draft, buf)?;
                let end = if draft >= Draft::D17 {
                    end_group
                        .checked_sub(start.group)
                        .ok_or(EncodeError::Invalid("end group before start group"))?
                } else {
                    *end_group
                };
                put_vi(draft, end, buf)
            }
            _ => Err(EncodeError::Version("location filter form of draft-20 and later")),
        }
    }

    /// Reads a filter; an unknown type is invalid (a PROTOCOL_VIOLATION).
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        Ok(match get_vi(buf, draft)? {
            0x1 => SubscriptionFilter::NextGroupStart,
            0x2 => SubscriptionFilter::LargestObject,
            0x3 => SubscriptionFilter::AbsoluteStart(Location::decode(buf, draft)?),
            0x4 => {
                let start = Location::decode(buf, draft)?;
                let end = get_vi(buf, draft)?;
                let end_group = if draft >= Draft::D17 {
                    start
                        .group
                        .checked_add(end)
                        .ok_or(DecodeError::Invalid("end group delta overflows"))?
                } else {
                    end
                };
                SubscriptionFilter::AbsoluteRange { start, end_group }
            }
            _ => return Err(DecodeError::Invalid("subscription filter type")),
        })
    }
}

/// Writes a draft-22 Location Filter Type (when given) and the fields.
fn put_fields<B: BufMut>(
    draft: Draft,
    ty: Option<u64>,
    fields: &[u64],
    buf: &mut B,
) -> Result<(), EncodeError> {
    if let Some(ty) = ty {
        put_vi(draft, ty, buf)?;
    }
    fields.iter().try_for_each(|&f| put_vi(draft, f, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(f: SubscriptionFilter, d: Draft) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode_value(d, &mut out).unwrap();
        assert_eq!(
            SubscriptionFilter::decode_value(&mut &out[..], d),
            Ok(match f {
                // Draft-20 says {0, 0} open ended as no filter.
                SubscriptionFilter::AbsoluteStart(Location { group: 0, object: 0 })
                    if !d.typed_location_filter() =>
                {
                    SubscriptionFilter::Unfiltered
                }
                f => f,
            }),
            "{f:?} in {d}"
        );
        out
    }

    // Draft-20 section "Location Filters" (the count of fields says what
    // they are) and draft-22 (a type first); the vectors are the reference
    // implementation's too.
    #[test]
    fn location_filters_20_and_22() {
        use SubscriptionFilter as F;
        let cases: [(F, &[u8], &[u8]); 8] = [
            (F::Unfiltered, &[], &[0x00]),
            (F::NextGroupStart, &[0x00], &[0x01, 0x00]),
            (F::RelativeStart(1), &[0x01], &[0x01, 0x01]),
            (F::LargestObject, &[0x00, 0x00], &[0x05]),
            (
                F::AbsoluteStart(Location::new(7, 3)),
                &[0x07, 0x03],
                &[0x02, 0x07, 0x03],
            ),
            (F::AbsoluteStart(Location::new(0, 0)), &[], &[0x02, 0x00, 0x00]),
            (
                F::AbsoluteRange {
                    start: Location::new(7, 3),
                    end_group: 9,
                },
                &[0x07, 0x03, 0x02],
                &[0x03, 0x07, 0x03, 0x02],
            ),
            (
                F::AbsoluteEnd {
                    start: Location::new(7, 3),
                    end: Location::new(9, 4),
                },
                &[0x07, 0x03, 0x02, 0x04],
                &[0x04, 0x07, 0x03, 0x02, 0x04],
            ),
        ];
        for (f, d20, d22) in cases {
            assert_eq!(value(f, Draft::D20), d20, "{f:?}");
            assert_eq!(value(f, Draft::D21), d20, "{f:?}");
            assert_eq!(value(f, Draft::D22), d22, "{f:?}");
        }
        // Draft-19 and earlier keep the typed, draft-15 form.
        assert_eq!(value(F::LargestObject, Draft::D19), [0x02]);
        assert!(
            F::RelativeStart(2)
                .encode_value(Draft::D19, &mut Vec::new())
                .is_err()
        );
        // Five fields, an unknown type, a wrapping end group: refused.
        let bad20: &[u8] = &[0x01, 0x02, 0x03, 0x04, 0x05];
        assert!(SubscriptionFilter::decode_value(&mut &bad20[..], Draft::D20).is_err());
        assert!(SubscriptionFilter::decode_value(&mut &[0x06][..], Draft::D22).is_err());
        let wrap = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01];
        assert!(SubscriptionFilter::decode_value(&mut &wrap[..], Draft::D20).is_err());
        // Draft-22 reads exactly its fields: what follows is not its own.
        let mut c: &[u8] = &[0x05, 0x01, 0x02];
        assert_eq!(
            SubscriptionFilter::decode_value(&mut c, Draft::D22),
            Ok(F::LargestObject)
        );
        assert_eq!(c, [0x01, 0x02]);
    }

    #[test]
    fn reasons_are_cut_to_fit_at_a_character_boundary() {
        assert_eq!(truncate_reason("short"), "short");
        // 1023 ASCII bytes then a 2-byte character: it would end at 1025.
        let long = format!("{}é", "a".repeat(1023));
        let cut = truncate_reason(&long);
        assert_eq!(cut.len(), 1023);
        put_reason(Draft::D16, &cut, &mut Vec::new()).unwrap();
        assert!(put_reason(Draft::D16, &long, &mut Vec::new()).is_err());
    }

    #[test]
    fn filters() {
        let f = SubscriptionFilter::AbsoluteRange {
            start: Location::new(5, 1),
            end_group: 7,
        };
        let mut out = Vec::new();
        f.encode(Draft::D14, &mut out).unwrap();
        assert_eq!(out, [0x04, 0x05, 0x01, 0x07]); // type 4, start {5, 1}, end group 7
        let mut out = Vec::new();
        f.encode(Draft::D17, &mut out).unwrap();
        assert_eq!(out, [0x04, 0x05, 0x01, 0x02]); // draft-17: End Group Delta 7 - 5 = 2
        assert_eq!(SubscriptionFilter::decode(&mut &out[..], Draft::D17), Ok(f));
        let bad = SubscriptionFilter::AbsoluteRange {
            start: Location::new(5, 1),
            end_group: 4,
        };
        assert!(bad.encode(Draft::D17, &mut Vec::new()).is_err());
        assert!(matches!(
            SubscriptionFilter::decode(&mut &[0x05][..], Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(
            SubscriptionFilter::decode(&mut &[0x03, 0x01][..], Draft::D14),
            Err(DecodeError::Short)
        );
    }
}

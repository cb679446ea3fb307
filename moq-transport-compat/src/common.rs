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
/// parameter value from draft-15).
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
}

impl SubscriptionFilter {
    /// The Filter Type code.
    pub const fn code(&self) -> u64 {
        match self {
            SubscriptionFilter::NextGroupStart => 0x1,
            SubscriptionFilter::LargestObject => 0x2,
            SubscriptionFilter::AbsoluteStart(_) => 0x3,
            SubscriptionFilter::AbsoluteRange { .. } => 0x4,
        }
    }

    /// Writes the filter type and its fields.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        put_vi(draft, self.code(), buf)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Object status and the payload-or-status field shared by subgroup and
//! fetch objects.
//!
//! Drafts 14 and 15 define Normal (0x0), Does Not Exist (0x1), End of Group
//! (0x3) and End of Track (0x4); drafts 16 and 17 drop Does Not Exist (a
//! FETCH signals gaps with End of Range instead, and fetch objects carry no
//! status at all). Extension headers are only allowed on Normal objects
//! (draft-14: on anything but Does Not Exist).

use bytes::{Buf, BufMut, Bytes};
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;
use crate::kvp::KeyValuePairs;
use crate::varint::{get_len, get_vi, put_vi, take};

/// The largest object payload accepted, in bytes.
pub const MAX_OBJECT_PAYLOAD: usize = 16 * 1024 * 1024;

/// Why an object has no payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObjectStatus {
    /// 0x0: a normal (here: empty) object.
    #[default]
    Normal,
    /// 0x1: the object does not exist (drafts 14 and 15 only).
    DoesNotExist,
    /// 0x3: end of group.
    EndOfGroup,
    /// 0x4: end of track.
    EndOfTrack,
}

impl ObjectStatus {
    /// The wire code.
    pub const fn code(self) -> u64 {
        match self {
            ObjectStatus::Normal => 0x0,
            ObjectStatus::DoesNotExist => 0x1,
            ObjectStatus::EndOfGroup => 0x3,
            ObjectStatus::EndOfTrack => 0x4,
        }
    }

    /// The status for a code in `draft`, or `None` for an undefined one.
    pub fn from_code(code: u64, draft: Draft) -> Option<Self> {
        match code {
            0x0 => Some(ObjectStatus::Normal),
            0x1 if draft <= Draft::D15 => Some(ObjectStatus::DoesNotExist),
            0x3 => Some(ObjectStatus::EndOfGroup),
            0x4 => Some(ObjectStatus::EndOfTrack),
            _ => None,
        }
    }

    /// Writes the status code, refusing one the draft lacks.
    pub fn encode<B: BufMut>(self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        if ObjectStatus::from_code(self.code(), draft).is_none() {
            return Err(EncodeError::Version("object status not in this draft"));
        }
        put_vi(draft, self.code(), buf)
    }

    /// Reads a status code.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        ObjectStatus::from_code(get_vi(buf, draft)?, draft).ok_or(DecodeError::Invalid("object status"))
    }

    /// Whether an object with this status may carry extension headers.
    pub fn allows_extensions(self, draft: Draft) -> bool {
        match draft {
            Draft::D14 => self != ObjectStatus::DoesNotExist,
            _ => self == ObjectStatus::Normal,
        }
    }
}

/// What an object carries: a payload, or (when empty) a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectContent {
    /// A payload; an empty one is written as length 0 with status Normal.
    Payload(Bytes),
    /// No payload, and this status.
    Status(ObjectStatus),
}

impl Default for ObjectContent {
    fn default() -> Self {
        ObjectContent::Payload(Bytes::new())
    }
}

impl ObjectContent {
    /// The status implied: Normal for a payload.
    pub fn status(&self) -> ObjectStatus {
        match self {
            ObjectContent::Payload(_) => ObjectStatus::Normal,
            ObjectContent::Status(s) => *s,
        }
    }

    /// Writes `Object Payload Length`, then the status if the length is 0,
    /// then the payload (`with_status` false: fetch objects from draft-16,
    /// which have no status field).
    pub fn encode<B: BufMut>(&self, draft: Draft, with_status: bool, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            ObjectContent::Payload(p) => {
                if p.len() > MAX_OBJECT_PAYLOAD {
                    return Err(EncodeError::TooLarge("object payload"));
                }
                put_vi(draft, p.len() as u64, buf)?;
                if p.is_empty() && with_status {
                    ObjectStatus::Normal.encode(draft, buf)?;
                }
                buf.put_slice(p);
            }
            ObjectContent::Status(s) => {
                if !with_status {
                    return Err(EncodeError::Version("no object status here in this draft"));
                }
                put_vi(draft, 0, buf)?;
                s.encode(draft, buf)?;
            }
        }
        Ok(())
    }

    /// Reads what [`ObjectContent::encode`] writes. A status of Normal reads
    /// as an empty payload.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft, with_status: bool) -> Result<Self, DecodeError> {
        let len = get_len(buf, draft, MAX_OBJECT_PAYLOAD, "object payload")?;
        if len == 0 && with_status {
            return Ok(match ObjectStatus::decode(buf, draft)? {
                ObjectStatus::Normal => ObjectContent::Payload(Bytes::new()),
                s => ObjectContent::Status(s),
            });
        }
        Ok(ObjectContent::Payload(take(buf, len)?))
    }
}

/// Checks extension headers against the object's status.
pub(crate) fn check_extensions(ext: &KeyValuePairs, status: ObjectStatus, draft: Draft) -> bool {
    ext.is_empty() || status.allows_extensions(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            ObjectStatus::from_code(1, Draft::D15),
            Some(ObjectStatus::DoesNotExist)
        );
        assert_eq!(ObjectStatus::from_code(1, Draft::D16), None);
        assert_eq!(ObjectStatus::from_code(2, Draft::D14), None);
        assert!(
            ObjectStatus::DoesNotExist
                .encode(Draft::D16, &mut Vec::new())
                .is_err()
        );
        assert!(ObjectStatus::EndOfGroup.allows_extensions(Draft::D14));
        assert!(!ObjectStatus::EndOfGroup.allows_extensions(Draft::D15));
        // A payload length over the limit is refused before buffering.
        let mut c: &[u8] = &[0xbf, 0xff, 0xff, 0xff];
        assert!(matches!(
            ObjectContent::decode(&mut c, Draft::D14, true),
            Err(DecodeError::TooLarge(_))
        ));
    }
}

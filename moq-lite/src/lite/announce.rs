//! The Announce stream: ANNOUNCE_INTEREST (ANNOUNCE_PLEASE before -04),
//! ANNOUNCE, and moq-lite-01/02's ANNOUNCE_INIT.
//!
//! How each version differs:
//!
//! * The request is ANNOUNCE_PLEASE `{ prefix }` up to -03 and
//!   ANNOUNCE_INTEREST `{ prefix, exclude hop }` in -04; one struct,
//!   [`AnnounceInterest`], covers both.
//! * ANNOUNCE carries nothing after the suffix in -01/02, a hop count in -03,
//!   and a count followed by that many hop IDs in -04. [`Announce::hops`] is a
//!   list in every version: a -03 count decodes to that many
//!   [`HopId::UNKNOWN`] entries (lite-04 section "ANNOUNCE" defines 0 as an
//!   unknown hop, for exactly this bridging case), and -01/02 decode to none.
//! * ANNOUNCE_INIT lists the active suffixes at once; it exists only in
//!   -01/02.
//! * -05 answers the request with ANNOUNCE_OK (the responder's hop ID and
//!   the size of the initial set) before any ANNOUNCE; the hop lists leave
//!   the responder out, and status 2 (restart) reads as active.
//!
//! The IDs we give ourselves are below 2^53, because a widely used
//! JavaScript peer reads them as doubles (`shared/specs/README.md`). The wire
//! allows any varint (lite-04 "ANNOUNCE": `Hop ID (i)`), and other
//! implementations do pick 62-bit IDs, so received IDs are kept as they are:
//! refusing them would close the session, and rewriting them would break
//! their owners' loop detection when we forward the list.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError, LengthPrefix, decode_framed, encode_framed};
use crate::model::Path;

/// The most hop IDs an ANNOUNCE may carry; longer relay chains are refused.
pub const MAX_HOPS: usize = 32;

/// One relay in an announcement's path.
///
/// 0 ([`HopId::UNKNOWN`]) stands for a hop whose ID is not known, such as one
/// bridged from an older version. A relay's own ID should be non-zero and,
/// for JavaScript peers, below 2^53 ([`HopId::new`] checks that); IDs
/// received from peers may be any varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HopId(u64);

impl HopId {
    /// A hop whose ID is not known.
    pub const UNKNOWN: HopId = HopId(0);

    /// The largest valid ID, 2^53 - 1 (the largest integer a double holds exactly).
    pub const MAX: HopId = HopId((1 << 53) - 1);

    /// An ID for this node, or `None` when `id` is 2^53 or more.
    pub const fn new(id: u64) -> Option<HopId> {
        if id <= Self::MAX.0 { Some(HopId(id)) } else { None }
    }

    /// An ID as received from a peer: any varint, kept as it is (see the
    /// module docs).
    pub const fn from_wire(id: u64) -> HopId {
        HopId(id)
    }

    /// The ID.
    pub const fn into_inner(self) -> u64 {
        self.0
    }

    /// Whether this is [`HopId::UNKNOWN`].
    pub const fn is_unknown(self) -> bool {
        self.0 == 0
    }
}

impl Encode for HopId {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.0.encode(buf)
    }
}

impl Decode for HopId {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(HopId(u64::decode(buf)?))
    }
}

/// ANNOUNCE_INTEREST (-04) / ANNOUNCE_PLEASE (-01 to -03): opens an Announce
/// stream, asking for every broadcast under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceInterest {
    /// Broadcasts whose path starts with this prefix.
    pub prefix: Path,
    /// -04 only: skip broadcasts whose hop list contains this ID (loop
    /// avoidance in relay clusters). Encoded as 0 when `None`; left out for
    /// older versions, where the filter cannot be expressed.
    pub exclude_hop: Option<HopId>,
}

/// The name of [`AnnounceInterest`] before moq-lite-04.
pub type AnnouncePlease = AnnounceInterest;

impl Message for AnnounceInterest {
    const NAME: &'static str = "ANNOUNCE_INTEREST";

    fn exists_in(_version: Version) -> bool {
        true
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.prefix.encode(buf)?;
        if version.has_exclude_hop() {
            match self.exclude_hop {
                None => 0u64.encode(buf)?,
                // 0 on the wire means "no filter", so it cannot name the unknown hop.
                Some(hop) if hop.is_unknown() => {
                    return Err(EncodeError::Invalid("cannot exclude the unknown hop ID 0"));
                }
                Some(hop) => hop.encode(buf)?,
            }
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let prefix = Path::decode(buf)?;
        let exclude_hop = if version.has_exclude_hop() {
            Some(HopId::decode(buf)?).filter(|hop| !hop.is_unknown())
        } else {
            None
        };
        Ok(AnnounceInterest { prefix, exclude_hop })
    }
}

/// Whether an announced broadcast became available or went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceStatus {
    /// 0: the broadcast is no longer available.
    Ended,
    /// 1: the broadcast is available.
    Active,
}

impl Encode for AnnounceStatus {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let v: u64 = match self {
            AnnounceStatus::Ended => 0,
            AnnounceStatus::Active => 1,
        };
        v.encode(buf)
    }
}

impl Decode for AnnounceStatus {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        match u64::decode(buf)? {
            0 => Ok(AnnounceStatus::Ended),
            1 => Ok(AnnounceStatus::Active),
            _ => Err(DecodeError::Invalid("announce status is not 0 or 1")),
        }
    }
}

/// ANNOUNCE: a broadcast under the requested prefix became active or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Active or ended.
    pub status: AnnounceStatus,
    /// The broadcast path relative to the requested prefix.
    pub suffix: Path,
    /// The relays between the origin and the sender, at most [`MAX_HOPS`].
    /// -04 sends the IDs, -03 only their number, -01/02 nothing.
    pub hops: Vec<HopId>,
}

impl Message for Announce {
    const NAME: &'static str = "ANNOUNCE";

    fn exists_in(version: Version) -> bool {
        // -06 announces with typed messages: [`AnnounceEvent`].
        !version.has_typed_announces()
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.status.encode(buf)?;
        self.suffix.encode(buf)?;
        if version.uses_setup() {
            return Ok(());
        }
        if self.hops.len() > MAX_HOPS {
            return Err(EncodeError::TooLarge("hop count"));
        }
        (self.hops.len() as u64).encode(buf)?;
        if version.has_hop_ids() {
            for hop in &self.hops {
                hop.encode(buf)?;
            }
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let status = match u64::decode(buf)? {
            0 => AnnounceStatus::Ended,
            1 => AnnounceStatus::Active,
            // lite-05 "ANNOUNCE": 2 is a restart, which the shipped code
            // never sends and reads as active (a second active for a live
            // path is the restart).
            2 if version.has_announce_ok() => AnnounceStatus::Active,
            _ => return Err(DecodeError::Invalid("unknown announce status")),
        };
        let suffix = Path::decode(buf)?;
        let mut hops = Vec::new();
        if !version.uses_setup() {
            let count = u64::decode(buf)?;
            if count > MAX_HOPS as u64 {
                return Err(DecodeError::TooLarge("hop count"));
            }
            // Bounded by MAX_HOPS just above.
            let count = count as usize;
            if version.has_hop_ids() {
                hops.reserve(count);
                for _ in 0..count {
                    hops.push(HopId::decode(buf)?);
                }
            } else {
                hops = vec![HopId::UNKNOWN; count];
            }
        }
        Ok(Announce { status, suffix, hops })
    }
}

/// A route's two costs, as ANNOUNCE_START and ANNOUNCE_RESTART carry them.
pub use crate::model::RouteCost;

/// The typed announcement messages of moq-lite-06, after ANNOUNCE_OK.
///
/// Each is `Type (i) | Length (i) | Body`. IDs are implicit: the n-th
/// ANNOUNCE_START on a stream (from 0) has ID n; END retires it, RESTART
/// changes its route. An unknown type is skipped by its length and takes no
/// ID (shipped notes, section 5; the 06 text's Epoch and Ended fields are
/// not on the shipped wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// 0x0 ANNOUNCE_START: a broadcast became active.
    Start {
        /// The broadcast path relative to the requested prefix.
        suffix: Path,
        /// The relays between the origin and the sender, at most [`MAX_HOPS`].
        hops: Vec<HopId>,
        /// The route's costs.
        cost: RouteCost,
    },
    /// 0x1 ANNOUNCE_END: the announcement with this ID ended.
    End {
        /// The announcement's implicit ID.
        id: u64,
    },
    /// 0x2 ANNOUNCE_RESTART: the announcement with this ID changed route.
    Restart {
        /// The announcement's implicit ID.
        id: u64,
        /// The new hop list.
        hops: Vec<HopId>,
        /// The new costs.
        cost: RouteCost,
    },
    /// A type this version does not know; its body was skipped.
    Unknown(u64),
}

fn encode_hops(hops: &[HopId], buf: &mut BytesMut) -> Result<(), EncodeError> {
    if hops.len() > MAX_HOPS {
        return Err(EncodeError::TooLarge("hop count"));
    }
    (hops.len() as u64).encode(buf)?;
    hops.iter().try_for_each(|hop| hop.encode(buf))
}

fn decode_hops(buf: &mut Bytes) -> Result<Vec<HopId>, DecodeError> {
    let count = u64::decode(buf)?;
    if count > MAX_HOPS as u64 {
        return Err(DecodeError::TooLarge("hop count"));
    }
    (0..count).map(|_| HopId::decode(buf)).collect()
}

impl AnnounceEvent {
    const START: u64 = 0x0;
    const END: u64 = 0x1;
    const RESTART: u64 = 0x2;

    /// Writes the message; only -06 has it.
    pub fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        if !version.has_typed_announces() {
            return Err(EncodeError::Version("ANNOUNCE_START"));
        }
        let ty = match self {
            AnnounceEvent::Start { .. } => Self::START,
            AnnounceEvent::End { .. } => Self::END,
            AnnounceEvent::Restart { .. } => Self::RESTART,
            AnnounceEvent::Unknown(_) => return Err(EncodeError::Invalid("unknown announce type")),
        };
        ty.encode(buf)?;
        encode_framed(buf, LengthPrefix::VarInt, |body| match self {
            AnnounceEvent::Start { suffix, hops, cost } => {
                suffix.encode(body)?;
                encode_hops(hops, body)?;
                cost.warm.encode(body)?;
                cost.cold.encode(body)
            }
            AnnounceEvent::End { id } => id.encode(body),
            AnnounceEvent::Restart { id, hops, cost } => {
                id.encode(body)?;
                encode_hops(hops, body)?;
                cost.warm.encode(body)?;
                cost.cold.encode(body)
            }
            AnnounceEvent::Unknown(_) => Ok(()),
        })
    }

    /// Reads the next message; an unknown type is skipped whole.
    pub fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        if !version.has_typed_announces() {
            return Err(DecodeError::Invalid("message not defined in this version"));
        }
        let ty = u64::decode(buf)?;
        decode_framed(buf, LengthPrefix::VarInt, |body| match ty {
            Self::START => Ok(AnnounceEvent::Start {
                suffix: Path::decode(body)?,
                hops: decode_hops(body)?,
                cost: RouteCost {
                    warm: u64::decode(body)?,
                    cold: u64::decode(body)?,
                },
            }),
            Self::END => Ok(AnnounceEvent::End {
                id: u64::decode(body)?,
            }),
            Self::RESTART => Ok(AnnounceEvent::Restart {
                id: u64::decode(body)?,
                hops: decode_hops(body)?,
                cost: RouteCost {
                    warm: u64::decode(body)?,
                    cold: u64::decode(body)?,
                },
            }),
            other => {
                body.advance(body.remaining());
                Ok(AnnounceEvent::Unknown(other))
            }
        })
    }
}

/// ANNOUNCE_OK (-05+): the publisher's first reply on an Announce stream.
///
/// It names the responder's hop ID, which the lists that follow leave out
/// (the receiver appends it to each), and how many announcements of active
/// broadcasts follow at once (the initial set); later ones are live changes
/// (`lite-06-shipped-notes.md` section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnnounceOk {
    /// The responder's own hop ID; [`HopId::UNKNOWN`] for an endpoint
    /// without one.
    pub hop: HopId,
    /// How many ANNOUNCE messages of the initial set follow.
    pub active_count: u64,
}

impl Message for AnnounceOk {
    const NAME: &'static str = "ANNOUNCE_OK";

    fn exists_in(version: Version) -> bool {
        version.has_announce_ok()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.hop.encode(buf)?;
        self.active_count.encode(buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(AnnounceOk {
            hop: HopId::decode(buf)?,
            active_count: u64::decode(buf)?,
        })
    }
}

/// ANNOUNCE_INIT (-01/02 only): every active broadcast under the prefix, sent
/// once as the first reply on an Announce stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceInit {
    /// Active broadcast paths relative to the requested prefix.
    pub suffixes: Vec<Path>,
}

impl Message for AnnounceInit {
    const NAME: &'static str = "ANNOUNCE_INIT";

    fn exists_in(version: Version) -> bool {
        version.uses_setup()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        (self.suffixes.len() as u64).encode(buf)?;
        for suffix in &self.suffixes {
            suffix.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        let count = u64::decode(buf)?;
        // Each suffix takes at least one byte, and the frame is already bounded
        // by MAX_MESSAGE_SIZE, so a larger count is malformed.
        if count > buf.remaining() as u64 {
            return Err(DecodeError::Invalid("more suffixes than bytes"));
        }
        let mut suffixes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            suffixes.push(Path::decode(buf)?);
        }
        Ok(AnnounceInit { suffixes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn interest_lite04() {
        let msg = AnnounceInterest {
            prefix: Path::new("room"),
            exclude_hop: HopId::new(7),
        };
        #[rustfmt::skip]
        let expected = [
            0x06,                         // length
            0x04, b'r', b'o', b'o', b'm', // prefix (s)
            0x07,                         // exclude hop 7
        ];
        check_message(&msg, Version::Lite04, &expected);

        let msg = AnnounceInterest {
            prefix: Path::root(),
            exclude_hop: None,
        };
        // length 2, empty prefix, exclude hop 0 = none
        check_message(&msg, Version::Lite04, &[0x02, 0x00, 0x00]);

        let bad = AnnounceInterest {
            prefix: Path::root(),
            exclude_hop: Some(HopId::UNKNOWN),
        };
        assert!(bad.encode(Version::Lite04, &mut Vec::new()).is_err());
    }

    #[test]
    fn please_lite03_and_02() {
        let msg = AnnouncePlease {
            prefix: Path::new("room"),
            exclude_hop: None,
        };
        #[rustfmt::skip]
        let expected = [
            0x05,                         // length
            0x04, b'r', b'o', b'o', b'm', // prefix (s); no exclude hop before -04
        ];
        for v in [Version::Lite03, Version::Lite02, Version::Lite01] {
            check_message(&msg, v, &expected);
        }
    }

    #[test]
    fn announce_lite04() {
        let msg = Announce {
            status: AnnounceStatus::Active,
            suffix: Path::new("alice"),
            hops: vec![HopId::new(1).unwrap(), HopId::MAX],
        };
        #[rustfmt::skip]
        let expected = [
            0x11,                                 // length 17
            0x01,                                 // status active
            0x05, b'a', b'l', b'i', b'c', b'e',   // suffix (s)
            0x02,                                 // hop count
            0x01,                                 // hop 1
            // 2^53 - 1 = 0x001f_ffff_ffff_ffff >= 2^30: 8-byte varint
            0xc0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        check_message(&msg, Version::Lite04, &expected);
    }

    #[test]
    fn hop_ids_over_53_bits_are_kept_as_received() {
        // Another implementation's 62-bit ID: decoded, and forwarded as is.
        #[rustfmt::skip]
        let bytes = [
            0x0c, 0x01, 0x01, b'a', 0x01,
            0xc0, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 2^53
        ];
        let msg = Announce::decode(&mut &bytes[..], Version::Lite04).unwrap();
        assert_eq!(msg.hops, [HopId(1 << 53)]);
        check_message(&msg, Version::Lite04, &bytes);
        // But not as our own.
        assert_eq!(HopId::new(1 << 53), None);
        // Exclude hop 2^62 - 1, the largest varint.
        let bytes = [0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let interest = AnnounceInterest::decode(&mut &bytes[..], Version::Lite04).unwrap();
        assert_eq!(interest.exclude_hop, Some(HopId((1 << 62) - 1)));
    }

    #[test]
    fn too_many_hops() {
        // hop count 33 > MAX_HOPS, refused before reading (or allocating) the IDs
        let bytes = [0x04, 0x01, 0x00, 0x21, 0x00];
        for v in [Version::Lite04, Version::Lite03] {
            assert!(matches!(
                Announce::decode(&mut &bytes[..], v),
                Err(DecodeError::TooLarge(_))
            ));
        }
        let msg = Announce {
            status: AnnounceStatus::Active,
            suffix: Path::root(),
            hops: vec![HopId::UNKNOWN; 33],
        };
        assert!(msg.encode(Version::Lite04, &mut Vec::new()).is_err());
    }

    #[test]
    fn announce_lite03() {
        let msg = Announce {
            status: AnnounceStatus::Ended,
            suffix: Path::new("alice"),
            hops: vec![HopId::UNKNOWN, HopId::UNKNOWN],
        };
        #[rustfmt::skip]
        let expected = [
            0x08,                               // length
            0x00,                               // status ended
            0x05, b'a', b'l', b'i', b'c', b'e', // suffix (s)
            0x02,                               // hops: a count only
        ];
        check_message(&msg, Version::Lite03, &expected);
        // Known IDs are reduced to their number.
        let known = Announce {
            hops: vec![HopId::new(9).unwrap(); 2],
            ..msg.clone()
        };
        let mut out = Vec::new();
        known.encode(Version::Lite03, &mut out).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn announce_lite02() {
        let msg = Announce {
            status: AnnounceStatus::Active,
            suffix: Path::new("alice"),
            hops: vec![],
        };
        #[rustfmt::skip]
        let expected = [
            0x07,                               // length
            0x01,                               // status active
            0x05, b'a', b'l', b'i', b'c', b'e', // suffix (s); no hops before -03
        ];
        check_message(&msg, Version::Lite02, &expected);
        check_message(&msg, Version::Lite01, &expected);
        // status 2 is invalid
        let bad = [0x02, 0x02, 0x00];
        assert!(matches!(
            Announce::decode(&mut &bad[..], Version::Lite02),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn init_lite02() {
        let msg = AnnounceInit {
            suffixes: vec![Path::new("a"), Path::new("b/c")],
        };
        #[rustfmt::skip]
        let expected = [
            0x07,                   // length
            0x02,                   // suffix count
            0x01, b'a',             // "a"
            0x03, b'b', b'/', b'c', // "b/c"
        ];
        check_message(&msg, Version::Lite02, &expected);
        check_message(&msg, Version::Lite01, &expected);
        assert!(msg.encode(Version::Lite03, &mut Vec::new()).is_err());
        assert!(AnnounceInit::decode(&mut &expected[..], Version::Lite04).is_err());
        // a count of 2^62 - 1 in a 9-byte frame: malformed, nothing reserved
        let huge = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            AnnounceInit::decode(&mut &huge[..], Version::Lite02),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn any_hop() -> impl Strategy<Value = HopId> {
        (0..1u64 << 62).prop_map(HopId)
    }

    proptest! {
        #[test]
        fn round_trips(prefix in any_path(), exclude in proptest::option::of(1..1u64 << 62),
                       active in any::<bool>(), hops in proptest::collection::vec(any_hop(), 0..=MAX_HOPS),
                       suffixes in proptest::collection::vec(any_path(), 0..5)) {
            round_trip(&AnnounceInterest { prefix: prefix.clone(), exclude_hop: exclude.map(HopId) }, Version::Lite04)?;
            for v in [Version::Lite03, Version::Lite02, Version::Lite01] {
                round_trip(&AnnounceInterest { prefix: prefix.clone(), exclude_hop: None }, v)?;
            }
            let status = if active { AnnounceStatus::Active } else { AnnounceStatus::Ended };
            round_trip(&Announce { status, suffix: prefix.clone(), hops: hops.clone() }, Version::Lite04)?;
            let unknown = vec![HopId::UNKNOWN; hops.len()];
            round_trip(&Announce { status, suffix: prefix.clone(), hops: unknown }, Version::Lite03)?;
            round_trip(&Announce { status, suffix: prefix, hops: vec![] }, Version::Lite02)?;
            round_trip(&AnnounceInit { suffixes }, Version::Lite01)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<AnnounceInterest>(&bytes);
            garbage_message::<Announce>(&bytes);
            garbage_message::<AnnounceInit>(&bytes);
        }
    }
}

//! The Subscribe stream: SUBSCRIBE and SUBSCRIBE_UPDATE from the subscriber,
//! SUBSCRIBE_OK and SUBSCRIBE_DROP from the publisher.
//!
//! How each version differs:
//!
//! * -03/04: SUBSCRIBE adds ordered, max latency and start/end group to
//!   -02's `{ id, broadcast, track, priority }`; SUBSCRIBE_UPDATE carries the
//!   same tail; SUBSCRIBE_OK carries the publisher's priority, ordered, max
//!   latency and resolved start/end group. The publisher's replies are
//!   prefixed with a type (0x0 SUBSCRIBE_OK, 0x1 SUBSCRIBE_DROP) *before*
//!   the length, so [`SubscribeResponse`] reads either.
//! * -02: SUBSCRIBE_UPDATE is `{ priority }` and SUBSCRIBE_OK is empty; there
//!   is no SUBSCRIBE_DROP and no type prefix.
//! * -01: as -02, except that SUBSCRIBE_OK carries the publisher priority
//!   (one byte). The -02 text, which covers both, does not say so; this
//!   follows what -01 peers send.
//!
//! Priorities are one raw byte in every version. The -02 text writes the
//! SUBSCRIBE / SUBSCRIBE_UPDATE priority as `(i)`, but deployed -01/02 peers
//! write one byte (the two agree below 64).
//!
//! Fields a version lacks are not written, and decode as: not ordered, zero
//! max latency, no start/end group, priority 0.
//!
//! Start/End Group in SUBSCRIBE, SUBSCRIBE_UPDATE and SUBSCRIBE_OK use 0 for
//! "none" and `sequence + 1` otherwise; here they are `Option<u64>` holding
//! the sequence. SUBSCRIBE_DROP's range is written as plain sequences (its
//! section says "the first absolute group sequence", with no `+ 1`).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{
    Decode, DecodeError, Encode, EncodeError, LengthPrefix, decode_framed, decode_opt_seq, decode_string,
    encode_framed, encode_opt_seq, encode_string,
};
use crate::model::Path;

/// The longest track name we accept or send, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

fn encode_latency(latency: Duration, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let ms = u64::try_from(latency.as_millis()).map_err(|_| EncodeError::TooLarge("max latency"))?;
    ms.encode(buf)
}

fn decode_latency(buf: &mut Bytes) -> Result<Duration, DecodeError> {
    Ok(Duration::from_millis(u64::decode(buf)?))
}

/// The -03+ delivery tail that SUBSCRIBE, SUBSCRIBE_UPDATE and SUBSCRIBE_OK
/// share: ordered, max latency, start group, end group.
type Tail = (bool, Duration, Option<u64>, Option<u64>);

fn encode_tail((ordered, latency, start, end): Tail, buf: &mut BytesMut) -> Result<(), EncodeError> {
    ordered.encode(buf)?;
    encode_latency(latency, buf)?;
    encode_opt_seq(start, buf)?;
    encode_opt_seq(end, buf)
}

fn decode_tail(buf: &mut Bytes) -> Result<Tail, DecodeError> {
    Ok((
        bool::decode(buf)?,
        decode_latency(buf)?,
        decode_opt_seq(buf)?,
        decode_opt_seq(buf)?,
    ))
}

/// The -06 tail of SUBSCRIBE and SUBSCRIBE_UPDATE: max age, Group Start
/// as a raw floor (0: none), Group End `+ 1`, Frame Start raw, Frame End
/// `+ 1` (shipped notes, section 6).
type Tail06 = (Duration, Option<u64>, Option<u64>, u64, Option<u64>);

fn encode_tail06(
    (latency, start, end, frame_start, frame_end): Tail06,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    if frame_end.is_some() && end.is_none() {
        return Err(EncodeError::Invalid("a frame end needs a group end"));
    }
    encode_latency(latency, buf)?;
    start.unwrap_or(0).encode(buf)?;
    encode_opt_seq(end, buf)?;
    frame_start.encode(buf)?;
    encode_opt_seq(frame_end, buf)
}

fn decode_tail06(buf: &mut Bytes) -> Result<Tail06, DecodeError> {
    let latency = decode_latency(buf)?;
    let start = Some(u64::decode(buf)?).filter(|floor| *floor != 0);
    let end = decode_opt_seq(buf)?;
    let frame_start = u64::decode(buf)?;
    let frame_end = decode_opt_seq(buf)?;
    if frame_end.is_some() && end.is_none() {
        return Err(DecodeError::Invalid("a frame end needs a group end"));
    }
    Ok((latency, start, end, frame_start, frame_end))
}

/// The delivery fields SUBSCRIBE and SUBSCRIBE_UPDATE share after the
/// priority, in each version's form: none up to -02, [`encode_tail`]'s in
/// -03 to -05, [`encode_tail06`]'s from -06.
#[derive(Default)]
struct Delivery {
    ordered: bool,
    max_latency: Duration,
    start_group: Option<u64>,
    end_group: Option<u64>,
    frame_start: u64,
    frame_end: Option<u64>,
}

/// Moves the delivery fields between [`Delivery`] and a message with them.
macro_rules! delivery_fields {
    ($msg:ty) => {
        impl DeliveryFields for $msg {
            fn delivery(&self) -> Delivery {
                Delivery {
                    ordered: self.ordered,
                    max_latency: self.max_latency,
                    start_group: self.start_group,
                    end_group: self.end_group,
                    frame_start: self.frame_start,
                    frame_end: self.frame_end,
                }
            }

            fn set_delivery(&mut self, d: Delivery) {
                self.ordered = d.ordered;
                self.max_latency = d.max_latency;
                self.start_group = d.start_group;
                self.end_group = d.end_group;
                self.frame_start = d.frame_start;
                self.frame_end = d.frame_end;
            }
        }
    };
}

trait DeliveryFields {
    fn delivery(&self) -> Delivery;
    fn set_delivery(&mut self, delivery: Delivery);
}

delivery_fields!(Subscribe);
delivery_fields!(SubscribeUpdate);

impl Delivery {
    fn of(msg: &impl DeliveryFields) -> Delivery {
        msg.delivery()
    }

    fn apply(self, msg: &mut impl DeliveryFields) {
        msg.set_delivery(self)
    }

    fn encode(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if version.has_frame_bounds() {
            let tail = (
                self.max_latency,
                self.start_group,
                self.end_group,
                self.frame_start,
                self.frame_end,
            );
            encode_tail06(tail, buf)
        } else if !version.uses_setup() {
            encode_tail(
                (self.ordered, self.max_latency, self.start_group, self.end_group),
                buf,
            )
        } else {
            Ok(())
        }
    }

    fn decode(buf: &mut Bytes, version: Version) -> Result<Delivery, DecodeError> {
        let mut d = Delivery::default();
        if version.has_frame_bounds() {
            (
                d.max_latency,
                d.start_group,
                d.end_group,
                d.frame_start,
                d.frame_end,
            ) = decode_tail06(buf)?;
        } else if !version.uses_setup() {
            (d.ordered, d.max_latency, d.start_group, d.end_group) = decode_tail(buf)?;
        }
        Ok(d)
    }
}

/// The Max Latency we send when the application sets none: in SUBSCRIBE
/// (how old a group may get before the publisher abandons it) and in
/// SUBSCRIBE_OK (the same, for the subscriber).
///
/// The text gives 0 no special meaning (lite-04 "Expiration": a group
/// expires once the latest group arrived more than Max Latency after it),
/// so 0 would ask for the live edge only, and some peers read it so. We
/// send a generous bound instead ("set conservative limits and only resort
/// to expiration when data is absolutely no longer needed"), and read a
/// received 0 as no limit, as deployed peers that send 0 mean it.
pub const DEFAULT_MAX_LATENCY: Duration = Duration::from_secs(600);

/// SUBSCRIBE: opens a Subscribe stream for one track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    /// Chosen by the subscriber, never reused in a session; GROUP headers
    /// refer to it.
    pub id: u64,
    /// The broadcast path.
    pub broadcast: Path,
    /// The track name, at most [`MAX_NAME_LEN`] bytes.
    pub track: String,
    /// Subscriber priority; higher is sent first.
    pub priority: u8,
    /// -03+: deliver older groups first.
    pub ordered: bool,
    /// -03+: drop groups older than this relative to the latest (whole
    /// milliseconds on the wire; zero means no limit is given).
    pub max_latency: Duration,
    /// -03+: the first group to deliver; `None` = the latest.
    pub start_group: Option<u64>,
    /// -03+: the last group to deliver (inclusive); `None` = unbounded.
    /// On -06 a start of `Some(0)` reads back as `None` (both: no floor).
    pub end_group: Option<u64>,
    /// -06: the first frame of the start group to deliver.
    pub frame_start: u64,
    /// -06: the last frame of the end group (inclusive); needs an end group.
    pub frame_end: Option<u64>,
}

impl Message for Subscribe {
    const NAME: &'static str = "SUBSCRIBE";

    fn exists_in(_version: Version) -> bool {
        true
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.id.encode(buf)?;
        self.broadcast.encode(buf)?;
        encode_string(&self.track, MAX_NAME_LEN, "track name", buf)?;
        self.priority.encode(buf)?;
        Delivery::of(self).encode(version, buf)
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let mut msg = Subscribe {
            id: u64::decode(buf)?,
            broadcast: Path::decode(buf)?,
            track: decode_string(buf, MAX_NAME_LEN, "track name")?,
            priority: u8::decode(buf)?,
            ..Default::default()
        };
        Delivery::decode(buf, version)?.apply(&mut msg);
        Ok(msg)
    }
}

/// SUBSCRIBE_UPDATE: changes a subscription's preferences or range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeUpdate {
    /// Subscriber priority.
    pub priority: u8,
    /// -03+: deliver older groups first.
    pub ordered: bool,
    /// -03+: maximum group age.
    pub max_latency: Duration,
    /// -03+: the first group to deliver; `None` = the latest.
    pub start_group: Option<u64>,
    /// -03+: the last group to deliver; `None` = unbounded.
    pub end_group: Option<u64>,
    /// -06: the first frame of the start group to deliver.
    pub frame_start: u64,
    /// -06: the last frame of the end group (inclusive).
    pub frame_end: Option<u64>,
}

impl Message for SubscribeUpdate {
    const NAME: &'static str = "SUBSCRIBE_UPDATE";

    fn exists_in(_version: Version) -> bool {
        true
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.priority.encode(buf)?;
        Delivery::of(self).encode(version, buf)
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let mut msg = SubscribeUpdate {
            priority: u8::decode(buf)?,
            ..Default::default()
        };
        Delivery::decode(buf, version)?.apply(&mut msg);
        Ok(msg)
    }
}

/// SUBSCRIBE_OK: the publisher accepts (and, from -03, may re-send to update
/// its preferences or the resolved range).
///
/// Its [`Message::encode`] / [`Message::decode`] include the -03/04 type
/// prefix 0x0; to read whichever reply comes next, use [`SubscribeResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeOk {
    /// -01, -03+: publisher priority, for ties between subscribers.
    pub priority: u8,
    /// -03+: the publisher delivers older groups first.
    pub ordered: bool,
    /// -03+: the publisher's maximum group age.
    pub max_latency: Duration,
    /// -03+: the resolved first group; `None` = not yet known (a later
    /// SUBSCRIBE_OK must resolve it).
    pub start_group: Option<u64>,
    /// -03+: the resolved last group; `None` = unbounded.
    pub end_group: Option<u64>,
}

impl SubscribeOk {
    /// The -03/04 type prefix.
    pub const TYPE: u64 = 0x0;
}

impl Message for SubscribeOk {
    const NAME: &'static str = "SUBSCRIBE_OK";

    fn exists_in(version: Version) -> bool {
        !version.has_subscribe_end()
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match version {
            Version::Lite06 | Version::Lite05 => Err(EncodeError::Version(Self::NAME)),
            Version::Lite02 => Ok(()),
            Version::Lite01 => self.priority.encode(buf),
            Version::Lite03 | Version::Lite04 => {
                self.priority.encode(buf)?;
                encode_tail(
                    (self.ordered, self.max_latency, self.start_group, self.end_group),
                    buf,
                )
            }
        }
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        match version {
            Version::Lite06 | Version::Lite05 => {
                Err(DecodeError::Invalid("message not defined in this version"))
            }
            Version::Lite02 => Ok(SubscribeOk::default()),
            Version::Lite01 => Ok(SubscribeOk {
                priority: u8::decode(buf)?,
                ..Default::default()
            }),
            Version::Lite03 | Version::Lite04 => {
                let priority = u8::decode(buf)?;
                let (ordered, max_latency, start_group, end_group) = decode_tail(buf)?;
                Ok(SubscribeOk {
                    priority,
                    ordered,
                    max_latency,
                    start_group,
                    end_group,
                })
            }
        }
    }

    fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        encode_typed(self, Self::TYPE, version, buf)
    }

    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        decode_typed(buf, Self::TYPE, version)
    }
}

/// SUBSCRIBE_DROP (-03+): groups `start..=end` will not be delivered.
///
/// Its [`Message::encode`] / [`Message::decode`] include the type prefix 0x1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscribeDrop {
    /// The first dropped group sequence.
    pub start: u64,
    /// The last dropped group sequence (inclusive).
    pub end: u64,
    /// An application error code; 0 = simply unavailable.
    pub error: u64,
}

impl SubscribeDrop {
    /// The type prefix up to -04.
    pub const TYPE: u64 = 0x1;
    /// The type prefix from -05 on (0x1 became SUBSCRIBE_END).
    pub const TYPE_05: u64 = 0x2;

    /// The type prefix in `version`.
    pub const fn type_in(version: Version) -> u64 {
        if version.has_subscribe_end() {
            Self::TYPE_05
        } else {
            Self::TYPE
        }
    }
}

impl Message for SubscribeDrop {
    const NAME: &'static str = "SUBSCRIBE_DROP";

    fn exists_in(version: Version) -> bool {
        !version.uses_setup()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.start.encode(buf)?;
        self.end.encode(buf)?;
        self.error.encode(buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(SubscribeDrop {
            start: u64::decode(buf)?,
            end: u64::decode(buf)?,
            error: u64::decode(buf)?,
        })
    }

    fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        encode_typed(self, Self::type_in(version), version, buf)
    }

    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        decode_typed(buf, Self::type_in(version), version)
    }
}

/// A -05+ reply on a Subscribe stream whose body is one group sequence:
/// the struct, its type prefix, and its [`Message`] impl (whose `encode` /
/// `decode` include the prefix).
macro_rules! group_reply {
    ($(#[$doc:meta])* $name:ident, $wire:literal, $ty:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            #[doc = $field]
            pub group: u64,
        }

        impl $name {
            /// The type prefix.
            pub const TYPE: u64 = $ty;
        }

        impl Message for $name {
            const NAME: &'static str = $wire;

            fn exists_in(version: Version) -> bool {
                version.has_subscribe_end()
            }

            fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
                self.group.encode(buf)
            }

            fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
                Ok($name {
                    group: u64::decode(buf)?,
                })
            }

            fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
                encode_typed(self, Self::TYPE, version, buf)
            }

            fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
                decode_typed(buf, Self::TYPE, version)
            }
        }
    };
}

group_reply!(
    /// SUBSCRIBE_START (-05+, the texts' SUBSCRIBE_OK, type 0x0): the
    /// absolute sequence of the first group the publisher delivers, sent
    /// with it.
    SubscribeStart,
    "SUBSCRIBE_START",
    0x0,
    "The first group delivered."
);

group_reply!(
    /// SUBSCRIBE_END (-05+, type 0x1): the first group that will never come,
    /// **exclusive** (0: the track produced nothing). The -05 text says
    /// inclusive; the shipped code on both ends sends and reads exclusive
    /// (`lite-06-shipped-notes.md` section 6), and so do we.
    SubscribeEnd,
    "SUBSCRIBE_END",
    0x1,
    "One past the last group delivered or dropped."
);

/// Writes `Type (i)` (from -03 on) and then the length-prefixed body.
fn encode_typed<M: Message, B: BufMut>(
    msg: &M,
    ty: u64,
    version: Version,
    buf: &mut B,
) -> Result<(), EncodeError> {
    if !M::exists_in(version) {
        return Err(EncodeError::Version(M::NAME));
    }
    if !version.uses_setup() {
        ty.encode(buf)?;
    }
    encode_framed(buf, LengthPrefix::VarInt, |body| msg.encode_body(version, body))
}

/// Reads a message written by [`encode_typed`], requiring type `ty`.
fn decode_typed<M: Message, B: Buf>(buf: &mut B, ty: u64, version: Version) -> Result<M, DecodeError> {
    if !M::exists_in(version) {
        return Err(DecodeError::Invalid("message not defined in this version"));
    }
    if !version.uses_setup() && u64::decode(buf)? != ty {
        return Err(DecodeError::Invalid("unexpected subscribe response type"));
    }
    decode_framed(buf, LengthPrefix::VarInt, |body| M::decode_body(body, version))
}

/// Any message the publisher sends on a Subscribe stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeResponse {
    /// SUBSCRIBE_OK (up to -04).
    Ok(SubscribeOk),
    /// SUBSCRIBE_START (-05+).
    Start(SubscribeStart),
    /// SUBSCRIBE_END (-05+).
    End(SubscribeEnd),
    /// SUBSCRIBE_DROP (-03+).
    Drop(SubscribeDrop),
}

impl SubscribeResponse {
    /// Writes the message, with its type prefix from -03 on.
    pub fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            SubscribeResponse::Ok(ok) => ok.encode(version, buf),
            SubscribeResponse::Start(start) => start.encode(version, buf),
            SubscribeResponse::End(end) => end.encode(version, buf),
            SubscribeResponse::Drop(drop) => drop.encode(version, buf),
        }
    }

    /// Reads the next reply: by its type from -03 on; before that only
    /// SUBSCRIBE_OK exists.
    pub fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        if version.uses_setup() {
            return SubscribeOk::decode(buf, version).map(SubscribeResponse::Ok);
        }
        let ty = u64::decode(buf)?;
        if version.has_subscribe_end() {
            // An unknown response type is an error, not skipped (shipped notes, section 6).
            return match ty {
                SubscribeStart::TYPE => decode_framed(buf, LengthPrefix::VarInt, |body| {
                    SubscribeStart::decode_body(body, version).map(SubscribeResponse::Start)
                }),
                SubscribeEnd::TYPE => decode_framed(buf, LengthPrefix::VarInt, |body| {
                    SubscribeEnd::decode_body(body, version).map(SubscribeResponse::End)
                }),
                SubscribeDrop::TYPE_05 => decode_framed(buf, LengthPrefix::VarInt, |body| {
                    SubscribeDrop::decode_body(body, version).map(SubscribeResponse::Drop)
                }),
                _ => Err(DecodeError::Invalid("unknown subscribe response type")),
            };
        }
        match ty {
            SubscribeOk::TYPE => decode_framed(buf, LengthPrefix::VarInt, |body| {
                SubscribeOk::decode_body(body, version).map(SubscribeResponse::Ok)
            }),
            SubscribeDrop::TYPE => decode_framed(buf, LengthPrefix::VarInt, |body| {
                SubscribeDrop::decode_body(body, version).map(SubscribeResponse::Drop)
            }),
            _ => Err(DecodeError::Invalid("unknown subscribe response type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    fn check_response(msg: &SubscribeResponse, version: Version, expected: &[u8]) {
        check_bytes(
            msg,
            expected,
            |m, out| m.encode(version, out),
            |c| SubscribeResponse::decode(c, version),
        );
    }

    #[test]
    fn subscribe_lite04_and_03() {
        let msg = Subscribe {
            id: 1,
            broadcast: Path::new("room/a"),
            track: "video".into(),
            priority: 2,
            ordered: true,
            max_latency: Duration::from_millis(1000),
            start_group: None,
            end_group: Some(9),
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x14,                                     // length 20
            0x01,                                     // subscribe ID
            0x06, b'r', b'o', b'o', b'm', b'/', b'a', // broadcast path (s)
            0x05, b'v', b'i', b'd', b'e', b'o',       // track name (s)
            0x02,                                     // priority (8)
            0x01,                                     // ordered (8)
            0x43, 0xe8,                               // max latency 1000 ms = 0x3e8, two-byte varint
            0x00,                                     // start group: none (latest)
            0x0a,                                     // end group: 9 + 1
        ];
        check_message(&msg, Version::Lite04, &expected);
        check_message(&msg, Version::Lite03, &expected);
    }

    #[test]
    fn subscribe_lite02() {
        let msg = Subscribe {
            id: 1,
            broadcast: Path::new("room/a"),
            track: "video".into(),
            priority: 2,
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x0f,                                     // length 15
            0x01,                                     // subscribe ID
            0x06, b'r', b'o', b'o', b'm', b'/', b'a', // broadcast path (s)
            0x05, b'v', b'i', b'd', b'e', b'o',       // track name (s)
            0x02,                                     // priority; nothing else before -03
        ];
        check_message(&msg, Version::Lite02, &expected);
        check_message(&msg, Version::Lite01, &expected);
        // Priority 200 is one byte 0xc8, not the varint 0x40 0xc8.
        let mut out = Vec::new();
        Subscribe { priority: 200, ..msg }
            .encode(Version::Lite02, &mut out)
            .unwrap();
        assert_eq!(out.last(), Some(&0xc8));
    }

    #[test]
    fn subscribe_rejects_bad_ordered() {
        #[rustfmt::skip]
        let bytes = [0x08, 0x01, 0x00, 0x00, 0x02, 0x02 /* ordered = 2 */, 0x00, 0x00, 0x00];
        assert!(matches!(
            Subscribe::decode(&mut &bytes[..], Version::Lite04),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn update_bytes() {
        let msg = SubscribeUpdate {
            priority: 3,
            start_group: Some(0),
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x05, // length
            0x03, // priority
            0x00, // ordered: no
            0x00, // max latency 0
            0x01, // start group 0 + 1
            0x00, // end group: unbounded
        ];
        check_message(&msg, Version::Lite04, &expected);
        check_message(&msg, Version::Lite03, &expected);
        let msg = SubscribeUpdate {
            priority: 3,
            ..Default::default()
        };
        // length 1, priority only before -03
        check_message(&msg, Version::Lite02, &[0x01, 0x03]);
    }

    #[test]
    fn ok_bytes() {
        let msg = SubscribeOk {
            priority: 5,
            ordered: true,
            max_latency: Duration::from_millis(100),
            start_group: Some(41),
            end_group: None,
        };
        #[rustfmt::skip]
        let expected = [
            0x00,       // type SUBSCRIBE_OK, before the length
            0x06,       // length
            0x05,       // publisher priority
            0x01,       // publisher ordered
            0x40, 0x64, // max latency 100 ms, two-byte varint
            0x2a,       // start group 41 + 1
            0x00,       // end group: unbounded
        ];
        for v in [Version::Lite04, Version::Lite03] {
            check_message(&msg, v, &expected);
            check_response(&SubscribeResponse::Ok(msg.clone()), v, &expected);
        }

        // -02: an empty message, no type
        check_message(&SubscribeOk::default(), Version::Lite02, &[0x00]);
        check_response(
            &SubscribeResponse::Ok(SubscribeOk::default()),
            Version::Lite02,
            &[0x00],
        );
        // -01: length 1, the publisher priority
        let msg = SubscribeOk {
            priority: 5,
            ..Default::default()
        };
        check_message(&msg, Version::Lite01, &[0x01, 0x05]);
    }

    #[test]
    fn drop_bytes() {
        let msg = SubscribeDrop {
            start: 5,
            end: 7,
            error: 0,
        };
        #[rustfmt::skip]
        let expected = [
            0x01, // type SUBSCRIBE_DROP, before the length
            0x03, // length
            0x05, // first dropped group (a plain sequence)
            0x07, // last dropped group, inclusive
            0x00, // error code: none
        ];
        for v in [Version::Lite04, Version::Lite03] {
            check_message(&msg, v, &expected);
            check_response(&SubscribeResponse::Drop(msg), v, &expected);
        }
        for v in [Version::Lite02, Version::Lite01] {
            assert!(SubscribeResponse::Drop(msg).encode(v, &mut Vec::new()).is_err());
        }
        // SUBSCRIBE_OK::decode refuses a DROP, and type 2 is unknown
        assert!(matches!(
            SubscribeOk::decode(&mut &expected[..], Version::Lite04),
            Err(DecodeError::Invalid(_))
        ));
        let unknown = [0x02, 0x00];
        assert!(matches!(
            SubscribeResponse::decode(&mut &unknown[..], Version::Lite04),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn any_latency() -> impl Strategy<Value = Duration> {
        (0..1u64 << 40).prop_map(Duration::from_millis)
    }

    proptest! {
        #[test]
        fn round_trips(id in any_varint(), broadcast in any_path(), track in any_name(), priority in any::<u8>(),
                       ordered in any::<bool>(), max_latency in any_latency(),
                       start_group in any_opt_seq(), end_group in any_opt_seq(),
                       start in any_varint(), end in any_varint(), error in any_varint()) {
            let sub = Subscribe { id, broadcast, track, priority, ordered, max_latency, start_group, end_group, ..Default::default() };
            let update = SubscribeUpdate { priority, ordered, max_latency, start_group, end_group, ..Default::default() };
            // -06: no Ordered byte; a floor of 0 is no floor; frame bounds.
            let sub06 = Subscribe {
                ordered: false,
                start_group: start_group.filter(|s| *s != 0),
                frame_start: start,
                frame_end: end_group.map(|_| end),
                ..sub.clone()
            };
            round_trip(&sub06, Version::Lite06)?;
            round_trip(&SubscribeUpdate { ordered: false, start_group: sub06.start_group, ..update.clone() }, Version::Lite06)?;
            let ok = SubscribeOk { priority, ordered, max_latency, start_group, end_group };
            let drop = SubscribeDrop { start, end, error };
            for v in [Version::Lite04, Version::Lite03] {
                round_trip(&sub, v)?;
                round_trip(&update, v)?;
                round_trip(&ok, v)?;
                round_trip(&drop, v)?;
                for resp in [SubscribeResponse::Ok(ok.clone()), SubscribeResponse::Drop(drop)] {
                    let mut out = Vec::new();
                    resp.encode(v, &mut out).unwrap();
                    prop_assert_eq!(SubscribeResponse::decode(&mut &out[..], v), Ok(resp));
                }
            }
            let old = Subscribe { ordered: false, max_latency: Duration::ZERO, start_group: None, end_group: None, ..sub };
            round_trip(&old, Version::Lite02)?;
            round_trip(&SubscribeUpdate { priority, ..Default::default() }, Version::Lite01)?;
            round_trip(&SubscribeOk { priority, ..Default::default() }, Version::Lite01)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Subscribe>(&bytes);
            garbage_message::<SubscribeUpdate>(&bytes);
            garbage_message::<SubscribeOk>(&bytes);
            garbage_message::<SubscribeDrop>(&bytes);
            for v in Version::ALL {
                garbage(&bytes, |m: &SubscribeResponse, out| m.encode(v, out), |c| SubscribeResponse::decode(c, v));
            }
        }
    }
}

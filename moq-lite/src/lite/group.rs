//! Group streams: the GROUP header, then FRAMEs.
//!
//! A group stream (unidirectional, type 0x0) starts with GROUP, a normal
//! length-prefixed message. Each FRAME that follows is `Message Length (i)`
//! and the payload; that length is the only header, so [`FrameHeader`] is
//! decoded on its own and the session streams the payload through in chunks
//! instead of buffering a whole frame. Fetch streams (-03+) carry FRAMEs too,
//! without a GROUP.
//!
//! From -05 on every FRAME starts with `Timestamp Delta (i)`: the frame's
//! timestamp minus the previous frame's on the same stream (the first frame
//! counts from 0), zigzag coded (n -> 2n, -n -> 2n - 1), in the track's
//! timescale (TRACK_INFO). [`FrameHeader::delta`] holds the signed delta and
//! [`FrameTimestamps`] turns deltas into timestamps and back, one per
//! stream.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError};

/// GROUP: which subscription a group stream serves and the group's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Group {
    /// The Subscribe ID of the subscription this group answers.
    pub subscribe: u64,
    /// The group sequence number.
    pub sequence: u64,
    /// -06: the index of the first frame on this stream (0 unless the
    /// subscriber asked to start inside the group).
    pub frame_start: u64,
}

impl Message for Group {
    const NAME: &'static str = "GROUP";

    fn exists_in(_version: Version) -> bool {
        true
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.subscribe.encode(buf)?;
        self.sequence.encode(buf)?;
        if version.has_frame_bounds() {
            self.frame_start.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        Ok(Group {
            subscribe: u64::decode(buf)?,
            sequence: u64::decode(buf)?,
            frame_start: if version.has_frame_bounds() {
                u64::decode(buf)?
            } else {
                0
            },
        })
    }
}

/// The length prefix of a FRAME: how many payload bytes follow.
///
/// No limit is applied here, because nothing is allocated from it: the
/// session copies the payload as it arrives and decides how much of a
/// frame it is willing to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// The payload size in bytes.
    pub size: u64,
    /// -05+: this frame's timestamp minus the previous frame's on the stream;
    /// ignored (and read as 0) in older versions.
    pub delta: i64,
}

/// The timestamp deltas a varint holds once zigzag coded: zigzag maps
/// -2^61 ..= 2^61 - 1 onto 0 ..= 2^62 - 1.
const DELTAS: std::ops::RangeInclusive<i64> = -(1 << 61)..=(1 << 61) - 1;

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

impl FrameHeader {
    /// Writes the header of a frame of `size` bytes.
    pub fn encode<B: BufMut>(&self, version: Version, buf: &mut B) -> Result<(), EncodeError> {
        if version.has_timestamps() {
            if !DELTAS.contains(&self.delta) {
                return Err(EncodeError::TooLarge("timestamp delta"));
            }
            zigzag(self.delta).encode(buf)?;
        }
        self.size.encode(buf)
    }

    /// Reads a frame header; the payload is left in `buf`.
    pub fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        let delta = if version.has_timestamps() {
            unzigzag(u64::decode(buf)?)
        } else {
            0
        };
        Ok(FrameHeader {
            size: u64::decode(buf)?,
            delta,
        })
    }

    /// Writes a whole frame: the header, then `payload`.
    pub fn encode_frame<B: BufMut>(payload: &[u8], version: Version, buf: &mut B) -> Result<(), EncodeError> {
        FrameHeader {
            size: payload.len() as u64,
            delta: 0,
        }
        .encode(version, buf)?;
        buf.put_slice(payload);
        Ok(())
    }
}

/// The timestamps of one stream's frames (-05+), from and to their deltas.
///
/// Timestamps are in the track's timescale and never negative; the first
/// frame of every stream is coded from 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTimestamps {
    previous: u64,
}

impl FrameTimestamps {
    /// The largest timestamp (a varint's range, as for datagrams).
    pub const MAX: u64 = (1 << 62) - 1;

    /// The delta to write for a frame stamped `timestamp`; `None` (a frame
    /// without a timestamp) repeats the previous one.
    pub fn delta(&mut self, timestamp: Option<u64>) -> Result<i64, EncodeError> {
        let Some(timestamp) = timestamp else {
            return Ok(0);
        };
        if timestamp > Self::MAX {
            return Err(EncodeError::TooLarge("timestamp"));
        }
        // Both are below 2^62, so the difference fits an i64.
        let delta = timestamp as i64 - self.previous as i64;
        self.previous = timestamp;
        Ok(delta)
    }

    /// The timestamp of a frame whose header carried `delta`.
    pub fn timestamp(&mut self, delta: i64) -> Result<u64, DecodeError> {
        let next = self.previous as i128 + delta as i128;
        if !(0..=Self::MAX as i128).contains(&next) {
            return Err(DecodeError::Invalid("timestamp out of range"));
        }
        self.previous = next as u64;
        Ok(self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn group_bytes() {
        let msg = Group {
            subscribe: 3,
            sequence: 300,
            frame_start: 0,
        };
        #[rustfmt::skip]
        let expected = [
            0x03,       // length
            0x03,       // subscribe ID 3
            0x41, 0x2c, // sequence 300 (two-byte varint 0x412c)
        ];
        for v in Version::ALL.into_iter().filter(|v| !v.has_frame_bounds()) {
            check_message(&msg, v, &expected);
        }
    }

    #[test]
    fn frame_bytes() {
        let mut out = Vec::new();
        FrameHeader::encode_frame(b"hi", Version::Lite04, &mut out).unwrap();
        // length 2, then the payload
        assert_eq!(out, [0x02, b'h', b'i']);
        let mut cursor = &out[..];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite04),
            Ok(FrameHeader { size: 2, delta: 0 })
        );
        assert_eq!(cursor, b"hi");
        // A header announcing 2^62 - 1 bytes decodes without allocating anything.
        let mut cursor: &[u8] = &[0xff; 8];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite02),
            Ok(FrameHeader {
                size: crate::coding::VarInt::MAX.into_inner(),
                delta: 0,
            })
        );
        let mut cursor: &[u8] = &[0x40];
        assert_eq!(
            FrameHeader::decode(&mut cursor, Version::Lite02),
            Err(DecodeError::Short)
        );
    }

    #[test]
    fn timestamped_frames() {
        // Shipped notes, section 10: timestamps 1000 then 1033, payloads
        // `abc` and `x`: deltas +1000 (zigzag 2000 = 0x47d0) and +33 (66 = 0x4042).
        let mut stamps = FrameTimestamps::default();
        let mut out = Vec::new();
        for (timestamp, payload) in [(1000, &b"abc"[..]), (1033, &b"x"[..])] {
            let delta = stamps.delta(Some(timestamp)).unwrap();
            FrameHeader {
                size: payload.len() as u64,
                delta,
            }
            .encode(Version::Lite05, &mut out)
            .unwrap();
            out.extend_from_slice(payload);
        }
        assert_eq!(out, [0x47, 0xd0, 0x03, b'a', b'b', b'c', 0x40, 0x42, 0x01, b'x']);

        let mut stamps = FrameTimestamps::default();
        let mut cursor = &out[..];
        let first = FrameHeader::decode(&mut cursor, Version::Lite05).unwrap();
        assert_eq!(first, FrameHeader { size: 3, delta: 1000 });
        assert_eq!(stamps.timestamp(first.delta), Ok(1000));
        cursor = &cursor[3..];
        let second = FrameHeader::decode(&mut cursor, Version::Lite05).unwrap();
        assert_eq!(stamps.timestamp(second.delta), Ok(1033));

        // The extremes: zigzag 2^62 - 1 is -2^61, and it re-encodes.
        let mut cursor: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        let far = FrameHeader::decode(&mut cursor, Version::Lite05).unwrap();
        assert_eq!(far.delta, -(1 << 61));
        let mut out = Vec::new();
        far.encode(Version::Lite05, &mut out).unwrap();
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
        assert!(
            FrameHeader {
                size: 0,
                delta: 1 << 61
            }
            .encode(Version::Lite05, &mut out)
            .is_err()
        );

        // Going back in time is allowed (zigzag 3 = -2), below zero is not.
        let mut cursor: &[u8] = &[0x03, 0x00];
        let back = FrameHeader::decode(&mut cursor, Version::Lite05).unwrap();
        assert_eq!(back.delta, -2);
        assert_eq!(stamps.timestamp(back.delta), Ok(1031));
        assert!(FrameTimestamps::default().timestamp(-1).is_err());
        // A frame without a timestamp repeats the previous one.
        assert_eq!(stamps.delta(None), Ok(0));
    }

    proptest! {
        #[test]
        fn round_trips(subscribe in any_varint(), sequence in any_varint(), size in any_varint(),
                       delta in -(1i64 << 61)..(1i64 << 61)) {
            for v in Version::ALL {
                let frame_start = if v.has_frame_bounds() { size } else { 0 };
                round_trip(&Group { subscribe, sequence, frame_start }, v)?;
                let delta = if v.has_timestamps() { delta } else { 0 };
                let mut out = Vec::new();
                FrameHeader { size, delta }.encode(v, &mut out).unwrap();
                prop_assert_eq!(FrameHeader::decode(&mut &out[..], v), Ok(FrameHeader { size, delta }));
            }
        }

        #[test]
        fn zigzag_round_trips(n in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(n)), n);
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Group>(&bytes);
            for v in Version::ALL {
                garbage(&bytes, |h: &FrameHeader, out| h.encode(v, out), |c| FrameHeader::decode(c, v));
            }
        }
    }
}

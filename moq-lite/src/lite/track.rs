//! The Track stream (moq-lite-05+): TRACK asks for a track's properties,
//! TRACK_INFO answers them, then the publisher finishes the stream.
//!
//! A subscriber learns here, once per track, what every later FRAME needs:
//! the timescale of its timestamps, and the publisher's priority and
//! retention (lite-05 section "TRACK_INFO"). A track the publisher does not
//! have is refused by resetting the stream.
//!
//! ```
//! use moq_lite::lite::{Message, TrackInfo, Version};
//!
//! // The reference defaults, length first (shipped notes, section 7).
//! let mut out = Vec::new();
//! TrackInfo::default().encode(Version::Lite05, &mut out).unwrap();
//! assert_eq!(out, [0x06, 0x7f, 0x00, 0x53, 0x88, 0x43, 0xe8]);
//! ```

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{MAX_NAME_LEN, Message, Version};
use crate::coding::{Decode, DecodeError, Encode, EncodeError, decode_string, encode_string};
use crate::model::Path;

/// TRACK: which track's properties the subscriber wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackRequest {
    /// The broadcast path.
    pub broadcast: Path,
    /// The track name, at most [`MAX_NAME_LEN`] bytes.
    pub track: String,
}

impl Message for TrackRequest {
    const NAME: &'static str = "TRACK";

    fn exists_in(version: Version) -> bool {
        version.has_track_stream()
    }

    fn encode_body(&self, _version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.broadcast.encode(buf)?;
        encode_string(&self.track, MAX_NAME_LEN, "track name", buf)
    }

    fn decode_body(buf: &mut Bytes, _version: Version) -> Result<Self, DecodeError> {
        Ok(TrackRequest {
            broadcast: Path::decode(buf)?,
            track: decode_string(buf, MAX_NAME_LEN, "track name")?,
        })
    }
}

/// The timescale the reference publisher uses when it sets none: ticks per
/// second, so timestamps in milliseconds.
pub const DEFAULT_TIMESCALE: u64 = 1000;

/// The timescale of the model's timestamps (microseconds, as WebCodecs):
/// what we state in TRACK_INFO, and what received timestamps are scaled to.
pub const TIMESCALE_MICROS: u64 = 1_000_000;

/// Rescales `timestamp` from `timescale` ticks per second to microseconds,
/// rounding down and saturating.
pub fn to_micros(timestamp: u64, timescale: u64) -> u64 {
    if timescale == TIMESCALE_MICROS || timescale == 0 {
        return timestamp;
    }
    let micros = u128::from(timestamp) * u128::from(TIMESCALE_MICROS) / u128::from(timescale);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

/// TRACK_INFO: the publisher's properties of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Publisher priority; higher is sent first.
    pub priority: u8,
    /// -05 only (-06 has no such byte; it reads as `false` there): the
    /// publisher delivers older groups first. Written as the
    /// browser client does (a bool byte); the shipped Rust peer ignores it.
    pub ordered: bool,
    /// How long the publisher keeps a group (whole milliseconds).
    pub max_age: Duration,
    /// Timestamp ticks per second for this track's frames; never 0.
    pub timescale: u64,
}

impl Default for TrackInfo {
    /// The reference defaults: priority 127, 5 s, milliseconds.
    fn default() -> Self {
        TrackInfo {
            priority: 127,
            ordered: false,
            max_age: Duration::from_millis(5000),
            timescale: DEFAULT_TIMESCALE,
        }
    }
}

impl Message for TrackInfo {
    const NAME: &'static str = "TRACK_INFO";

    fn exists_in(version: Version) -> bool {
        version.has_track_stream()
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if self.timescale == 0 {
            return Err(EncodeError::Invalid("timescale 0"));
        }
        self.priority.encode(buf)?;
        if !version.has_frame_bounds() {
            self.ordered.encode(buf)?;
        }
        let ms = u64::try_from(self.max_age.as_millis()).map_err(|_| EncodeError::TooLarge("max age"))?;
        ms.encode(buf)?;
        self.timescale.encode(buf)
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let info = TrackInfo {
            priority: u8::decode(buf)?,
            // -06 has no Ordered byte.
            ordered: !version.has_frame_bounds() && bool::decode(buf)?,
            max_age: Duration::from_millis(u64::decode(buf)?),
            timescale: u64::decode(buf)?,
        };
        if info.timescale == 0 {
            return Err(DecodeError::Invalid("timescale 0"));
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn track_request_bytes() {
        // Shipped notes, section 13, without the stream type 0x06.
        let msg = TrackRequest {
            broadcast: Path::new("room"),
            track: "video".into(),
        };
        let expected = [
            0x0b, 0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o',
        ];
        check_message(&msg, Version::Lite05, &expected);
        assert!(msg.encode(Version::Lite04, &mut Vec::new()).is_err());
    }

    #[test]
    fn track_info_bytes() {
        // Priority 127, not ordered, 5000 ms (0x5388), timescale 1000 (0x43e8).
        let expected = [0x06, 0x7f, 0x00, 0x53, 0x88, 0x43, 0xe8];
        check_message(&TrackInfo::default(), Version::Lite05, &expected);
        let micro = TrackInfo {
            priority: 0x80,
            ordered: true,
            max_age: Duration::ZERO,
            timescale: 1_000_000,
        };
        // 1_000_000 = 0x800f4240 (four-byte varint).
        check_message(
            &micro,
            Version::Lite05,
            &[0x07, 0x80, 0x01, 0x00, 0x80, 0x0f, 0x42, 0x40],
        );
        let zero = [0x04, 0x7f, 0x00, 0x00, 0x00];
        assert!(
            TrackInfo::decode(&mut &zero[..], Version::Lite05).is_err(),
            "timescale 0"
        );
    }

    #[test]
    fn rescaling() {
        assert_eq!(to_micros(1033, 1000), 1_033_000);
        assert_eq!(to_micros(7, TIMESCALE_MICROS), 7);
        assert_eq!(to_micros(3003, 90_000), 33_366);
        assert_eq!(to_micros(u64::MAX, 1), u64::MAX);
    }

    proptest! {
        #[test]
        fn track_round_trips(broadcast in any_path(), track in any_name(), priority: u8, ordered: bool,
                             ms in 0u64..(1 << 40), timescale in 1u64..(1 << 40)) {
            round_trip(&TrackRequest { broadcast, track }, Version::Lite05)?;
            round_trip(&TrackInfo { priority, ordered, max_age: Duration::from_millis(ms), timescale }, Version::Lite05)?;
        }

        #[test]
        fn track_garbage(bytes in any_bytes()) {
            garbage_message::<TrackRequest>(&bytes);
            garbage_message::<TrackInfo>(&bytes);
        }
    }
}

//! FETCH (moq-lite-03+): request one group of a track, HTTP style.
//!
//! The publisher answers on the same bidirectional stream with FRAMEs and no
//! GROUP header (see [`super::FrameHeader`]), then FINs the stream.

use bytes::{Bytes, BytesMut};

use super::{MAX_NAME_LEN, Message, Version};
use crate::coding::{
    Decode, DecodeError, Encode, EncodeError, decode_opt_seq, decode_string, encode_opt_seq, encode_string,
};
use crate::model::Path;

/// FETCH: the broadcast, track and group to download.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetch {
    /// The broadcast path.
    pub broadcast: Path,
    /// The track name, at most [`MAX_NAME_LEN`] bytes.
    pub track: String,
    /// Subscriber priority; higher is sent first.
    pub priority: u8,
    /// The group sequence to fetch.
    pub group: u64,
    /// -06: the first frame to send.
    pub frame_start: u64,
    /// -06: the last frame to send (inclusive); `None` = to the group's end.
    pub frame_end: Option<u64>,
}

impl Message for Fetch {
    const NAME: &'static str = "FETCH";

    fn exists_in(version: Version) -> bool {
        !version.uses_setup()
    }

    fn encode_body(&self, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.broadcast.encode(buf)?;
        encode_string(&self.track, MAX_NAME_LEN, "track name", buf)?;
        self.priority.encode(buf)?;
        self.group.encode(buf)?;
        if version.has_frame_bounds() {
            if self.frame_end.is_some_and(|end| end < self.frame_start) {
                return Err(EncodeError::Invalid("frame end below frame start"));
            }
            self.frame_start.encode(buf)?;
            encode_opt_seq(self.frame_end, buf)?;
        }
        Ok(())
    }

    fn decode_body(buf: &mut Bytes, version: Version) -> Result<Self, DecodeError> {
        let mut fetch = Fetch {
            broadcast: Path::decode(buf)?,
            track: decode_string(buf, MAX_NAME_LEN, "track name")?,
            priority: u8::decode(buf)?,
            group: u64::decode(buf)?,
            ..Default::default()
        };
        if version.has_frame_bounds() {
            fetch.frame_start = u64::decode(buf)?;
            fetch.frame_end = decode_opt_seq(buf)?;
            if fetch.frame_end.is_some_and(|end| end < fetch.frame_start) {
                return Err(DecodeError::Invalid("frame end below frame start"));
            }
        }
        Ok(fetch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fetch_bytes() {
        let msg = Fetch {
            broadcast: Path::new("b"),
            track: "t".into(),
            priority: 0x80,
            group: 5,
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected = [
            0x06,       // length
            0x01, b'b', // broadcast path (s)
            0x01, b't', // track name (s)
            0x80,       // priority (8): one raw byte, not a varint
            0x05,       // group sequence
        ];
        check_message(&msg, Version::Lite04, &expected);
        check_message(&msg, Version::Lite03, &expected);
        assert_eq!(
            msg.encode(Version::Lite02, &mut Vec::new()),
            Err(EncodeError::Version("FETCH"))
        );
        assert!(Fetch::decode(&mut &expected[..], Version::Lite01).is_err());
    }

    #[test]
    fn long_track_name_is_too_large() {
        let msg = Fetch {
            track: "x".repeat(MAX_NAME_LEN + 1),
            ..Default::default()
        };
        assert!(msg.encode(Version::Lite04, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(broadcast in any_path(), track in any_name(), priority in any::<u8>(), group in any_varint()) {
            let msg = Fetch { broadcast, track, priority, group, ..Default::default() };
            round_trip(&msg, Version::Lite04)?;
            round_trip(&msg, Version::Lite03)?;
            round_trip(&Fetch { frame_start: group % 5, frame_end: Some(group % 5 + 3), ..msg }, Version::Lite06)?;
        }

        #[test]
        fn garbage_never_panics(bytes in any_bytes()) {
            garbage_message::<Fetch>(&bytes);
        }
    }
}

//! The moq-lite wire messages, for every version we speak.
//!
//! moq-lite-05, -04 and -03 are chosen by ALPN; -02 and -01 through the SETUP
//! path (see [`Version`]). Every stream starts with a stream type
//! ([`ControlStream`], [`DataStream`], [`SetupStream`]); the messages that
//! follow are length-prefixed and implement [`Message`], whose `encode` /
//! `decode` take the negotiated [`Version`] and refuse messages the version
//! does not have. Fields a version lacks are left out on encode and take
//! their neutral value on decode (for example the hop list of a -02
//! ANNOUNCE is empty).
//!
//! This module is pure encoding: it checks that values are well-formed and
//! within limits, not that messages arrive in a sensible order. It does no
//! I/O; the session (`Session`'s publisher and subscriber halves) reads and
//! writes these messages on streams.

mod announce;
mod datagram;
mod fetch;
mod goaway;
mod group;
mod message;
mod path;
mod probe;
mod setup;
mod setup_stream;
mod stream;
mod subscribe;
mod track;
mod version;

pub use announce::*;
pub use datagram::*;
pub use fetch::*;
pub use goaway::*;
pub use group::*;
pub use message::*;
pub use probe::*;
pub use setup::*;
pub use setup_stream::*;
pub use stream::*;
pub use subscribe::*;
pub use track::*;
pub use version::*;

#[cfg(test)]
pub(crate) use message::test_util;

/// Byte vectors for moq-lite-05 and -06, from the shipped notes
/// (`shared/specs/lite-06-shipped-notes.md`, section 13: stream types
/// included there, left out here) and derived by hand from sections 5-10.
#[cfg(test)]
mod vectors {
    use std::time::Duration;

    use super::test_util::*;
    use super::*;
    use crate::model::Path;

    fn room_video() -> Subscribe {
        Subscribe {
            id: 0,
            broadcast: Path::new("room"),
            track: "video".into(),
            priority: 0x80,
            ..Default::default()
        }
    }

    #[test]
    fn subscribe_05_and_06() {
        let head = [
            0x00, 0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o', 0x80,
        ];
        // 05: Ordered 0, max age 0, start 0 (latest), end 0.
        let mut lite05 = vec![0x11];
        lite05.extend_from_slice(&head);
        lite05.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
        check_message(&room_video(), Version::Lite05, &lite05);
        // 06: max age 0, floor 0, end 0, frame start 0, frame end 0.
        let mut lite06 = vec![0x12];
        lite06.extend_from_slice(&head);
        lite06.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00]);
        check_message(&room_video(), Version::Lite06, &lite06);
        // 06's Group Start is a raw floor: group 7 is 07, not 08.
        let bounded = Subscribe {
            start_group: Some(7),
            end_group: Some(9),
            frame_start: 2,
            frame_end: Some(4),
            max_latency: Duration::from_millis(5),
            ..room_video()
        };
        let mut lite06 = vec![0x12];
        lite06.extend_from_slice(&head);
        lite06.extend_from_slice(&[0x05, 0x07, 0x0a, 0x02, 0x05]);
        check_message(&bounded, Version::Lite06, &lite06);
        // A frame end without a group end is refused.
        let mut bad = vec![0x12];
        bad.extend_from_slice(&head);
        bad.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x01]);
        assert!(Subscribe::decode(&mut &bad[..], Version::Lite06).is_err());
    }

    #[test]
    fn subscribe_responses() {
        let start = SubscribeResponse::Start(SubscribeStart { group: 7 });
        let end = SubscribeResponse::End(SubscribeEnd { group: 8 });
        let drop = SubscribeResponse::Drop(SubscribeDrop {
            start: 3,
            end: 4,
            error: 0x33,
        });
        for v in [Version::Lite05, Version::Lite06] {
            for (msg, bytes) in [
                (&start, &[0x00, 0x01, 0x07][..]),
                (&end, &[0x01, 0x01, 0x08][..]),
                (&drop, &[0x02, 0x03, 0x03, 0x04, 0x33][..]),
            ] {
                check_bytes(
                    msg,
                    bytes,
                    |m, out| m.encode(v, out),
                    |c| SubscribeResponse::decode(c, v),
                );
            }
            // SUBSCRIBE_OK is gone, and an unknown type is an error.
            assert!(SubscribeOk::default().encode(v, &mut Vec::new()).is_err());
            assert!(SubscribeResponse::decode(&mut &[0x03, 0x00][..], v).is_err());
        }
    }

    #[test]
    fn announces() {
        // 05 ANNOUNCE_REQUEST prefix "", exclude hop 5; 06 has no Exclude Hop.
        let interest = AnnounceInterest {
            prefix: Path::root(),
            exclude_hop: HopId::new(5),
        };
        check_message(&interest, Version::Lite05, &[0x02, 0x00, 0x05]);
        let plain = AnnounceInterest {
            prefix: Path::root(),
            exclude_hop: None,
        };
        check_message(&plain, Version::Lite06, &[0x01, 0x00]);
        // ANNOUNCE_OK hop 5, one active.
        let ok = AnnounceOk {
            hop: HopId::from_wire(5),
            active_count: 1,
        };
        for v in [Version::Lite05, Version::Lite06] {
            check_message(&ok, v, &[0x02, 0x05, 0x01]);
        }
        // 05 ANNOUNCE active `a`, hops [5]; status 2 (restart) reads as active.
        let active = Announce {
            status: AnnounceStatus::Active,
            suffix: Path::new("a"),
            hops: vec![HopId::from_wire(5)],
        };
        check_message(&active, Version::Lite05, &[0x05, 0x01, 0x01, b'a', 0x01, 0x05]);
        let restart = Announce::decode(&mut &[0x05, 0x02, 0x01, b'a', 0x01, 0x05][..], Version::Lite05);
        assert_eq!(restart, Ok(active.clone()));
        assert!(Announce::decode(&mut &[0x05, 0x02, 0x01, b'a', 0x01, 0x05][..], Version::Lite04).is_err());
        // 06 typed: START `a`, no hops, costs 0/0; END 3; RESTART 3 hops [5] costs 1/2.
        let check = |event: AnnounceEvent, bytes: &[u8]| {
            check_bytes(
                &event,
                bytes,
                |e, out| e.encode(Version::Lite06, out),
                |c| AnnounceEvent::decode(c, Version::Lite06),
            )
        };
        let cost = RouteCost::default();
        check(
            AnnounceEvent::Start {
                suffix: Path::new("a"),
                hops: vec![],
                cost,
            },
            &[0x00, 0x05, 0x01, b'a', 0x00, 0x00, 0x00],
        );
        check(AnnounceEvent::End { id: 3 }, &[0x01, 0x01, 0x03]);
        check(
            AnnounceEvent::Restart {
                id: 3,
                hops: vec![HopId::from_wire(5)],
                cost: RouteCost { warm: 1, cold: 2 },
            },
            &[0x02, 0x05, 0x03, 0x01, 0x05, 0x01, 0x02],
        );
        // An unknown type is skipped by its length.
        let mut cursor = &[0x09, 0x02, 0xaa, 0xbb, 0x01][..];
        assert_eq!(
            AnnounceEvent::decode(&mut cursor, Version::Lite06),
            Ok(AnnounceEvent::Unknown(9))
        );
        assert_eq!(cursor, [0x01]);
        // The untyped ANNOUNCE does not exist in 06.
        assert!(active.encode(Version::Lite06, &mut Vec::new()).is_err());
    }

    #[test]
    fn group_fetch_track_info_06() {
        let group = Group {
            subscribe: 0,
            sequence: 7,
            frame_start: 0,
        };
        check_message(&group, Version::Lite05, &[0x02, 0x00, 0x07]);
        check_message(&group, Version::Lite06, &[0x03, 0x00, 0x07, 0x00]);
        let fetch = Fetch {
            broadcast: Path::new("room"),
            track: "video".into(),
            priority: 0,
            group: 7,
            ..Default::default()
        };
        let body = [
            0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o', 0x00, 0x07,
        ];
        let mut lite06 = vec![0x0f];
        lite06.extend_from_slice(&body);
        lite06.extend_from_slice(&[0x00, 0x00]);
        check_message(&fetch, Version::Lite06, &lite06);
        let mut lite05 = vec![0x0d];
        lite05.extend_from_slice(&body);
        check_message(&fetch, Version::Lite05, &lite05);
        // Frame End below Frame Start is refused.
        let mut bad = vec![0x0f];
        bad.extend_from_slice(&body);
        bad.extend_from_slice(&[0x03, 0x02]);
        assert!(Fetch::decode(&mut &bad[..], Version::Lite06).is_err());
        // TRACK_INFO defaults: 05 `06 7f 00 53 88 43 e8`, 06 `05 7f 53 88 43 e8`.
        check_message(
            &TrackInfo::default(),
            Version::Lite06,
            &[0x05, 0x7f, 0x53, 0x88, 0x43, 0xe8],
        );
    }
}

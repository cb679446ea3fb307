//! Protocol versions and how each is negotiated.
//!
//! moq-lite-03, -04 and -05 are chosen by ALPN (raw QUIC) or the WebTransport
//! `wt-protocol` header, with the version string as the token. moq-lite-01 and
//! -02 predate that: they share the ALPN `moql` (or no WebTransport protocol)
//! and pick the version in the SETUP exchange by its 32-bit code, alongside
//! IETF moq-transport draft-14 (see `shared/specs/README.md`).

use std::fmt;

/// The ALPN token (and WebTransport protocol) of the SETUP path.
pub const SETUP_ALPN: &str = "moql";

/// The moq-lite versions chosen inside SETUP (ALPN [`SETUP_ALPN`] or no
/// protocol), preferred first.
pub const SETUP_VERSIONS: [Version; 2] = [Version::Lite02, Version::Lite01];

/// The SETUP version code of IETF moq-transport draft-14, the other version
/// reachable through the SETUP path (`0xff000000 + 14`).
pub const DRAFT_14_CODE: u32 = 0xff00_000e;

/// A moq-lite protocol version.
///
/// Declared newest first; [`Version::ALL`] is the order a client offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// moq-lite-06 as shipped (`lite-06-shipped-notes.md`): typed
    /// announcements with implicit IDs and route costs, frame bounds, Group
    /// Start as a raw floor, no Ordered byte, no Exclude Hop.
    Lite06,
    /// moq-lite-05: a SETUP uni stream each way, TRACK / TRACK_INFO,
    /// SUBSCRIBE_START / SUBSCRIBE_END, ANNOUNCE_OK, per-frame timestamps,
    /// datagrams.
    Lite05,
    /// moq-lite-04: ANNOUNCE_INTEREST with Exclude Hop, hop ID lists, PROBE
    /// with RTT, GOAWAY.
    Lite04,
    /// moq-lite-03: ALPN negotiation, FETCH, PROBE, SUBSCRIBE_DROP, hop counts.
    Lite03,
    /// moq-lite-02: negotiated through SETUP; session stream, ANNOUNCE_INIT.
    Lite02,
    /// moq-lite-01: as -02, but SUBSCRIBE_OK carries the publisher priority.
    Lite01,
}

impl Version {
    /// Every version, in the order a client prefers them.
    pub const ALL: [Version; 6] = [
        Version::Lite06,
        Version::Lite05,
        Version::Lite04,
        Version::Lite03,
        Version::Lite02,
        Version::Lite01,
    ];

    /// The ALPN token / WebTransport protocol that selects this version:
    /// `moq-lite-04`, `moq-lite-03`, or [`SETUP_ALPN`] for -02 and -01, whose
    /// version is then picked in SETUP.
    pub const fn alpn(self) -> &'static str {
        match self {
            Version::Lite06 => "moq-lite-06",
            Version::Lite05 => "moq-lite-05",
            Version::Lite04 => "moq-lite-04",
            Version::Lite03 => "moq-lite-03",
            Version::Lite02 | Version::Lite01 => SETUP_ALPN,
        }
    }

    /// The version whose ALPN token is `alpn`; `None` for [`SETUP_ALPN`]
    /// (the version is chosen later, in SETUP) and for unknown tokens.
    pub fn from_alpn(alpn: &str) -> Option<Version> {
        match alpn {
            "moq-lite-06" => Some(Version::Lite06),
            "moq-lite-05" => Some(Version::Lite05),
            "moq-lite-04" => Some(Version::Lite04),
            "moq-lite-03" => Some(Version::Lite03),
            _ => None,
        }
    }

    /// The 32-bit version code: `0xff0dad00` plus the draft number (lite-02,
    /// section "Session"). Only -01 and -02 are offered in SETUP in practice.
    pub const fn code(self) -> u32 {
        match self {
            Version::Lite06 => 0xff0d_ad06,
            Version::Lite05 => 0xff0d_ad05,
            Version::Lite04 => 0xff0d_ad04,
            Version::Lite03 => 0xff0d_ad03,
            Version::Lite02 => 0xff0d_ad02,
            Version::Lite01 => 0xff0d_ad01,
        }
    }

    /// The version with SETUP code `code`, if it is a moq-lite version.
    pub fn from_code(code: u32) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.code() == code)
    }

    /// Whether this version is negotiated through CLIENT_SETUP / SERVER_SETUP
    /// rather than ALPN.
    pub const fn uses_setup(self) -> bool {
        matches!(self, Version::Lite02 | Version::Lite01)
    }

    /// Announcements carry a list of hop IDs, not only their count (-04+).
    pub const fn has_hop_ids(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05 | Version::Lite04)
    }

    /// ANNOUNCE_INTEREST carries an Exclude Hop (-04, -05; -06 excludes by
    /// the peer's SETUP Hop instead).
    pub const fn has_exclude_hop(self) -> bool {
        matches!(self, Version::Lite05 | Version::Lite04)
    }

    /// PROBE carries an RTT after the bitrate (-04+).
    pub const fn has_probe_rtt(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05 | Version::Lite04)
    }

    /// The Goaway stream exists (-04+).
    pub const fn has_goaway(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05 | Version::Lite04)
    }

    /// Announcements are typed (START, END, RESTART) with implicit IDs and
    /// two route costs (-06+).
    pub const fn has_typed_announces(self) -> bool {
        matches!(self, Version::Lite06)
    }

    /// SUBSCRIBE, SUBSCRIBE_UPDATE, FETCH and GROUP carry frame bounds, Group
    /// Start is a raw floor (0: none) instead of `+ 1`, and the Ordered byte
    /// is gone, from TRACK_INFO too (-06+).
    pub const fn has_frame_bounds(self) -> bool {
        matches!(self, Version::Lite06)
    }

    /// Each endpoint opens a unidirectional Setup stream with one SETUP
    /// message (-05+, lite-05 section "SETUP").
    pub const fn has_setup_stream(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05)
    }

    /// Track streams (TRACK / TRACK_INFO) exist, and every track has a
    /// timescale for its frames' timestamps (-05+).
    pub const fn has_track_stream(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05)
    }

    /// Every FRAME starts with a zigzag timestamp delta, and QUIC datagrams
    /// carry single-frame groups (-05+).
    pub const fn has_timestamps(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05)
    }

    /// The publisher answers an Announce stream with ANNOUNCE_OK first, and
    /// leaves its own hop ID out of the lists that follow (-05+).
    pub const fn has_announce_ok(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05)
    }

    /// The Subscribe stream answers with SUBSCRIBE_START, SUBSCRIBE_END
    /// and SUBSCRIBE_DROP (types 0x0, 0x1, 0x2) instead of SUBSCRIBE_OK, and
    /// a FIN without SUBSCRIBE_END is an error (-05+).
    pub const fn has_subscribe_end(self) -> bool {
        matches!(self, Version::Lite06 | Version::Lite05)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Lite06 => "moq-lite-06",
            Version::Lite05 => "moq-lite-05",
            Version::Lite04 => "moq-lite-04",
            Version::Lite03 => "moq-lite-03",
            Version::Lite02 => "moq-lite-02",
            Version::Lite01 => "moq-lite-01",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_and_codes() {
        assert_eq!(Version::from_alpn("moq-lite-05"), Some(Version::Lite05));
        assert_eq!(Version::from_alpn("moq-lite-04"), Some(Version::Lite04));
        assert_eq!(Version::from_alpn("moq-lite-06-wip"), None, "an older wire");
        assert_eq!(Version::from_alpn("moq-lite-06"), Some(Version::Lite06));
        assert_eq!(Version::Lite06.code(), 0xff0dad06);
        assert_eq!(Version::Lite05.code(), 0xff0dad05);
        assert_eq!(Version::from_alpn("moq-lite-03"), Some(Version::Lite03));
        assert_eq!(Version::from_alpn("moql"), None);
        assert_eq!(Version::from_alpn("moq-00"), None);
        assert_eq!(Version::Lite02.alpn(), "moql");
        assert_eq!(Version::Lite01.alpn(), "moql");
        assert_eq!(Version::from_code(0xff0dad01), Some(Version::Lite01));
        assert_eq!(Version::from_code(0xff0dad02), Some(Version::Lite02));
        assert_eq!(Version::from_code(0xff0dad04), Some(Version::Lite04));
        assert_eq!(Version::from_code(DRAFT_14_CODE), None);
        for v in Version::ALL {
            assert_eq!(Version::from_code(v.code()), Some(v));
            assert_eq!(v.uses_setup(), v.alpn() == SETUP_ALPN);
        }
    }
}

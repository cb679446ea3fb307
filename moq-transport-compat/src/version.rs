//! The moq-transport drafts this crate speaks, and how each is negotiated.
//!
//! Draft-14 is chosen with ALPN `moq-00` or through the SETUP path, where it
//! is the version code 0xff00000e in CLIENT_SETUP / SERVER_SETUP. Drafts 15,
//! 16 to 22 are chosen by ALPN only (`moqt-15` .. `moqt-22`); their setup
//! messages carry no version. Draft-21 is the draft-20 wire (an editorial
//! revision) under its own ALPN.

/// One IETF moq-transport draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Draft {
    /// draft-ietf-moq-transport-14.
    D14,
    /// draft-ietf-moq-transport-15.
    D15,
    /// draft-ietf-moq-transport-16.
    D16,
    /// draft-ietf-moq-transport-17: new varint, uni control streams, one
    /// bidirectional stream per request.
    D17,
    /// draft-ietf-moq-transport-18: no required requests, SUBSCRIBE_NAMESPACE
    /// split from SUBSCRIBE_TRACKS, PUBLISH_OK as REQUEST_OK, delta-coded
    /// fetch IDs, the FIRST_OBJECT subgroup bit, padding, 7-byte integers.
    D18,
    /// draft-ietf-moq-transport-19: GOAWAY without a Request ID, range
    /// filters, a requester's FIN no longer cancels.
    D19,
    /// draft-ietf-moq-transport-20: FETCH takes its range from
    /// LOCATION_FILTER (counted fields), fills replace joining FETCH,
    /// FETCH_OK's End Location is inclusive.
    D20,
    /// draft-ietf-moq-transport-21: the draft-20 wire under its own ALPN.
    D21,
    /// draft-ietf-moq-transport-22: LOCATION_FILTER with an explicit type.
    D22,
}

impl Draft {
    /// Every draft, oldest first.
    pub const ALL: [Draft; 9] = [
        Draft::D14,
        Draft::D15,
        Draft::D16,
        Draft::D17,
        Draft::D18,
        Draft::D19,
        Draft::D20,
        Draft::D21,
        Draft::D22,
    ];

    /// The ALPN token (and WebTransport protocol string) that selects this draft.
    pub const fn alpn(self) -> &'static str {
        match self {
            Draft::D14 => "moq-00",
            Draft::D15 => "moqt-15",
            Draft::D16 => "moqt-16",
            Draft::D17 => "moqt-17",
            Draft::D18 => "moqt-18",
            Draft::D19 => "moqt-19",
            Draft::D20 => "moqt-20",
            Draft::D21 => "moqt-21",
            Draft::D22 => "moqt-22",
        }
    }

    /// The version code sent in CLIENT_SETUP / SERVER_SETUP, where the draft
    /// has one: 0xff000000 + draft number, only draft-14 negotiates in SETUP.
    pub const fn setup_code(self) -> Option<u32> {
        match self {
            Draft::D14 => Some(0xff00_000e),
            _ => None,
        }
    }

    /// The draft an ALPN token selects.
    pub fn from_alpn(alpn: &str) -> Option<Draft> {
        Draft::ALL.into_iter().find(|d| d.alpn() == alpn)
    }

    /// The draft a SETUP version code selects.
    pub fn from_setup_code(code: u32) -> Option<Draft> {
        Draft::ALL.into_iter().find(|d| d.setup_code() == Some(code))
    }

    /// The draft number, e.g. 14.
    pub const fn number(self) -> u8 {
        match self {
            Draft::D14 => 14,
            Draft::D15 => 15,
            Draft::D16 => 16,
            Draft::D17 => 17,
            Draft::D18 => 18,
            Draft::D19 => 19,
            Draft::D20 => 20,
            Draft::D21 => 21,
            Draft::D22 => 22,
        }
    }

    /// The integer every field is written with: QUIC varints until draft-16,
    /// the leading-ones [`moq_lite::coding::Vi64`] from draft-17, with its
    /// 7-byte form from draft-18.
    pub const fn ints(self) -> moq_lite::coding::IntEncoding {
        match self {
            Draft::D14 | Draft::D15 | Draft::D16 => moq_lite::coding::IntEncoding::Quic,
            Draft::D17 => moq_lite::coding::IntEncoding::Vi64,
            _ => moq_lite::coding::IntEncoding::Vi64Full,
        }
    }

    /// Whether key-value-pair types are delta-coded (draft-16 onwards).
    pub const fn delta_kvp(self) -> bool {
        self.at_least(Draft::D16)
    }

    /// Whether each request runs on its own bidirectional stream and the
    /// session starts with SETUP (0x2F00) on unidirectional control streams
    /// (draft-17 onwards). Such drafts have no MAX_REQUEST_ID,
    /// REQUESTS_BLOCKED, UNSUBSCRIBE, FETCH_CANCEL or PUBLISH_NAMESPACE_DONE:
    /// closing a request's stream says it.
    pub const fn request_streams(self) -> bool {
        self.at_least(Draft::D17)
    }

    /// Whether requests carry a Required Request ID Delta and wait for the
    /// request it names (draft-17 only; draft-18 removed it).
    pub const fn required_request_ids(self) -> bool {
        matches!(self, Draft::D17)
    }

    /// Whether SUBSCRIBE_NAMESPACE (0x50, namespaces only) and
    /// SUBSCRIBE_TRACKS (0x51, PUBLISH for each track) are separate requests
    /// (draft-18 onwards; before, one 0x11 with Subscribe Options).
    pub const fn split_namespace_requests(self) -> bool {
        self.at_least(Draft::D18)
    }

    /// Whether PUBLISH is accepted with REQUEST_OK rather than PUBLISH_OK,
    /// and REQUEST_OK carries Track Properties and REQUEST_ERROR a Redirect
    /// (draft-18 onwards).
    pub const fn request_ok_for_publish(self) -> bool {
        self.at_least(Draft::D18)
    }

    /// Whether a control-stream GOAWAY carries a Request ID (draft-18 only:
    /// draft-19 removed it again).
    pub const fn goaway_request_id(self) -> bool {
        matches!(self, Draft::D18)
    }

    /// Whether Track Properties 0x4000-0x7FFF are mandatory (draft-18
    /// "Mandatory Track Properties"): a track with one its receiver does
    /// not know must not be taken, forwarded or cached.
    pub const fn mandatory_properties(self) -> bool {
        self.at_least(Draft::D18)
    }

    /// Whether fetch objects carry Group and Object ID deltas, subgroup
    /// headers a FIRST_OBJECT bit (0x40), and padding streams and datagrams
    /// exist (draft-18 onwards).
    pub const fn data_plane_18(self) -> bool {
        self.at_least(Draft::D18)
    }

    /// Whether a requester's FIN on its request stream cancels the request
    /// (drafts 17 and 18; from 19 only a reset or STOP_SENDING cancels, and
    /// a FIN is a graceful end of that side).
    pub const fn fin_cancels(self) -> bool {
        !self.at_least(Draft::D19)
    }

    /// Whether the range filter parameters (0x25 to 0x29) exist (draft-19
    /// onwards).
    pub const fn range_filters(self) -> bool {
        self.at_least(Draft::D19)
    }

    /// Whether LOCATION_FILTER is the counted-field form of draft-20 (or
    /// the typed form of draft-22), FETCH carries its range in it instead of
    /// a Fetch Type, FETCH_OK's End Location is inclusive, SUBSCRIBE can ask
    /// for a fill (FILL_PARAMETERS), and PUBLISH_STATE_NOTIFY exists
    /// (draft-20 onwards).
    pub const fn filtered_fetch(self) -> bool {
        self.at_least(Draft::D20)
    }

    /// Whether LOCATION_FILTER starts with a Location Filter Type and has no
    /// length of its own (draft-22 onwards).
    pub const fn typed_location_filter(self) -> bool {
        self.at_least(Draft::D22)
    }

    /// Whether SUBSCRIBE_NAMESPACE opens its own bidirectional stream,
    /// answered with NAMESPACE / NAMESPACE_DONE (draft-16 onwards).
    pub const fn namespace_streams(self) -> bool {
        self.at_least(Draft::D16)
    }

    /// Whether `self` is `other` or newer. (Decisions name what changed,
    /// as the methods above do, and compare drafts with this.)
    pub const fn at_least(self, other: Draft) -> bool {
        self as u8 >= other as u8
    }
}

impl std::fmt::Display for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "draft-ietf-moq-transport-{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        for d in Draft::ALL {
            assert_eq!(Draft::from_alpn(d.alpn()), Some(d));
        }
        assert_eq!(Draft::from_alpn("moq-lite-04"), None);
        assert_eq!(Draft::from_setup_code(0xff00000e), Some(Draft::D14));
        assert_eq!(Draft::from_setup_code(0xff00000f), None);
        assert_eq!(Draft::D15.setup_code(), None);
        assert_eq!(Draft::D17.to_string(), "draft-ietf-moq-transport-17");
        assert_eq!(Draft::from_alpn("moqt-18"), Some(Draft::D18));
        assert!(Draft::D17.required_request_ids() && !Draft::D18.required_request_ids());
        assert_eq!(Draft::from_alpn("moqt-22"), Some(Draft::D22));
        assert!(Draft::D18.goaway_request_id() && !Draft::D19.goaway_request_id());
        assert!(Draft::D21.filtered_fetch() && !Draft::D21.typed_location_filter());
    }
}

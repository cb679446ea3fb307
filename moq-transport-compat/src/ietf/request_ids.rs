//! Request IDs of one IETF session, both directions, as a pure state
//! machine: its methods say what to do (refuse, grant more with
//! MAX_REQUEST_ID, wait, send REQUESTS_BLOCKED) and send nothing, so every
//! draft rule is unit-tested here without a session.
//!
//! The rules (draft-15/16 section "Request ID"; draft-14 alike): client IDs
//! are even and server IDs odd, each side counting up by 2; a request at or
//! over the Maximum Request ID granted is TOO_MANY_REQUESTS. Drafts 14 and 15
//! carry every request on the control stream, so each must be "the next in
//! sequence". From draft-16 requests also come on their own streams and may
//! be read out of order, so duplicates are found among the IDs seen instead;
//! draft-17 grants no maximum (stream limits bound requests).

use std::collections::BTreeSet;

use crate::Draft;

/// Request IDs granted to the peer at a time.
pub(super) const REQUEST_WINDOW: u64 = 1024;

/// Drafts 16+: how far (in IDs) a peer request ID may get ahead of the
/// lowest one not yet seen before that one is given up on. A request whose
/// stream the peer reset before we read it leaves a gap that never fills;
/// the IDs seen above the gap are remembered (for duplicate detection), so
/// this bounds that memory. Giving up moves the low-water mark past the gap
/// (a late duplicate of an ID under it then reads as one), and never ends
/// the session: draft-17 closes it only for a wrong parity or a duplicate.
pub(super) const MAX_REQUEST_SPAN: u64 = 16 * REQUEST_WINDOW;

/// Why a peer's Request ID is refused; each closes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestIdError {
    /// Even from the server or odd from the client (INVALID_REQUEST_ID).
    WrongParity,
    /// Drafts 14 and 15: not the next in sequence (INVALID_REQUEST_ID).
    OutOfSequence,
    /// Drafts 16+: an ID already used (INVALID_REQUEST_ID).
    Duplicate,
    /// At or over the maximum we granted (TOO_MANY_REQUESTS).
    OverMaximum,
}

/// What taking our next Request ID came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// Use this ID.
    Id(u64),
    /// Blocked by the peer's maximum: wait for MAX_REQUEST_ID, after
    /// sending REQUESTS_BLOCKED with this maximum if `Some` (once per
    /// maximum).
    Blocked(Option<u64>),
}

/// Both directions' Request IDs.
#[derive(Debug)]
pub(super) struct RequestIds {
    draft: Draft,
    /// Our next Request ID.
    next: u64,
    /// Whether REQUESTS_BLOCKED was sent for the current maximum.
    blocked_sent: bool,
    /// One past the highest peer Request ID used (plus 2), or its first.
    peer_next: u64,
    /// Drafts 16+: every peer Request ID below this was used.
    peer_low: u64,
    /// Drafts 16+: the peer Request IDs used at or above `peer_low`.
    peer_seen: BTreeSet<u64>,
    /// The Maximum Request ID we granted the peer.
    granted: u64,
}

impl RequestIds {
    /// A new session's IDs: we are the client or the server.
    pub fn new(draft: Draft, client: bool) -> Self {
        let (ours, theirs) = if client { (0, 1) } else { (1, 0) };
        RequestIds {
            draft,
            next: ours,
            blocked_sent: false,
            peer_next: theirs,
            peer_low: theirs,
            peer_seen: BTreeSet::new(),
            granted: if draft.request_streams() {
                u64::MAX
            } else {
                REQUEST_WINDOW
            },
        }
    }

    /// Takes our next Request ID, if the peer's maximum `limit` allows.
    pub fn take(&mut self, limit: u64) -> Take {
        if self.next < limit {
            let id = self.next;
            self.next += 2;
            self.blocked_sent = false;
            return Take::Id(id);
        }
        let report = !std::mem::replace(&mut self.blocked_sent, true);
        Take::Blocked(report.then_some(limit))
    }

    /// Checks a Request ID the peer used and records it. `Ok(Some(max))`:
    /// send MAX_REQUEST_ID `max`, the window having run half out.
    pub fn accept(&mut self, id: u64) -> Result<Option<u64>, RequestIdError> {
        if id % 2 != self.peer_next % 2 {
            return Err(RequestIdError::WrongParity);
        }
        if self.draft < Draft::D16 {
            if id != self.peer_next {
                return Err(RequestIdError::OutOfSequence);
            }
        } else {
            if self.recorded(id) {
                return Err(RequestIdError::Duplicate);
            }
            if id - self.peer_low >= MAX_REQUEST_SPAN {
                // Give up on the gaps at the bottom (see MAX_REQUEST_SPAN).
                let floor = id - MAX_REQUEST_SPAN + 2;
                let floor = floor - floor % 2 + self.peer_low % 2;
                self.peer_seen = self.peer_seen.split_off(&floor);
                self.peer_low = floor;
            }
        }
        if id >= self.granted {
            return Err(RequestIdError::OverMaximum);
        }
        self.peer_next = self.peer_next.max(id + 2);
        let granted_from = match self.draft {
            Draft::D14 | Draft::D15 => id,
            _ => {
                self.peer_seen.insert(id);
                while self.peer_seen.remove(&self.peer_low) {
                    self.peer_low += 2;
                }
                // Grant from the low-water mark, so the IDs seen above it
                // (at most half the window) bound the set.
                self.peer_low
            }
        };
        if self.granted != u64::MAX && self.granted.saturating_sub(granted_from) <= REQUEST_WINDOW / 2 {
            self.granted = granted_from + REQUEST_WINDOW;
            return Ok(Some(self.granted));
        }
        Ok(None)
    }

    /// The peer's next Request ID: the smallest one we have not seen and
    /// will not have processed (draft-18's GOAWAY Request ID).
    pub fn peer_next(&self) -> u64 {
        self.peer_next
    }

    /// Whether `id` is a request the peer has made.
    pub fn peer_used(&self, id: u64) -> bool {
        if id % 2 != self.peer_next % 2 || id >= self.peer_next {
            return false;
        }
        self.draft < Draft::D16 || id < self.peer_low || self.peer_seen.contains(&id)
    }

    /// Drafts 16+: whether `id` was recorded by [`Self::accept`] (below
    /// the low-water mark or seen above it), whatever its parity.
    pub fn recorded(&self, id: u64) -> bool {
        id < self.peer_low || self.peer_seen.contains(&id)
    }

    /// Whether `id` could be a new peer request: of the peer's parity and
    /// not recorded yet.
    pub fn fresh(&self, id: u64) -> bool {
        id % 2 == self.peer_next % 2 && !self.recorded(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's view of a client's IDs.
    fn server(draft: Draft) -> RequestIds {
        RequestIds::new(draft, false)
    }

    #[test]
    fn our_ids_count_by_two_from_our_parity() {
        let mut client = RequestIds::new(Draft::D16, true);
        assert_eq!(client.take(100), Take::Id(0));
        assert_eq!(client.take(100), Take::Id(2));
        let mut server = RequestIds::new(Draft::D16, false);
        assert_eq!(server.take(100), Take::Id(1));
        assert_eq!(server.take(100), Take::Id(3));
    }

    #[test]
    fn blocked_is_reported_once_per_maximum() {
        let mut ids = RequestIds::new(Draft::D15, true);
        assert_eq!(ids.take(2), Take::Id(0));
        assert_eq!(ids.take(2), Take::Blocked(Some(2)));
        assert_eq!(ids.take(2), Take::Blocked(None));
        // A new maximum: the ID is taken, and a later block is reported again.
        assert_eq!(ids.take(4), Take::Id(2));
        assert_eq!(ids.take(4), Take::Blocked(Some(4)));
    }

    #[test]
    fn the_peer_must_use_its_own_parity() {
        for draft in Draft::ALL {
            assert_eq!(
                server(draft).accept(1),
                Err(RequestIdError::WrongParity),
                "{draft:?}"
            );
            assert_eq!(
                RequestIds::new(draft, true).accept(0),
                Err(RequestIdError::WrongParity)
            );
        }
    }

    #[test]
    fn drafts_14_and_15_want_the_next_in_sequence() {
        for draft in [Draft::D14, Draft::D15] {
            let mut ids = server(draft);
            assert_eq!(ids.accept(0), Ok(None));
            assert_eq!(ids.accept(4), Err(RequestIdError::OutOfSequence));
            assert_eq!(ids.accept(0), Err(RequestIdError::OutOfSequence));
            assert_eq!(ids.accept(2), Ok(None));
        }
    }

    #[test]
    fn from_draft_16_order_is_free_but_duplicates_are_not() {
        for draft in [Draft::D16, Draft::D17] {
            let mut ids = server(draft);
            assert_eq!(ids.accept(4), Ok(None));
            assert_eq!(ids.accept(0), Ok(None));
            assert_eq!(ids.accept(4), Err(RequestIdError::Duplicate));
            assert_eq!(ids.accept(0), Err(RequestIdError::Duplicate));
            assert!(ids.peer_used(4) && ids.peer_used(0) && !ids.peer_used(2));
            assert!(ids.fresh(2) && !ids.fresh(4) && !ids.fresh(3));
            assert_eq!(ids.accept(2), Ok(None));
            // 0, 2, 4 all seen: the set is folded into the low-water mark.
            assert!(ids.peer_seen.is_empty());
            assert_eq!(ids.peer_low, 6);
        }
    }

    #[test]
    fn ids_at_the_maximum_are_too_many() {
        // From draft-16 an ID may skip ahead: up to the maximum, not to it.
        let mut ids = server(Draft::D16);
        assert_eq!(ids.accept(REQUEST_WINDOW - 2), Ok(None));
        assert_eq!(ids.accept(REQUEST_WINDOW), Err(RequestIdError::OverMaximum));
        // Draft-17 grants no maximum.
        assert_eq!(server(Draft::D17).accept(REQUEST_WINDOW), Ok(None));
    }

    #[test]
    fn more_is_granted_when_half_the_window_is_used() {
        for draft in [Draft::D14, Draft::D16] {
            let mut ids = server(draft);
            let mut grants = Vec::new();
            for id in (0..REQUEST_WINDOW).step_by(2) {
                if let Some(max) = ids.accept(id).unwrap() {
                    grants.push((id, max));
                }
            }
            // The first grant comes once half the window is used, and moves
            // the maximum a window past the lowest ID not yet used: 512 in
            // draft-14 (the ID just used), 510 + 2 from draft-16 (the
            // low-water mark, once 510 filled it).
            let half = REQUEST_WINDOW / 2;
            let first = if draft == Draft::D14 { half } else { half - 2 };
            assert_eq!(grants[0], (first, half + REQUEST_WINDOW), "{draft:?}");
            let mut d17 = server(Draft::D17);
            assert_eq!(d17.accept(half), Ok(None));
        }
    }

    #[test]
    fn a_gap_that_never_fills_is_given_up_after_the_span() {
        let mut ids = server(Draft::D17);
        // ID 0 never arrives (its stream was reset); later ones do.
        for id in (2..MAX_REQUEST_SPAN + 10).step_by(2) {
            assert_eq!(ids.accept(id), Ok(None), "{id}");
        }
        // The memory of IDs seen is bounded by the span, and the gap was
        // given up: 0 now reads as used.
        assert!(ids.peer_seen.len() as u64 <= MAX_REQUEST_SPAN / 2);
        assert_eq!(ids.accept(0), Err(RequestIdError::Duplicate));
    }
}

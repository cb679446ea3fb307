//! Backfill: the older groups of a track a session already feeds.
//!
//! A relay subscribes upstream once per track, from the start its first
//! requester asked for (the live edge by default). A later subscriber may ask
//! for an earlier start: the groups between that start and what the upstream
//! subscription covers are then asked for separately (a FETCH per group) by
//! the session feeding the track, and land in its cache like any other group.
//! Consumers whose start is early enough read them; those at the live edge
//! never see them.
//!
//! [`Backfill`] is the decision alone, without I/O or locks: what to ask for,
//! asked once; and which consumers wait for the answer, so that they read the
//! older groups before the newer ones (delivery follows arrival).

use std::collections::VecDeque;
use std::ops::Range;

/// At most this many groups are asked for in one backfill, the newest of the
/// range: a subscriber asking for a start far in the past gets what a live
/// cache can plausibly hold, and learns of the rest as skipped groups.
pub(crate) const MAX_BACKFILL_GROUPS: u64 = 256;

/// A track's backfill state (held under the track's lock).
#[derive(Debug, Default)]
pub(crate) struct Backfill {
    /// The earliest start any consumer asked for.
    wanted: Option<u64>,
    /// Whether the producer side answers backfill requests, and from where
    /// its peer already sends groups: `Some(None)` until the first group
    /// tells (a subscription at the live edge), `Some(Some(n))` once known.
    covered: Option<Option<u64>>,
    /// Ranges decided on, not yet taken by the producer side.
    queued: VecDeque<Range<u64>>,
    /// Backfill ranges decided on and not yet answered.
    in_flight: usize,
    /// The highest end of the ranges in flight: a consumer starting below it
    /// waits for them before reading.
    holding_below: u64,
    /// The track is fed by a session (made on request), so groups it does
    /// not hold may still come.
    fed: bool,
    /// The groups backfills were answered for (fully or not): contiguous,
    /// as each range ends where the previous one started.
    answered: Option<Range<u64>>,
}

impl Backfill {
    /// A consumer asks for groups from `start`. Returns whether this lowers
    /// the earliest start asked for.
    pub fn want(&mut self, start: u64) -> bool {
        if self.wanted.is_some_and(|w| w <= start) {
            return false;
        }
        self.wanted = Some(start);
        true
    }

    /// The track is fed by a session: groups it lacks may still come.
    pub fn fed(&mut self) {
        self.fed = true;
    }

    /// The earliest start any consumer asked for (`None`: the live edge).
    pub fn wanted(&self) -> Option<u64> {
        self.wanted
    }

    /// The producer side subscribed upstream from `from` (`None`: the live
    /// edge) and answers backfill requests from now on.
    pub fn serve(&mut self, from: Option<u64>) {
        self.covered = Some(from);
    }

    /// Whether the first group to arrive tells what the subscription covers
    /// (and someone wants older groups): then it is time to [`plan`](Self::plan).
    pub fn awaits_first_group(&self) -> bool {
        self.wanted.is_some() && self.covered == Some(None)
    }

    /// Decides what to ask for now ([`next`](Self::next)) and queues it for
    /// the producer side. Returns whether something was queued.
    pub fn plan(&mut self, oldest_held: Option<u64>, floor: Option<u64>) -> bool {
        match self.next(oldest_held, floor) {
            Some(range) => {
                self.queued.push_back(range);
                true
            }
            None => false,
        }
    }

    /// The next range for the producer side to fetch.
    pub fn take(&mut self) -> Option<Range<u64>> {
        self.queued.pop_front()
    }

    /// The groups to ask for now, if any: from the earliest start wanted (no
    /// lower than just above `floor`, the newest group the cache evicted,
    /// and at most [`MAX_BACKFILL_GROUPS`]) up to what is covered or held
    /// (`oldest_held`). Each group is asked for once: the range counts as
    /// covered and in flight until [`done`](Self::done).
    pub fn next(&mut self, oldest_held: Option<u64>, floor: Option<u64>) -> Option<Range<u64>> {
        let covered = self.covered?;
        let have = match (covered, oldest_held) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        let start = self
            .wanted?
            .max(floor.map_or(0, |f| f.saturating_add(1)))
            .max(have.saturating_sub(MAX_BACKFILL_GROUPS));
        if start >= have {
            // Nothing is missing; what is covered is at least known now.
            self.covered = Some(Some(have));
            return None;
        }
        self.covered = Some(Some(start));
        self.in_flight += 1;
        self.holding_below = self.holding_below.max(have);
        Some(start..have)
    }

    /// `range`, from [`next`](Self::next), was answered (fully or not).
    /// Returns whether none is in flight any more.
    pub fn done(&mut self, range: Range<u64>) -> bool {
        self.answered = Some(match self.answered.take() {
            Some(answered) => answered.start.min(range.start)..answered.end.max(range.end),
            None => range,
        });
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.holding_below = 0;
        }
        self.in_flight == 0
    }

    /// Whether group `sequence`, not held now, may still come: the track is
    /// fed by a session, and no backfill that asked for it is over (one in
    /// flight is waited for). Without a backfill, what the subscription
    /// brings is unknown: callers bound the wait.
    pub fn may_come(&self, sequence: u64) -> bool {
        if !self.fed {
            return false;
        }
        if self.holds(Some(sequence)) {
            return true;
        }
        !self.answered.as_ref().is_some_and(|a| a.contains(&sequence))
    }

    /// Whether a consumer starting at `start` waits before reading: older
    /// groups it wants are on their way, or the first group has yet to tell
    /// whether they will be asked for.
    pub fn holds(&self, start: Option<u64>) -> bool {
        let Some(start) = start else {
            return false;
        };
        (self.in_flight > 0 && start < self.holding_below)
            || (self.covered == Some(None) && self.wanted.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_asked_for_until_the_producer_serves_backfill() {
        let mut b = Backfill::default();
        assert!(b.want(3));
        assert_eq!(b.next(Some(10), None), None);
        // A later, earlier start lowers what the subscription will ask for.
        assert!(b.want(2));
        assert!(!b.want(5));
        assert_eq!(b.wanted(), Some(2));
    }

    #[test]
    fn a_start_below_the_subscription_asks_for_the_gap_once() {
        let mut b = Backfill::default();
        b.serve(Some(7));
        assert_eq!(b.next(Some(7), None), None, "nobody wants older groups");
        b.want(4);
        assert_eq!(b.next(Some(9), None), Some(4..7));
        assert_eq!(b.next(Some(9), None), None, "asked once");
        b.want(1);
        assert_eq!(b.next(Some(4), None), Some(1..4));
    }

    #[test]
    fn a_live_edge_subscription_learns_its_start_from_the_first_group() {
        let mut b = Backfill::default();
        b.serve(None);
        assert!(!b.awaits_first_group());
        b.want(0);
        assert!(b.awaits_first_group());
        assert_eq!(b.next(None, None), None, "no group yet");
        assert_eq!(b.next(Some(12), None), Some(0..12));
        assert!(!b.awaits_first_group());
    }

    #[test]
    fn a_start_already_covered_asks_nothing() {
        let mut b = Backfill::default();
        b.want(5);
        b.serve(Some(5));
        assert_eq!(b.next(Some(6), None), None);
        assert_eq!(b.next(None, None), None);
    }

    #[test]
    fn evicted_groups_and_the_far_past_are_not_asked_for() {
        let mut b = Backfill::default();
        b.serve(Some(20));
        b.want(0);
        assert_eq!(b.next(Some(20), Some(14)), Some(15..20));

        let mut b = Backfill::default();
        b.serve(Some(1000));
        b.want(0);
        assert_eq!(b.next(Some(1000), None), Some(1000 - MAX_BACKFILL_GROUPS..1000));

        let mut b = Backfill::default();
        b.serve(Some(20));
        b.want(0);
        assert_eq!(b.next(Some(20), Some(19)), None, "everything below was evicted");
    }

    #[test]
    fn a_group_may_come_until_a_backfill_asking_for_it_is_answered() {
        let mut b = Backfill::default();
        assert!(!b.may_come(3), "a local track holds all it has");
        b.fed();
        assert!(b.may_come(3), "the subscription may bring it");
        b.serve(Some(10));
        b.want(2);
        assert!(b.plan(Some(10), None));
        let range = b.take().unwrap();
        assert!(b.may_come(3), "in flight");
        b.done(range);
        assert!(!b.may_come(3), "asked for and not brought");
        assert!(b.may_come(12), "newer groups may still come");
    }

    #[test]
    fn planned_ranges_queue_for_the_producer_in_order() {
        let mut b = Backfill::default();
        b.serve(Some(10));
        assert!(!b.plan(Some(10), None));
        b.want(6);
        assert!(b.plan(Some(10), None));
        b.want(3);
        assert!(b.plan(Some(10), None));
        assert_eq!(b.take(), Some(6..10));
        assert_eq!(b.take(), Some(3..6));
        assert_eq!(b.take(), None);
    }

    #[test]
    fn explicit_starts_wait_for_the_first_group_of_a_live_edge_subscription() {
        let mut b = Backfill::default();
        b.serve(None);
        b.want(4);
        assert!(b.holds(Some(4)));
        assert!(!b.holds(None));
        // The first group is older than the start: nothing to fetch.
        assert!(!b.plan(Some(2), None));
        assert!(!b.holds(Some(4)));
    }

    #[test]
    fn consumers_wanting_the_range_wait_until_it_is_answered() {
        let mut b = Backfill::default();
        b.serve(Some(10));
        b.want(5);
        assert!(!b.holds(Some(5)));
        assert_eq!(b.next(Some(10), None), Some(5..10));
        assert!(b.holds(Some(5)));
        assert!(b.holds(Some(9)));
        assert!(!b.holds(Some(10)), "a start at what was covered does not wait");
        assert!(!b.holds(None), "the live edge never waits");
        b.want(2);
        assert_eq!(b.next(Some(5), None), Some(2..5));
        assert!(!b.done(0..0));
        assert!(b.holds(Some(7)));
        assert!(b.done(0..0));
        assert!(!b.holds(Some(2)));
    }
}

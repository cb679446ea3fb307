//! When to let a peer open more streams at once: [`StreamLimit`].
//!
//! quinn keeps state for every stream the peer is allowed to open, opened
//! or not (`StreamsState` fills its maps up to the limit when the
//! connection starts, and refills them as streams end). With the limits a
//! busy connection needs (128 bidirectional, 256 unidirectional) that was
//! about 17 KiB per connection, most of an idle relay connection. So a
//! connection starts with small limits and raises them as the peer uses
//! them, the way flow-control windows grow. This is the decision, without
//! I/O; [`super::QuicSession`] counts the streams and tells quinn.

/// The concurrent-stream limit we grant the peer in one direction, and the
/// rule for raising it.
///
/// The rule: once the streams the peer has open reach half the limit, the
/// limit doubles (up to the configured maximum). The peer is blocked only
/// when it opens the whole limit within about one round trip of reaching
/// half of it; a burst then waits one round trip per doubling, as TCP slow
/// start does. The limit never falls: quinn's maps do not shrink, so
/// lowering it would save nothing, and a peer that once needed many
/// streams is likely to need them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamLimit {
    /// What the peer may have open now (what quinn was last told).
    limit: u64,
    /// The most it may ever have open.
    max: u64,
    /// Streams the peer opened that are not closed yet.
    open: u64,
}

impl StreamLimit {
    /// A peer that starts with `initial` streams and may grow to `max`. An
    /// `initial` above `max` is lowered to it: `max` is a hard bound (the
    /// relay's `--quic-max-*-streams`). An initial limit of 0 never grows,
    /// since the peer cannot open the stream that would raise it.
    pub fn new(initial: u64, max: u64) -> Self {
        Self {
            limit: initial.min(max),
            max,
            open: 0,
        }
    }

    /// The limit the peer was last granted.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Streams counted open.
    pub fn open(&self) -> u64 {
        self.open
    }

    /// The peer opened a stream. Returns the new limit to grant when it
    /// rises, `None` when it stays.
    pub fn opened(&mut self) -> Option<u64> {
        self.open += 1;
        if self.limit >= self.max || self.open.saturating_mul(2) < self.limit {
            return None;
        }
        // Doubling from what is open, not only from the old limit, keeps
        // the headroom when the count ran past the limit (streams quinn
        // already freed but whose handles we still hold).
        self.limit = self.limit.max(self.open).saturating_mul(2).clamp(1, self.max);
        Some(self.limit)
    }

    /// A stream the peer opened is closed (its handles dropped).
    pub fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `n` streams; the limits granted along the way.
    fn open(limit: &mut StreamLimit, n: u64) -> Vec<u64> {
        (0..n).filter_map(|_| limit.opened()).collect()
    }

    #[test]
    fn doubles_at_half_the_limit() {
        let mut limit = StreamLimit::new(16, 256);
        assert_eq!(open(&mut limit, 7), Vec::<u64>::new());
        assert_eq!(limit.opened(), Some(32), "8 open of 16");
        assert_eq!(open(&mut limit, 7), Vec::<u64>::new());
        assert_eq!(limit.opened(), Some(64), "16 open of 32");
        assert_eq!(limit.limit(), 64);
        assert_eq!(limit.open(), 16);
    }

    #[test]
    fn stops_at_the_maximum() {
        let mut limit = StreamLimit::new(16, 100);
        assert_eq!(open(&mut limit, 200), vec![32, 64, 100]);
        assert_eq!(limit.limit(), 100);
    }

    #[test]
    fn an_initial_limit_above_the_maximum_is_the_maximum() {
        let mut limit = StreamLimit::new(16, 8);
        assert_eq!(limit.limit(), 8);
        assert_eq!(open(&mut limit, 8), Vec::<u64>::new());
    }

    #[test]
    fn zero_stays_zero() {
        let limit = StreamLimit::new(0, 0);
        assert_eq!(limit.limit(), 0);
        let limit = StreamLimit::new(0, 128);
        assert_eq!(limit.limit(), 0);
    }

    #[test]
    fn a_limit_of_one_grows() {
        let mut limit = StreamLimit::new(1, 4);
        assert_eq!(limit.opened(), Some(2));
        assert_eq!(limit.opened(), Some(4));
        assert_eq!(limit.opened(), None);
    }

    #[test]
    fn streams_that_come_and_go_never_raise_it() {
        // A live track: a group or two in flight at a time, forever.
        let mut limit = StreamLimit::new(16, 256);
        for _ in 0..10_000 {
            assert_eq!(limit.opened(), None);
            assert_eq!(limit.opened(), None);
            limit.closed();
            limit.closed();
        }
        assert_eq!(limit.limit(), 16);
        assert_eq!(limit.open(), 0);
    }

    #[test]
    fn never_falls() {
        let mut limit = StreamLimit::new(4, 64);
        open(&mut limit, 20);
        let raised = limit.limit();
        for _ in 0..20 {
            limit.closed();
        }
        assert_eq!(limit.limit(), raised);
        // Closing more than was opened does not wrap.
        limit.closed();
        assert_eq!(limit.open(), 0);
    }

    #[test]
    fn a_count_past_the_limit_still_leaves_headroom() {
        // quinn frees a stream before the application drops its handle, so
        // the count may pass the limit; the next limit is twice the count.
        let mut limit = StreamLimit::new(4, 1000);
        limit.open = 10;
        assert_eq!(limit.opened(), Some(22));
    }

    #[test]
    fn below_the_maximum_the_peer_may_open_as_many_again() {
        // The headroom that lets a burst continue while MAX_STREAMS travels.
        for initial in 1..40 {
            for max in initial..80 {
                let mut limit = StreamLimit::new(initial, max);
                for _ in 0..max {
                    limit.opened();
                    assert!(
                        limit.limit() == max || 2 * limit.open() <= limit.limit(),
                        "{initial}..{max}: {limit:?}"
                    );
                }
            }
        }
    }
}

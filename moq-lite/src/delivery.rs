//! Delivery policy shared by every protocol that serves this crate's model.
//!
//! A session of any protocol family (moq-lite here, IETF moq-transport in
//! `moq-transport-compat`) sends each group of a subscription on its own
//! unidirectional stream. How those streams compete for the connection is the
//! same policy whatever the wire format: [`stream_priority`] orders them, and
//! at most [`MAX_INFLIGHT_GROUPS`] are in flight per subscription, tracked by
//! [`InflightGroups`], which also says which to reset when they fall behind:
//! by arrival age ([`InflightGroups::expire`]) and, where frames carry
//! timestamps (moq-lite-05+), by media age
//! ([`InflightGroups::expire_by_timestamp`]), whichever comes first.
//!
//! This module is pure: no I/O, no protocol messages.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Group streams one subscription may have in flight. A subscriber that
/// stops reading stops granting streams, and each waiting group pins its
/// data: past this, live subscriptions drop their oldest group (the newest
/// matter most) and ordered ones stop taking groups until one completes (the
/// cache then evicts what they miss). Sessions of other protocols on the
/// same model use the same bound.
pub const MAX_INFLIGHT_GROUPS: usize = 32;

/// The QUIC send priority of a group stream: subscriber priority first,
/// publisher priority to break ties, then newer groups first (older first when
/// the subscriber asked for ordered delivery). Higher is sent first.
///
/// The one policy for every protocol on this model: a protocol whose
/// subscriber priority runs the other way (IETF: lower first) passes it
/// inverted.
pub fn stream_priority(subscriber: u8, publisher: u8, sequence: u64, ordered: bool) -> i32 {
    // 8 + 8 + 15 bits: always positive in an i32. The sequence part wraps,
    // which only matters for groups 32768 apart, long expired by then.
    let age = (sequence & 0x7FFF) as i32;
    let age = if ordered { 0x7FFF - age } else { age };
    (i32::from(subscriber) << 23) | (i32::from(publisher) << 15) | age
}

/// The group streams of one subscription still in flight, by group
/// sequence, with when each was sent and a handle (`T`) for resetting it.
///
/// Pure bookkeeping: the methods that drop groups return the handles of
/// the streams to reset, and the caller resets them (for a spawned task,
/// aborting it drops its writer, which resets the stream). At most
/// [`MAX_INFLIGHT_GROUPS`] are kept: live delivery calls
/// [`make_room`](Self::make_room) before each new group, ordered delivery
/// waits until [`has_room`](Self::has_room).
#[derive(Debug)]
pub struct InflightGroups<T> {
    groups: BTreeMap<u64, (Instant, T)>,
}

impl<T> Default for InflightGroups<T> {
    fn default() -> Self {
        InflightGroups {
            groups: BTreeMap::new(),
        }
    }
}

impl<T> InflightGroups<T> {
    /// No group in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many groups are in flight.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is in flight.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether one more group fits without dropping any.
    pub fn has_room(&self) -> bool {
        self.groups.len() < MAX_INFLIGHT_GROUPS
    }

    /// Records group `sequence`, sent at `sent`; returns the handle it
    /// replaces, if the group was already in flight.
    pub fn insert(&mut self, sequence: u64, sent: Instant, handle: T) -> Option<T> {
        self.groups
            .insert(sequence, (sent, handle))
            .map(|(_, handle)| handle)
    }

    /// Forgets group `sequence` (its stream ended); returns its handle.
    pub fn remove(&mut self, sequence: u64) -> Option<T> {
        self.groups.remove(&sequence).map(|(_, handle)| handle)
    }

    /// Drops the oldest groups until one more fits; returns them, oldest
    /// first, to reset.
    pub fn make_room(&mut self) -> Vec<T> {
        let mut dropped = Vec::new();
        while !self.has_room() {
            match self.groups.pop_first() {
                Some((_, (_, handle))) => dropped.push(handle),
                None => break,
            }
        }
        dropped
    }

    /// Drops the groups before `start` (the subscription moved its start
    /// forward); returns them, oldest first, to reset.
    pub fn drop_before(&mut self, start: u64) -> Vec<T> {
        let kept = self.groups.split_off(&start);
        std::mem::replace(&mut self.groups, kept)
            .into_values()
            .map(|(_, handle)| handle)
            .collect()
    }

    /// Media-time expiry (moq-lite-05 "Expiration", timestamp age): the
    /// groups still in flight whose first frame is more than `max_latency`
    /// older, in timestamps, than the first frame of the newest group that
    /// has one; `first` reads a group's first timestamp (microseconds).
    /// Groups without a timestamp never expire this way; 0 means no limit.
    pub fn expire_by_timestamp(
        &mut self,
        max_latency: Duration,
        first: impl Fn(&T) -> Option<u64>,
    ) -> Vec<T> {
        if max_latency.is_zero() {
            return Vec::new();
        }
        let Some((newest, newest_ts)) = self
            .groups
            .iter()
            .rev()
            .find_map(|(&sequence, (_, handle))| first(handle).map(|ts| (sequence, ts)))
        else {
            return Vec::new();
        };
        let limit = u64::try_from(max_latency.as_micros()).unwrap_or(u64::MAX);
        let expired: Vec<u64> = self
            .groups
            .range(..newest)
            .filter(|(_, (_, handle))| first(handle).is_some_and(|ts| newest_ts.saturating_sub(ts) > limit))
            .map(|(&sequence, _)| sequence)
            .collect();
        self.remove_all(expired)
    }

    /// Removes `sequences`, returning what they held, in that order.
    fn remove_all(&mut self, sequences: Vec<u64>) -> Vec<T> {
        sequences
            .into_iter()
            .filter_map(|sequence| self.remove(sequence))
            .collect()
    }

    /// Drops the groups older than `newest` that were sent more than
    /// `max_latency` before `now` (when `newest` arrived); zero means no
    /// limit. Returns them, oldest first, to reset.
    pub fn expire(&mut self, newest: u64, now: Instant, max_latency: Duration) -> Vec<T> {
        if max_latency.is_zero() {
            return Vec::new();
        }
        let expired: Vec<u64> = self
            .groups
            .range(..newest)
            .filter(|(_, (sent, _))| now.saturating_duration_since(*sent) > max_latency)
            .map(|(&sequence, _)| sequence)
            .collect();
        self.remove_all(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_orders_subscriber_publisher_then_age() {
        // Subscriber priority outranks everything else.
        assert!(stream_priority(2, 0, 0, false) > stream_priority(1, 255, 0x7FFF, false));
        // Then publisher priority.
        assert!(stream_priority(1, 2, 0, false) > stream_priority(1, 1, 0x7FFF, false));
        // Then newer first, or older first when ordered.
        assert!(stream_priority(1, 1, 6, false) > stream_priority(1, 1, 5, false));
        assert!(stream_priority(1, 1, 5, true) > stream_priority(1, 1, 6, true));
        // Always positive.
        assert!(stream_priority(255, 255, u64::MAX, false) > 0);
        assert!(stream_priority(0, 0, 0, true) > 0);
    }

    fn filled(n: u64, start: Instant) -> InflightGroups<u64> {
        let mut inflight = InflightGroups::new();
        for sequence in 0..n {
            assert_eq!(inflight.insert(sequence, start, sequence), None);
        }
        inflight
    }

    #[test]
    fn make_room_drops_the_oldest() {
        let now = Instant::now();
        let mut inflight = filled(MAX_INFLIGHT_GROUPS as u64 - 1, now);
        assert!(inflight.has_room());
        assert!(inflight.make_room().is_empty());
        inflight.insert(100, now, 100);
        assert!(!inflight.has_room());
        assert_eq!(inflight.make_room(), vec![0]);
        assert!(inflight.has_room());
        assert_eq!(inflight.len(), MAX_INFLIGHT_GROUPS - 1);
    }

    #[test]
    fn remove_forgets_a_group() {
        let mut inflight = filled(3, Instant::now());
        assert_eq!(inflight.remove(1), Some(1));
        assert_eq!(inflight.remove(1), None);
        assert_eq!(inflight.len(), 2);
        assert_eq!(inflight.drop_before(u64::MAX), vec![0, 2]);
        assert!(inflight.is_empty());
    }

    #[test]
    fn drop_before_a_new_start() {
        let mut inflight = filled(5, Instant::now());
        assert_eq!(inflight.drop_before(0), Vec::<u64>::new());
        assert_eq!(inflight.drop_before(3), vec![0, 1, 2]);
        assert_eq!(inflight.len(), 2);
        assert_eq!(inflight.remove(3), Some(3));
        assert_eq!(inflight.remove(4), Some(4));
    }

    #[test]
    fn expire_drops_old_groups_before_the_newest() {
        let start = Instant::now();
        let latency = Duration::from_millis(100);
        let mut inflight = InflightGroups::new();
        inflight.insert(1, start, 1);
        inflight.insert(2, start + Duration::from_millis(50), 2);
        inflight.insert(3, start, 3);
        let now = start + Duration::from_millis(120);
        // No limit: nothing expires.
        assert!(inflight.expire(3, now, Duration::ZERO).is_empty());
        // Group 1 is too old; 2 is recent enough; 3 is not before the newest.
        assert_eq!(inflight.expire(3, now, latency), vec![1]);
        assert_eq!(inflight.len(), 2);
        // Exactly the max latency is still in time.
        assert!(inflight.expire(4, start + latency, latency).is_empty());
        assert_eq!(inflight.expire(4, now + latency, latency), vec![2, 3]);
        assert!(inflight.is_empty());
    }

    #[test]
    fn timestamp_age_expires_media_old_groups_however_recent_their_arrival() {
        let now = Instant::now();
        let mut inflight = InflightGroups::new();
        // (sequence, first timestamp in microseconds), all sent just now.
        for (sequence, ts) in [
            (1, Some(0)),
            (2, Some(1_500_000)),
            (3, None),
            (4, Some(2_000_000)),
            (5, None),
        ] {
            inflight.insert(sequence, now, (sequence, ts));
        }
        let first = |&(_, ts): &(u64, Option<u64>)| ts;
        // Newest with a timestamp: group 4 at 2 s. Limit 1 s: group 1 (2 s
        // older) goes; 2 (0.5 s) stays; 3 has none; 4 and 5 are not older.
        let dropped = inflight.expire_by_timestamp(Duration::from_secs(1), first);
        assert_eq!(dropped, vec![(1, Some(0))]);
        assert_eq!(inflight.len(), 4);
        // Zero is no limit.
        assert!(inflight.expire_by_timestamp(Duration::ZERO, first).is_empty());
    }
}

//! The track cache: which recent groups a track keeps, and for how long.
//!
//! Late subscribers start at once from the latest group, and slow ones catch
//! up from the groups still held. Groups are kept by sequence (for eviction
//! and lookup) and by arrival (each consumer's cursor is an arrival number, so
//! groups are delivered in the order they arrived, which may differ from
//! sequence order, and nobody sees a group twice).
//!
//! Eviction, oldest sequence first:
//! - by age: a group expires once a newer group (higher sequence) has existed
//!   for longer than [`CacheConfig::max_age`];
//! - by size: while the track holds more than [`CacheConfig::max_bytes`].
//!
//! The latest group is never evicted, only replaced. A group that is evicted
//! while still being written is aborted with [`Error::Old`], so its writer
//! stops spending memory on it; once a sequence has been evicted, creating it
//! again (or anything older) is refused with [`Error::Old`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::group_state::GroupShared;
use super::limits::{ByteBudget, CacheConfig, GROUP_OVERHEAD};
use crate::{Error, Result};

/// Whoever holds a [`TrackCache`] behind its lock (the track). The budget
/// calls back through it when a frame write crosses the byte bound, which the
/// writer detects without that lock.
pub(crate) trait CacheOwner: Send + Sync {
    /// Takes the lock and evicts until the byte bound holds again.
    fn evict_for_bytes(&self);
}

/// Counts a track's cached bytes; shared with its groups so that frame writes
/// never take the track's lock unless the bound is crossed.
pub(crate) struct TrackBudget {
    bytes: AtomicU64,
    max: u64,
    owner: Weak<dyn CacheOwner>,
}

impl ByteBudget for TrackBudget {
    fn add(&self, n: u64) -> bool {
        self.bytes.fetch_add(n, Ordering::AcqRel) + n > self.max
    }

    fn enforce(&self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.evict_for_bytes();
        }
    }
}

struct Cached {
    group: Arc<GroupShared>,
    arrival: u64,
    arrived: Instant,
    /// When a group with a higher sequence first existed.
    superseded: Option<Instant>,
}

/// The groups one track keeps. Pure data: callers hold the track's lock.
pub(crate) struct TrackCache {
    config: CacheConfig,
    budget: Arc<TrackBudget>,
    by_sequence: BTreeMap<u64, Cached>,
    by_arrival: BTreeMap<u64, u64>,
    next_arrival: u64,
    /// Highest evicted sequence: it and everything older are refused.
    floor: Option<u64>,
    evicted: u64,
    /// Recent evictions as `(arrival, sequence)`, so a consumer can tell
    /// which of the groups it passed over were in its range.
    recent_evictions: VecDeque<(u64, u64)>,
}

/// How many evictions [`TrackCache`] remembers for skip accounting; an older
/// eviction in a consumer's gap is counted as a skip.
const EVICTION_LOG: usize = 1024;

/// A group found by a consumer's cursor.
pub(crate) struct Arrival<'a> {
    pub arrival: u64,
    pub sequence: u64,
    pub group: &'a Arc<GroupShared>,
}

impl TrackCache {
    pub fn new(config: CacheConfig, owner: Weak<dyn CacheOwner>) -> Self {
        TrackCache {
            config,
            budget: Arc::new(TrackBudget {
                bytes: AtomicU64::new(0),
                max: config.max_bytes,
                owner,
            }),
            by_sequence: BTreeMap::new(),
            by_arrival: BTreeMap::new(),
            next_arrival: 0,
            floor: None,
            evicted: 0,
            recent_evictions: VecDeque::new(),
        }
    }

    /// Highest sequence held (the latest group).
    pub fn latest(&self) -> Option<u64> {
        self.by_sequence.last_key_value().map(|(seq, _)| *seq)
    }

    /// Lowest sequence held.
    pub fn oldest(&self) -> Option<u64> {
        self.by_sequence.first_key_value().map(|(seq, _)| *seq)
    }

    /// The sequences held at or after `start`, ascending.
    pub fn held_from(&self, start: u64) -> std::collections::VecDeque<u64> {
        self.by_sequence.range(start..).map(|(seq, _)| *seq).collect()
    }

    /// Highest sequence evicted: it and everything older are refused.
    pub fn floor(&self) -> Option<u64> {
        self.floor
    }

    pub fn latest_group(&self) -> Option<&Arc<GroupShared>> {
        self.by_sequence.last_key_value().map(|(_, c)| &c.group)
    }

    /// The sequence the next appended group gets.
    pub fn next_sequence(&self) -> u64 {
        match (self.latest(), self.floor) {
            (Some(seq), _) | (None, Some(seq)) => seq.saturating_add(1),
            (None, None) => 0,
        }
    }

    /// Where a consumer starting at `start` begins: the earliest arrival
    /// among the groups held at or after `start` (or the next arrival). A
    /// group below `start` that arrived earlier is behind the cursor, so its
    /// eviction is never counted as a skip.
    pub fn first_arrival_from(&self, start: Option<u64>) -> u64 {
        let held = match start {
            Some(start) => self.by_sequence.range(start..).map(|(_, c)| c.arrival).min(),
            None => None,
        };
        held.unwrap_or(self.next_arrival)
    }

    pub fn next_arrival(&self) -> u64 {
        self.next_arrival
    }

    /// Groups evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> u64 {
        self.budget.bytes.load(Ordering::Acquire)
    }

    /// Number of groups held.
    pub fn len(&self) -> usize {
        self.by_sequence.len()
    }

    /// How many of the groups that arrived in `from..to` and are at or after
    /// `start` were evicted (some of that range may still be held).
    pub fn evicted_between(&self, from: u64, to: u64, start: Option<u64>) -> u64 {
        let held = self.by_arrival.range(from..to).count() as u64;
        self.skipped_between(from, to, start).saturating_sub(held)
    }

    /// How many groups a consumer passing over arrivals `from..to` skipped:
    /// all of them were evicted, but those below its `start` were never its
    /// to read.
    pub fn skipped_between(&self, from: u64, to: u64, start: Option<u64>) -> u64 {
        let gap = to.saturating_sub(from);
        let Some(start) = start.filter(|_| gap > 0) else {
            return gap;
        };
        let out_of_range = self
            .recent_evictions
            .iter()
            .filter(|(arrival, seq)| (from..to).contains(arrival) && *seq < start)
            .count() as u64;
        gap - out_of_range
    }

    /// The sequences of the groups that arrived in `from..to`, are at or
    /// after `start` and are gone (evicted or dropped), as far as the log
    /// of recent evictions remembers.
    pub fn skipped_sequences(
        &self,
        from: u64,
        to: u64,
        start: Option<u64>,
    ) -> impl Iterator<Item = u64> + '_ {
        // No gap (the common case): nothing to look up.
        let gap = from < to;
        self.recent_evictions
            .iter()
            .take(if gap { EVICTION_LOG } else { 0 })
            .filter(move |(arrival, seq)| (from..to).contains(arrival) && start.is_none_or(|s| *seq >= s))
            .map(|(_, seq)| *seq)
    }

    /// Records that the groups of `sequences` will not come (their producer,
    /// or its peer, said so): each not held takes an arrival number and is
    /// gone at once, as an evicted group is, so consumers that would have
    /// read it count it as skipped. At most [`EVICTION_LOG`] per call.
    /// Returns whether any was recorded.
    pub fn mark_dropped(&mut self, sequences: std::ops::RangeInclusive<u64>) -> bool {
        let mut any = false;
        for sequence in sequences.take(EVICTION_LOG) {
            if self.by_sequence.contains_key(&sequence) {
                continue;
            }
            let arrival = self.next_arrival;
            self.next_arrival += 1;
            if self.recent_evictions.len() == EVICTION_LOG {
                self.recent_evictions.pop_front();
            }
            self.recent_evictions.push_back((arrival, sequence));
            any = true;
        }
        any
    }

    /// Group `sequence`, if held.
    pub fn get(&self, sequence: u64) -> Option<&Arc<GroupShared>> {
        self.by_sequence.get(&sequence).map(|c| &c.group)
    }

    /// The first group that arrived at or after `cursor`.
    pub fn next_from(&self, cursor: u64) -> Option<Arrival<'_>> {
        let (&arrival, &sequence) = self.by_arrival.range(cursor..).next()?;
        let group = &self.by_sequence[&sequence].group;
        Some(Arrival {
            arrival,
            sequence,
            group,
        })
    }

    /// Adds group `sequence`, arriving `now`.
    pub fn insert(&mut self, sequence: u64, now: Instant) -> Result<Arc<GroupShared>> {
        if self.by_sequence.contains_key(&sequence) {
            return Err(Error::Duplicate);
        }
        if self.floor.is_some_and(|floor| sequence <= floor) {
            return Err(Error::Old);
        }
        // A late group is superseded since the earliest newer group arrived.
        let superseded = self
            .by_sequence
            .range(sequence + 1..)
            .map(|(_, c)| c.arrived)
            .min();
        if superseded.is_some_and(|t| self.expired_at(t, now)) {
            return Err(Error::Old);
        }
        if let Some(latest) = self.by_sequence.last_entry() {
            if *latest.key() < sequence {
                latest.into_mut().superseded.get_or_insert(now);
            }
        }

        let budget: Arc<dyn ByteBudget> = self.budget.clone();
        // The group's fixed cost counts from its creation (it starts with
        // `GROUP_OVERHEAD` charged, which eviction gives back).
        budget.add(GROUP_OVERHEAD);
        let group = GroupShared::new(sequence, self.config.group_limits(), Some(budget));
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_arrival.insert(arrival, sequence);
        self.by_sequence.insert(
            sequence,
            Cached {
                group: group.clone(),
                arrival,
                arrived: now,
                superseded,
            },
        );
        self.evict_expired(now);
        self.evict_for_bytes();
        Ok(group)
    }

    fn expired_at(&self, superseded: Instant, now: Instant) -> bool {
        now.saturating_duration_since(superseded) > self.config.max_age
    }

    /// [`evict_expired`](Self::evict_expired) at the current time, reading
    /// the clock only when some group could have expired.
    pub fn evict_expired_now(&mut self) {
        let superseded = self
            .by_sequence
            .first_key_value()
            .is_some_and(|(_, c)| c.superseded.is_some());
        if superseded {
            self.evict_expired(Instant::now());
        }
    }

    /// Evicts groups past their age, oldest sequence first.
    pub fn evict_expired(&mut self, now: Instant) {
        while let Some((&seq, cached)) = self.by_sequence.first_key_value() {
            match cached.superseded {
                Some(t) if self.expired_at(t, now) => self.evict(seq),
                _ => break,
            }
        }
    }

    /// Evicts the oldest groups until the byte bound holds again.
    pub fn evict_for_bytes(&mut self) {
        while self.bytes() > self.config.max_bytes && self.by_sequence.len() > 1 {
            let Some((&seq, _)) = self.by_sequence.first_key_value() else {
                break;
            };
            self.evict(seq);
        }
    }

    fn evict(&mut self, sequence: u64) {
        let Some(cached) = self.by_sequence.remove(&sequence) else {
            return;
        };
        self.by_arrival.remove(&cached.arrival);
        self.floor = Some(self.floor.map_or(sequence, |f| f.max(sequence)));
        self.evicted += 1;
        if self.recent_evictions.len() == EVICTION_LOG {
            self.recent_evictions.pop_front();
        }
        self.recent_evictions.push_back((cached.arrival, sequence));
        // Abort first: after it no write can add bytes, so the count is final.
        cached.group.abort(Error::Old);
        self.budget
            .bytes
            .fetch_sub(cached.group.bytes(), Ordering::AcqRel);
    }
}

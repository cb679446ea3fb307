//! Tracks: groups by sequence number, delivered in the order they arrive.
//!
//! A [`TrackProducer`] appends groups; every [`TrackConsumer`] has its own
//! cursor and, by default, starts at the latest group, so a late joiner
//! starts at once. Recent groups are kept by the track's cache (see
//! [`CacheConfig`]); a consumer that falls behind skips what was evicted and
//! can tell how many groups it skipped, and which
//! ([`TrackConsumer::take_skipped_groups`], also for groups the producer said
//! will not come: [`TrackProducer::drop_groups`]).
//!
//! A consumer with an explicit start reads the held groups from there in
//! sequence order, then new ones as they arrive. On a track a session feeds
//! from its peer (a relay's), a start below what the session's subscription
//! covers makes the session fetch the gap ([`TrackProducer::poll_backfill`]),
//! and the consumer waits for it so that it reads those older groups first.
//!
//! ```
//! use moq_lite::model::{Track, TrackProducer};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let mut track = TrackProducer::new(Track::new("video"));
//! let mut group = track.append_group().unwrap();
//! group.write_frame("keyframe".into()).unwrap();
//!
//! // A late joiner starts at the latest group.
//! let mut consumer = track.consume();
//! let mut reader = consumer.next_group().await.unwrap().unwrap();
//! assert_eq!(reader.sequence(), 0);
//! assert_eq!(reader.read_frame().await.unwrap().unwrap(), "keyframe");
//!
//! drop(group);
//! track.finish().unwrap();
//! assert!(consumer.next_group().await.unwrap().is_none());
//! # });
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::time::Instant;

use super::backfill::Backfill;
use super::cache::{CacheOwner, TrackCache};
use super::group::{GroupConsumer, GroupProducer};
use super::lifecycle::Lifecycle;
use super::limits::CacheConfig;
use super::lock::Lock;
use super::waiter::{WaitSlot, WaiterList};
use crate::{Error, Result};

/// What a track is: its name within the broadcast and its priority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Track {
    /// Name, unique within its broadcast.
    pub name: String,
    /// Priority among the tracks of a session: a higher value is sent first.
    pub priority: u8,
}

impl Track {
    /// A track named `name` with priority 0.
    pub fn new(name: impl Into<String>) -> Self {
        Track {
            name: name.into(),
            priority: 0,
        }
    }

    /// The same track with another priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }
}

pub(crate) struct TrackState {
    pub cache: TrackCache,
    /// Consumers park on its readers' list for new groups as well as the end.
    pub life: Lifecycle,
    /// For a track made on request: the earliest group a requester asked
    /// for, which the session asks its peer to start from, and the older
    /// groups it fetches once it already serves the track.
    pub backfill: Backfill,
    /// The producer side waiting for backfill work.
    pub backfill_waiters: WaiterList,
}

/// What a group is marked as before any consumer can see it.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    datagram: bool,
    backfilled: bool,
}

impl TrackState {
    /// Creates group `sequence` with its marks.
    fn create_group(&mut self, sequence: u64, marks: Marks) -> Result<GroupProducer> {
        use std::sync::atomic::Ordering::Release;
        self.life.check_open()?;
        let group = self.cache.insert(sequence, Instant::now())?;
        group.datagram.store(marks.datagram, Release);
        group.backfilled.store(marks.backfilled, Release);
        self.life.wake_readers();
        if self.backfill.awaits_first_group() {
            // What the subscription covers is known now.
            self.plan_backfill();
        }
        Ok(GroupProducer::from_shared(group))
    }

    /// Queues what older groups to fetch now, and wakes the producer side
    /// if there is something.
    fn plan_backfill(&mut self) {
        if self.life.is_open() && self.backfill.plan(self.cache.oldest(), self.cache.floor()) {
            self.backfill_waiters.wake_all();
        }
    }
}

pub(crate) struct TrackShared {
    pub info: Track,
    pub state: Lock<TrackState>,
}

impl TrackShared {
    pub fn new(info: Track, config: CacheConfig) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<TrackShared>| TrackShared {
            info,
            state: Lock::new(TrackState {
                cache: TrackCache::new(config, weak.clone()),
                life: Lifecycle::new(),
                backfill: Backfill::default(),
                backfill_waiters: WaiterList::default(),
            }),
        })
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().life.is_open()
    }

    pub fn cache_stats(&self) -> CacheStats {
        let state = self.state.lock();
        CacheStats {
            groups: state.cache.len(),
            bytes: state.cache.bytes(),
            evicted: state.cache.evicted(),
        }
    }

    /// Lowers the requested start to `start` (the earliest request wins);
    /// a producer side that serves backfill learns of it.
    pub fn request_start(&self, start: u64) {
        let mut state = self.state.lock();
        if state.backfill.want(start) {
            state.plan_backfill();
        }
    }

    /// The track is fed by a session (made on a subscriber's request).
    pub fn mark_fed(&self) {
        self.state.lock().backfill.fed();
    }

    /// Ends the track with `err` unless it already ended.
    pub fn abort(&self, err: Error) {
        self.state.lock().life.abort(err);
    }
}

impl CacheOwner for TrackShared {
    fn evict_for_bytes(&self) {
        self.state.lock().cache.evict_for_bytes();
    }
}

/// Writes a track: creates its groups.
///
/// Cloning gives another writer of the same track. Dropping the last one ends
/// the track: consumers read the groups still held, then the end.
pub struct TrackProducer {
    shared: Arc<TrackShared>,
    slot: Option<WaitSlot>,
    /// Where this handle waits for backfill work.
    backfill_slot: Option<WaitSlot>,
    /// Set by [`abort_on_drop`](Self::abort_on_drop).
    abort_on_drop: Option<Error>,
}

impl TrackProducer {
    /// A new track with the default cache bounds.
    pub fn new(info: Track) -> Self {
        Self::with_cache(info, CacheConfig::default())
    }

    /// A new track with the given cache bounds.
    pub fn with_cache(info: Track, config: CacheConfig) -> Self {
        Self::from_shared(TrackShared::new(info, config))
    }

    pub(crate) fn from_shared(shared: Arc<TrackShared>) -> Self {
        shared.state.lock().life.add_producer();
        TrackProducer {
            shared,
            slot: None,
            backfill_slot: None,
            abort_on_drop: None,
        }
    }

    /// The track's name and priority.
    pub fn info(&self) -> &Track {
        &self.shared.info
    }

    /// Creates the group after the latest one (sequence 0 for the first).
    pub fn append_group(&mut self) -> Result<GroupProducer> {
        let mut state = self.shared.state.lock();
        let sequence = state.cache.next_sequence();
        self.create_locked(&mut state, sequence)
    }

    /// Creates group `sequence`, which may be older or newer than the latest.
    ///
    /// Fails with [`Error::Duplicate`] if the track already holds it and with
    /// [`Error::Old`] if it is older than what the cache still keeps.
    pub fn create_group(&mut self, sequence: u64) -> Result<GroupProducer> {
        let mut state = self.shared.state.lock();
        self.create_locked(&mut state, sequence)
    }

    fn create_locked(&self, state: &mut TrackState, sequence: u64) -> Result<GroupProducer> {
        state.create_group(sequence, Marks::default())
    }

    /// Publishes `payload` as the next group, of one frame stamped
    /// `timestamp` (microseconds), to go as a QUIC datagram where it can:
    /// to moq-lite-05+ subscribers, best effort (a datagram lost on the
    /// way, or larger than the path takes, is not sent again; the session
    /// counts it as dropped). Older versions and IETF subscribers get it as
    /// an ordinary group. Returns the group's sequence.
    pub fn write_datagram(&mut self, payload: Bytes, timestamp: u64) -> Result<u64> {
        self.datagram(None, payload, timestamp)
    }

    /// [`write_datagram`](Self::write_datagram) as group `sequence` (a
    /// session receiving a datagram, or a relay forwarding one).
    pub fn insert_datagram(&mut self, sequence: u64, payload: Bytes, timestamp: u64) -> Result<()> {
        self.datagram(Some(sequence), payload, timestamp).map(drop)
    }

    fn datagram(&mut self, sequence: Option<u64>, payload: Bytes, timestamp: u64) -> Result<u64> {
        let mut group = {
            let mut state = self.shared.state.lock();
            let sequence = sequence.unwrap_or_else(|| state.cache.next_sequence());
            let marks = Marks {
                datagram: true,
                ..Marks::default()
            };
            state.create_group(sequence, marks)?
        };
        // Written outside the track's lock: a frame may make the cache evict.
        group.write_frame_at(payload, timestamp)?;
        let sequence = group.sequence();
        group.finish()?;
        Ok(sequence)
    }

    /// Sequence of the latest group, if any.
    pub fn latest(&self) -> Option<u64> {
        self.shared.state.lock().cache.latest()
    }

    /// Says that the groups `sequences` will not come (an encoder skipped
    /// them, or the peer feeding this track said so): consumers that would
    /// have read them count them as skipped and list them
    /// ([`TrackConsumer::take_skipped_groups`]), so a relay passes the word
    /// on. Groups held are left alone; at most 1024 are recorded per call.
    pub fn drop_groups(&self, sequences: std::ops::RangeInclusive<u64>) {
        let mut state = self.shared.state.lock();
        if state.cache.mark_dropped(sequences) {
            state.life.wake_readers();
        }
    }

    /// For a track made on a subscriber's request
    /// ([`BroadcastConsumer::subscribe_track_from`](super::BroadcastConsumer::subscribe_track_from)):
    /// the earliest group a requester asked for. A session serving the
    /// request asks its peer to start there (a SUBSCRIBE start group);
    /// `None` means the latest group.
    pub fn requested_start(&self) -> Option<u64> {
        self.shared.state.lock().backfill.wanted()
    }

    /// For the session feeding a track made on request: it asked its peer
    /// for the groups from `from` (`None`: the live edge), and it can fetch
    /// older ones, so consumers asking for an earlier start are answered
    /// through [`poll_backfill`](Self::poll_backfill).
    pub fn serve_backfill(&self, from: Option<u64>) {
        let mut state = self.shared.state.lock();
        state.backfill.serve(from);
        state.plan_backfill();
    }

    /// Ready with older groups to fetch from the peer once a consumer asks
    /// for a start below what the session's subscription covers (after
    /// [`serve_backfill`](Self::serve_backfill); never before). Each group
    /// is asked for once, the newest [`BackfillRequest::MAX_GROUPS`] of a
    /// range at most, never one the cache already evicted. Consumers asking
    /// for the range wait (read nothing) until the request is dropped, so
    /// that they read it before newer groups.
    pub fn poll_backfill(&mut self, cx: &mut Context<'_>) -> Poll<BackfillRequest> {
        let mut state = self.shared.state.lock();
        if let Some(range) = state.backfill.take() {
            return Poll::Ready(BackfillRequest {
                range,
                shared: self.shared.clone(),
            });
        }
        state
            .backfill_waiters
            .register(&mut self.backfill_slot, cx.waker());
        Poll::Pending
    }

    /// Waits for older groups to fetch: see [`poll_backfill`](Self::poll_backfill).
    pub async fn backfill(&mut self) -> BackfillRequest {
        std::future::poll_fn(|cx| self.poll_backfill(cx)).await
    }

    /// Ends the track; consumers read the groups still held, then the end.
    pub fn finish(self) -> Result<()> {
        self.shared.state.lock().life.finish()
    }

    /// Ends the track with `err`; consumers see it on their next read.
    pub fn abort(self, err: Error) {
        self.shared.abort(err);
    }

    /// Makes dropping this handle abort the track with `err`, whatever other
    /// handles remain, instead of releasing it (which finishes the track once
    /// the last writer is gone).
    ///
    /// For a writer that can be cancelled part-way, such as a session's task
    /// feeding a subscription: losing the upstream must not read as the
    /// track's end. [`finish`](Self::finish) and [`abort`](Self::abort) still
    /// end the track as they say. Clones do not inherit the setting.
    pub fn abort_on_drop(&mut self, err: Error) {
        self.abort_on_drop = Some(err);
    }

    /// Undoes [`abort_on_drop`](Self::abort_on_drop): dropping this handle
    /// releases it as usual again.
    pub fn cancel_abort_on_drop(&mut self) {
        self.abort_on_drop = None;
    }

    /// A consumer starting at the latest group.
    pub fn consume(&self) -> TrackConsumer {
        TrackConsumer::new(self.shared.clone(), None)
    }

    /// A consumer starting at group `sequence` (or the oldest held after it).
    pub fn consume_from(&self, sequence: u64) -> TrackConsumer {
        TrackConsumer::new(self.shared.clone(), Some(sequence))
    }

    /// Whether the track has ended, and how.
    pub fn is_closed(&self) -> Option<Result<()>> {
        self.shared.state.lock().life.closed()
    }

    /// Whether no consumer is left.
    pub fn is_unused(&self) -> bool {
        self.shared.state.lock().life.is_unused()
    }

    /// Ends the track with `err` if no consumer is left, in one step, so
    /// that a consumer arriving meanwhile (a subscriber finding the track by
    /// name in its broadcast) is never handed a track about to be aborted.
    /// Returns whether the track has ended (now or before); `false` means a
    /// consumer came back and the track goes on.
    ///
    /// For a relay giving up an upstream subscription once [`unused`](Self::unused)
    /// says nobody reads it.
    pub fn abort_if_unused(&self, err: Error) -> bool {
        let mut state = self.shared.state.lock();
        if !state.life.is_open() {
            return true;
        }
        if !state.life.is_unused() {
            return false;
        }
        state.life.abort(err);
        true
    }

    /// How many consumers read this track now. Through a relay, a publisher
    /// sees one per upstream subscription, however many subscribers there are.
    pub fn consumer_count(&self) -> usize {
        self.shared.state.lock().life.consumers()
    }

    /// Ready once no consumer is left or the track has ended.
    pub fn poll_unused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared
            .state
            .lock()
            .life
            .poll_unused(&mut self.slot, cx.waker())
    }

    /// Waits until every consumer has gone (or the track ended), so a relay
    /// can release its upstream subscription.
    pub async fn unused(&mut self) {
        std::future::poll_fn(|cx| self.poll_unused(cx)).await
    }

    /// Cache counters: groups held, bytes held, groups evicted so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache_stats()
    }

    pub(crate) fn shared(&self) -> &Arc<TrackShared> {
        &self.shared
    }
}

/// Older groups of a track for its session to fetch from the peer
/// ([`TrackProducer::poll_backfill`]), ascending. Groups fetched go in with
/// [`TrackProducer::create_group`]; dropping the request says it was
/// answered (fully or not), and releases the consumers waiting for it.
pub struct BackfillRequest {
    range: std::ops::Range<u64>,
    shared: Arc<TrackShared>,
}

impl BackfillRequest {
    /// The most groups one request covers (the newest of what was asked).
    pub const MAX_GROUPS: u64 = super::backfill::MAX_BACKFILL_GROUPS;

    /// The group sequences to fetch.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.range.clone()
    }

    /// Creates fetched group `sequence` in the track (as
    /// [`TrackProducer::create_group`] would), marked so that consumers at
    /// the live edge pass over it.
    pub fn create_group(&self, sequence: u64) -> Result<GroupProducer> {
        let marks = Marks {
            backfilled: true,
            ..Marks::default()
        };
        self.shared.state.lock().create_group(sequence, marks)
    }
}

impl Drop for BackfillRequest {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        if state.backfill.done(self.range.clone()) {
            state.life.wake_readers();
        }
    }
}

impl std::fmt::Debug for BackfillRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackfillRequest")
            .field("track", &self.shared.info.name)
            .field("range", &self.range)
            .finish()
    }
}

impl Clone for TrackProducer {
    fn clone(&self) -> Self {
        Self::from_shared(self.shared.clone())
    }
}

impl Drop for TrackProducer {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.backfill_waiters.unregister(&mut self.backfill_slot);
        if let Some(status) = state
            .life
            .release_producer(&mut self.slot, self.abort_on_drop.take())
        {
            state.life.end(status);
        }
    }
}

impl std::fmt::Debug for TrackProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackProducer")
            .field("info", self.info())
            .finish()
    }
}

/// What a track's cache holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Groups held.
    pub groups: usize,
    /// Payload bytes held.
    pub bytes: u64,
    /// Groups evicted since the track started.
    pub evicted: u64,
}

impl std::ops::AddAssign for CacheStats {
    fn add_assign(&mut self, other: CacheStats) {
        self.groups += other.groups;
        self.bytes += other.bytes;
        self.evicted += other.evicted;
    }
}

/// Reads a track's groups, in arrival order, with its own cursor.
pub struct TrackConsumer {
    shared: Arc<TrackShared>,
    /// Arrival number of the next group to look at.
    cursor: u64,
    /// Groups older than this are not delivered.
    start: Option<u64>,
    /// For an explicit start: the held groups from it, read first.
    catch_up: CatchUp,
    skipped: u64,
    /// The sequences of the skipped groups not yet taken, where known.
    skipped_groups: Vec<u64>,
    slot: Option<WaitSlot>,
}

/// What [`TrackConsumer::next_or_skipped`] found.
#[derive(Debug)]
pub enum TrackNext {
    /// The next group.
    Group(GroupConsumer),
    /// Groups were skipped and no group is ready yet.
    Skipped,
    /// The track finished and every group was read.
    End,
}

/// The most skipped sequences a consumer remembers between two
/// [`TrackConsumer::take_skipped_groups`]; older ones are forgotten.
const MAX_LISTED_SKIPS: usize = 1024;

/// Adds `skipped` to a consumer's list, forgetting the oldest past the bound.
fn list_skipped(list: &mut Vec<u64>, skipped: impl IntoIterator<Item = u64>) {
    list.extend(skipped);
    if list.len() > MAX_LISTED_SKIPS {
        list.drain(..list.len() - MAX_LISTED_SKIPS);
    }
}

/// How a consumer with an explicit start reads what the track already holds:
/// in sequence order (which may differ from arrival order, for groups fetched
/// after newer ones), before following arrivals.
#[derive(Debug, Clone, Default)]
enum CatchUp {
    /// Following arrivals.
    #[default]
    Done,
    /// The held groups are listed at the first read (after any backfill the
    /// consumer waits for).
    Pending,
    /// The held groups not read yet, ascending.
    Reading(std::collections::VecDeque<u64>),
}

impl TrackConsumer {
    /// `start: None` means the latest group at this moment (or the first to
    /// come, on an empty track).
    pub(crate) fn new(shared: Arc<TrackShared>, start: Option<u64>) -> Self {
        Self::new_if(shared, start, false).expect("unconditional")
    }

    /// A consumer of a track that was not aborted, checked and counted in
    /// one step: a track its producer is about to abort for want of
    /// consumers ([`TrackProducer::abort_if_unused`]) is never handed out,
    /// while a finished one is (what it still holds is history a late
    /// subscriber can read).
    pub(crate) fn new_unless_aborted(shared: Arc<TrackShared>) -> Option<Self> {
        Self::new_if(shared, None, true)
    }

    fn new_if(shared: Arc<TrackShared>, start: Option<u64>, refuse_aborted: bool) -> Option<Self> {
        let catch_up = match start {
            Some(_) => CatchUp::Pending,
            None => CatchUp::Done,
        };
        let (cursor, start) = {
            let mut state = shared.state.lock();
            if refuse_aborted && state.life.aborted().is_some() {
                return None;
            }
            state.life.add_consumer();
            let start = start.or(state.cache.latest());
            (state.cache.first_arrival_from(start), start)
        };
        Some(TrackConsumer {
            shared,
            cursor,
            start,
            catch_up,
            skipped: 0,
            skipped_groups: Vec::new(),
            slot: None,
        })
    }

    /// The track's name and priority.
    pub fn info(&self) -> &Track {
        &self.shared.info
    }

    /// The next group to arrive at or after the start; `None` once the
    /// track finished and every held group was read.
    pub fn poll_next_group(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<GroupConsumer>>> {
        let mut state = self.shared.state.lock();
        if let Some(err) = state.life.aborted() {
            return Poll::Ready(Err(err.clone()));
        }
        if state.life.is_open() && state.backfill.holds(self.start) {
            // Older groups this consumer wants are being fetched: reading
            // them first keeps delivery in order.
            state.life.wait(&mut self.slot, cx.waker());
            return Poll::Pending;
        }
        state.cache.evict_expired_now();
        if let (CatchUp::Pending, Some(start)) = (&self.catch_up, self.start) {
            // What arrived since this consumer started and is gone already
            // was skipped; the rest is listed.
            let next = state.cache.next_arrival();
            self.skipped += state.cache.evicted_between(self.cursor, next, self.start);
            let skipped = state.cache.skipped_sequences(self.cursor, next, self.start);
            list_skipped(&mut self.skipped_groups, skipped);
            self.catch_up = CatchUp::Reading(state.cache.held_from(start));
            self.cursor = next;
        }
        if let CatchUp::Reading(held) = &mut self.catch_up {
            while let Some(sequence) = held.pop_front() {
                match state.cache.get(sequence) {
                    Some(group) => return Poll::Ready(Ok(Some(GroupConsumer::new(group.clone())))),
                    None => {
                        self.skipped += 1;
                        list_skipped(&mut self.skipped_groups, [sequence]);
                    }
                }
            }
            self.catch_up = CatchUp::Done;
        }
        while let Some(found) = state.cache.next_from(self.cursor) {
            // Arrival numbers are dense: a gap is a group evicted unread.
            if found.arrival > self.cursor {
                self.skipped += state
                    .cache
                    .skipped_between(self.cursor, found.arrival, self.start);
                let skipped = state
                    .cache
                    .skipped_sequences(self.cursor, found.arrival, self.start);
                list_skipped(&mut self.skipped_groups, skipped);
            }
            self.cursor = found.arrival + 1;
            let old = match self.start {
                Some(start) => found.sequence < start,
                // At the live edge from an empty track: what came first is
                // the start, and fetched history is not for this consumer.
                None => found.group.backfilled.load(std::sync::atomic::Ordering::Acquire),
            };
            if old {
                continue;
            }
            return Poll::Ready(Ok(Some(GroupConsumer::new(found.group.clone()))));
        }
        let next = state.cache.next_arrival();
        if next > self.cursor {
            self.skipped += state.cache.skipped_between(self.cursor, next, self.start);
            let skipped = state.cache.skipped_sequences(self.cursor, next, self.start);
            list_skipped(&mut self.skipped_groups, skipped);
        }
        self.cursor = next;
        if state.life.is_finished() {
            return Poll::Ready(Ok(None));
        }
        state.life.wait(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next group to arrive at or after the start; `None` once the
    /// track finished and every held group was read.
    pub async fn next_group(&mut self) -> Result<Option<GroupConsumer>> {
        std::future::poll_fn(|cx| self.poll_next_group(cx)).await
    }

    /// Moves the start to group `sequence`: from now on this consumer reads
    /// the held groups at or after it, in sequence order, then new ones as
    /// they arrive. Meant for a consumer that has not read yet (a
    /// subscription with an explicit start group).
    pub fn restart_from(&mut self, sequence: u64) {
        let state = self.shared.state.lock();
        self.start = Some(sequence);
        self.catch_up = CatchUp::Pending;
        self.cursor = state.cache.first_arrival_from(self.start);
    }

    /// Group `sequence` once the track holds it; `None` once it cannot
    /// come: the track ended, the track is not fed by a session (what its
    /// producer holds is all there is), or a backfill asked for it and did
    /// not get it. Otherwise (a session's subscription may still bring it)
    /// this waits: bound it with a timeout.
    ///
    /// For answering a request for one group (a FETCH) through a relay:
    /// start a consumer at the group first, so that a backfill asks for it.
    pub fn poll_group(&mut self, sequence: u64, cx: &mut Context<'_>) -> Poll<Option<GroupConsumer>> {
        let mut state = self.shared.state.lock();
        if let Some(group) = state.cache.get(sequence) {
            return Poll::Ready(Some(GroupConsumer::new(group.clone())));
        }
        let evicted = state.cache.floor().is_some_and(|floor| sequence <= floor);
        if evicted || !state.life.is_open() || !state.backfill.may_come(sequence) {
            return Poll::Ready(None);
        }
        state.life.wait(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// Asks for the groups from `start` without moving this consumer: a
    /// session feeding the track fetches those older than what it covers
    /// (a backfill), as for a new consumer starting there. For answering a
    /// range request (an IETF fill) from a subscription's consumer.
    pub fn request_from(&self, start: u64) {
        self.shared.request_start(start);
    }

    /// Waits for group `sequence`: see [`poll_group`](Self::poll_group).
    pub async fn wait_group(&mut self, sequence: u64) -> Option<GroupConsumer> {
        std::future::poll_fn(|cx| self.poll_group(sequence, cx)).await
    }

    /// The sequences of the groups skipped since the last call, in the
    /// order they were found (the cache evicted them unread, or their
    /// producer said they will not come: [`TrackProducer::drop_groups`]).
    /// Where too many were skipped to remember, [`skipped`](Self::skipped)
    /// still counts them all. For telling a subscriber precisely what it
    /// will not get (moq-lite SUBSCRIBE_DROP).
    pub fn take_skipped_groups(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.skipped_groups)
    }

    /// Whether [`take_skipped_groups`](Self::take_skipped_groups) has any
    /// to give (found by the last read).
    pub fn has_skipped_groups(&self) -> bool {
        !self.skipped_groups.is_empty()
    }

    /// The next group, or word that groups were skipped while none is ready
    /// (then [`take_skipped_groups`](Self::take_skipped_groups) lists them),
    /// or the end. For readers that tell their own subscribers of gaps as
    /// soon as they are known.
    pub fn poll_next_or_skipped(&mut self, cx: &mut Context<'_>) -> Poll<Result<TrackNext>> {
        match self.poll_next_group(cx) {
            Poll::Ready(Ok(Some(group))) => Poll::Ready(Ok(TrackNext::Group(group))),
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(TrackNext::End)),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.has_skipped_groups() => Poll::Ready(Ok(TrackNext::Skipped)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// See [`poll_next_or_skipped`](Self::poll_next_or_skipped).
    pub async fn next_or_skipped(&mut self) -> Result<TrackNext> {
        std::future::poll_fn(|cx| self.poll_next_or_skipped(cx)).await
    }

    /// Groups this consumer missed because the cache evicted them first.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Sequence of the latest group, if any.
    pub fn latest(&self) -> Option<u64> {
        self.shared.state.lock().cache.latest()
    }

    /// A reader of the latest group, without moving the cursor.
    pub fn latest_group(&self) -> Option<GroupConsumer> {
        let state = self.shared.state.lock();
        state.cache.latest_group().map(|g| GroupConsumer::new(g.clone()))
    }

    /// A reader of group `sequence` if the cache still holds it.
    pub fn group(&self, sequence: u64) -> Option<GroupConsumer> {
        let state = self.shared.state.lock();
        state.cache.get(sequence).map(|g| GroupConsumer::new(g.clone()))
    }

    /// Waits for the track to end: `Ok` when finished, the error if aborted.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared
            .state
            .lock()
            .life
            .poll_closed(&mut self.slot, cx.waker())
    }

    /// Waits for the track to end: `Ok` when finished, the error if aborted.
    pub async fn closed(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Whether both consumers read the same track.
    pub fn is_same_track(&self, other: &TrackConsumer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Clone for TrackConsumer {
    /// A second consumer at the same position.
    fn clone(&self) -> Self {
        self.shared.state.lock().life.add_consumer();
        TrackConsumer {
            shared: self.shared.clone(),
            cursor: self.cursor,
            start: self.start,
            catch_up: self.catch_up.clone(),
            skipped: self.skipped,
            skipped_groups: self.skipped_groups.clone(),
            slot: None,
        }
    }
}

impl Drop for TrackConsumer {
    fn drop(&mut self) {
        self.shared.state.lock().life.release_consumer(&mut self.slot);
    }
}

impl std::fmt::Debug for TrackConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackConsumer")
            .field("info", self.info())
            .field("cursor", &self.cursor)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GroupProducer;
    use bytes::Bytes;
    use std::task::Waker;
    use std::time::Duration;

    /// A relay gives up an upstream track only if nobody came back for it,
    /// and a subscriber arriving after that gets a fresh request, never the
    /// aborted track.
    #[test]
    fn abort_if_unused_races_no_subscriber() {
        use crate::model::BroadcastProducer;
        let broadcast = BroadcastProducer::new();
        let mut requests = broadcast.requests();
        let consumer = broadcast.consume();
        let first = consumer.subscribe_track(&Track::new("t")).unwrap();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(upstream)) = requests.poll_requested_track(&mut cx) else {
            panic!("a request")
        };

        // A consumer is back: the track goes on.
        let again = consumer.subscribe_track(&Track::new("t")).unwrap();
        drop(first);
        assert!(!upstream.abort_if_unused(Error::Cancel));
        assert!(upstream.is_closed().is_none());

        // Nobody left: it ends, and the next subscriber asks afresh.
        drop(again);
        assert!(upstream.abort_if_unused(Error::Cancel));
        assert_eq!(upstream.is_closed(), Some(Err(Error::Cancel)));
        assert!(upstream.abort_if_unused(Error::Cancel), "already ended");
        let mut later = consumer.subscribe_track(&Track::new("t")).unwrap();
        assert!(
            later.poll_next_group(&mut cx).is_pending(),
            "not the aborted track"
        );
        let Poll::Ready(Some(fresh)) = requests.poll_requested_track(&mut cx) else {
            panic!("a fresh request")
        };
        assert!(fresh.is_closed().is_none());
    }

    /// A relay already feeding a track from group 10 is asked for group 7
    /// on: the gap is requested from the session once, the subscriber waits
    /// for it and then reads 7.. in order; a live subscriber never sees it.
    #[test]
    fn an_earlier_start_on_a_served_track_is_backfilled_in_order() {
        use crate::model::BroadcastProducer;
        let broadcast = BroadcastProducer::new();
        let mut requests = broadcast.requests();
        let consumer = broadcast.consume();
        let mut live = consumer.subscribe_track(&Track::new("t")).unwrap();
        let Poll::Ready(Some(mut upstream)) = poll(|cx| requests.poll_requested_track(cx)) else {
            panic!("a request")
        };
        assert_eq!(upstream.requested_start(), None);
        upstream.serve_backfill(None);
        assert!(poll(|cx| upstream.poll_backfill(cx)).is_pending());
        let _g10 = group_with(&mut upstream, 10, 1);
        let _g11 = group_with(&mut upstream, 11, 1);
        assert!(
            poll(|cx| upstream.poll_backfill(cx)).is_pending(),
            "nobody wants older groups"
        );

        let mut early = consumer.subscribe_track_from(&Track::new("t"), Some(7)).unwrap();
        let Poll::Ready(request) = poll(|cx| upstream.poll_backfill(cx)) else {
            panic!("a backfill request")
        };
        assert_eq!(request.range(), 7..10);
        assert_eq!(next(&mut early), None, "waits for the older groups");
        assert_eq!(next(&mut live), Some(10));
        for sequence in request.range() {
            request.create_group(sequence).unwrap().finish().unwrap();
        }
        assert_eq!(next(&mut live), Some(11));
        assert_eq!(next(&mut early), None, "still waiting");
        drop(request);
        let read: Vec<_> = std::iter::from_fn(|| next(&mut early)).collect();
        assert_eq!(read, vec![7, 8, 9, 10, 11]);
        assert_eq!(next(&mut live), None, "the live edge never goes back");

        // Asked for once: an equal or later start asks nothing more.
        let _again = consumer.subscribe_track_from(&Track::new("t"), Some(8)).unwrap();
        assert!(poll(|cx| upstream.poll_backfill(cx)).is_pending());
    }

    /// A backfill that brings nothing (the publisher no longer has the
    /// groups) releases the waiting subscriber, which starts at what is held.
    #[test]
    fn an_unanswered_backfill_releases_its_waiters() {
        use crate::model::BroadcastProducer;
        let broadcast = BroadcastProducer::new();
        let mut requests = broadcast.requests();
        let consumer = broadcast.consume();
        let _live = consumer.subscribe_track(&Track::new("t")).unwrap();
        let Poll::Ready(Some(mut upstream)) = poll(|cx| requests.poll_requested_track(cx)) else {
            panic!("a request")
        };
        upstream.serve_backfill(Some(4));
        let _g4 = group_with(&mut upstream, 4, 1);
        let mut early = consumer.subscribe_track_from(&Track::new("t"), Some(0)).unwrap();
        let Poll::Ready(request) = poll(|cx| upstream.poll_backfill(cx)) else {
            panic!("a backfill request")
        };
        assert_eq!(request.range(), 0..4);
        assert_eq!(next(&mut early), None);
        drop(request);
        assert_eq!(next(&mut early), Some(4));
    }

    /// Waiting for one group: a local producer's answer is immediate; a
    /// track fed upstream waits for the subscription or a backfill, and a
    /// backfill that did not bring it says so.
    #[test]
    fn a_single_group_is_waited_for_only_while_it_may_come() {
        use crate::model::BroadcastProducer;
        let mut local = TrackProducer::new(Track::new("t"));
        let _g3 = group_with(&mut local, 3, 1);
        let mut consumer = local.consume();
        assert!(matches!(
            poll(|cx| consumer.poll_group(3, cx)),
            Poll::Ready(Some(_))
        ));
        assert!(matches!(poll(|cx| consumer.poll_group(1, cx)), Poll::Ready(None)));

        let broadcast = BroadcastProducer::new();
        let mut requests = broadcast.requests();
        let consumer = broadcast.consume();
        let mut reader = consumer.subscribe_track(&Track::new("t")).unwrap();
        let Poll::Ready(Some(mut upstream)) = poll(|cx| requests.poll_requested_track(cx)) else {
            panic!("a request")
        };
        assert!(
            poll(|cx| reader.poll_group(6, cx)).is_pending(),
            "the subscription may bring it"
        );
        upstream.serve_backfill(Some(6));
        let _g6 = group_with(&mut upstream, 6, 1);
        assert!(matches!(
            poll(|cx| reader.poll_group(6, cx)),
            Poll::Ready(Some(_))
        ));

        let mut early = consumer.subscribe_track_from(&Track::new("t"), Some(2)).unwrap();
        let Poll::Ready(request) = poll(|cx| upstream.poll_backfill(cx)) else {
            panic!("a backfill request")
        };
        request.create_group(5).unwrap().finish().unwrap();
        assert!(
            poll(|cx| early.poll_group(2, cx)).is_pending(),
            "backfill in flight"
        );
        drop(request);
        assert!(matches!(poll(|cx| early.poll_group(2, cx)), Poll::Ready(None)));
        assert!(matches!(poll(|cx| early.poll_group(5, cx)), Poll::Ready(Some(_))));
    }

    /// Groups said not to come, and groups evicted unread, are counted and
    /// listed by the consumers that would have read them.
    #[tokio::test(start_paused = true)]
    async fn dropped_and_evicted_groups_are_listed_for_those_who_wanted_them() {
        let config = CacheConfig {
            max_age: Duration::from_secs(1),
            ..Default::default()
        };
        let mut track = TrackProducer::with_cache(Track::new("t"), config);
        let mut early = track.consume_from(0);
        let _g0 = group_with(&mut track, 0, 1);
        assert_eq!(next(&mut early), Some(0));
        let mut later = track.consume_from(5);
        track.drop_groups(1..=3);
        let _g4 = group_with(&mut track, 4, 1);
        assert_eq!(next(&mut early), Some(4));
        assert_eq!(early.skipped(), 3);
        assert_eq!(early.take_skipped_groups(), vec![1, 2, 3]);
        assert_eq!(early.take_skipped_groups(), Vec::<u64>::new(), "taken");
        // Below its start: not this consumer's loss.
        assert_eq!(next(&mut later), None);
        assert_eq!(later.skipped(), 0);
        assert!(later.take_skipped_groups().is_empty());

        // Held groups are not dropped; an evicted one is listed too.
        track.drop_groups(4..=4);
        let _g5 = group_with(&mut track, 5, 1);
        let _g6 = group_with(&mut track, 6, 1);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(next(&mut later), Some(6));
        assert_eq!(later.take_skipped_groups(), vec![5]);
    }

    fn poll<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        f(&mut Context::from_waker(Waker::noop()))
    }

    fn next(consumer: &mut TrackConsumer) -> Option<u64> {
        match poll(|cx| consumer.poll_next_group(cx)) {
            Poll::Ready(Ok(Some(group))) => Some(group.sequence()),
            _ => None,
        }
    }

    fn group_with(track: &mut TrackProducer, sequence: u64, bytes: usize) -> GroupProducer {
        let mut group = track.create_group(sequence).unwrap();
        group.write_frame(Bytes::from(vec![0u8; bytes])).unwrap();
        group
    }

    #[test]
    fn append_numbers_groups_and_create_rejects_duplicates() {
        let mut track = TrackProducer::new(Track::new("t").with_priority(3));
        assert_eq!(track.info().priority, 3);
        assert_eq!(track.append_group().unwrap().sequence(), 0);
        assert_eq!(track.append_group().unwrap().sequence(), 1);
        assert_eq!(track.create_group(10).unwrap().sequence(), 10);
        assert_eq!(track.append_group().unwrap().sequence(), 11);
        assert_eq!(track.create_group(5).unwrap().sequence(), 5);
        assert_eq!(track.create_group(10).err(), Some(Error::Duplicate));
        assert_eq!(track.latest(), Some(11));
    }

    #[test]
    fn consumers_start_at_the_latest_group_by_default() {
        let mut track = TrackProducer::new(Track::new("t"));
        let _g0 = track.append_group().unwrap();
        let _g1 = track.append_group().unwrap();
        let mut late = track.consume();
        let mut from_zero = track.consume_from(0);
        let _g2 = track.append_group().unwrap();
        assert_eq!(next(&mut late), Some(1));
        assert_eq!(next(&mut late), Some(2));
        assert_eq!(next(&mut late), None);
        assert_eq!(next(&mut from_zero), Some(0));
        assert_eq!(next(&mut from_zero), Some(1));
        assert_eq!(next(&mut from_zero), Some(2));
    }

    #[test]
    fn held_groups_are_read_in_sequence_order_then_new_ones_as_they_arrive() {
        let mut track = TrackProducer::new(Track::new("t"));
        let mut consumer = track.consume_from(3);
        let _a = track.create_group(5).unwrap();
        let _b = track.create_group(3).unwrap();
        let _c = track.create_group(2).unwrap(); // below the start: not delivered
        // What is held at the first read comes in sequence order.
        assert_eq!(next(&mut consumer), Some(3));
        let _d = track.create_group(4).unwrap();
        let _e = track.create_group(7).unwrap();
        let _f = track.create_group(6).unwrap();
        assert_eq!(next(&mut consumer), Some(5));
        // Later groups in the order they arrive.
        assert_eq!(next(&mut consumer), Some(4));
        assert_eq!(next(&mut consumer), Some(7));
        assert_eq!(next(&mut consumer), Some(6));
        assert_eq!(next(&mut consumer), None);
        // A late group older than the latest at subscribe time is out of range too.
        let mut latest = track.consume();
        let _g = track.create_group(1).unwrap();
        assert_eq!(next(&mut latest), Some(7));
        assert_eq!(next(&mut latest), None);
    }

    #[tokio::test]
    async fn finish_drains_then_ends_and_abort_errors() {
        let mut track = TrackProducer::new(Track::new("t"));
        let mut consumer = track.consume_from(0);
        track.append_group().unwrap();
        track.append_group().unwrap();
        track.finish().unwrap();
        assert_eq!(consumer.next_group().await.unwrap().unwrap().sequence(), 0);
        assert_eq!(consumer.next_group().await.unwrap().unwrap().sequence(), 1);
        assert!(consumer.next_group().await.unwrap().is_none());
        assert_eq!(consumer.closed().await, Ok(()));

        let mut track = TrackProducer::new(Track::new("t"));
        let mut consumer = track.consume();
        track.append_group().unwrap();
        let copy = track.clone();
        track.abort(Error::NotFound);
        assert_eq!(consumer.next_group().await.err(), Some(Error::NotFound));
        assert_eq!(copy.is_closed(), Some(Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn dropping_the_last_producer_ends_the_track() {
        let track = TrackProducer::new(Track::new("t"));
        let second = track.clone();
        let mut consumer = track.consume();
        drop(track);
        assert!(poll(|cx| consumer.poll_closed(cx)).is_pending());
        drop(second);
        assert!(consumer.next_group().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn abort_on_drop_aborts_instead_of_finishing() {
        let mut track = TrackProducer::new(Track::new("t"));
        let other = track.clone();
        let mut consumer = track.consume();
        track.abort_on_drop(Error::Cancel);
        drop(track);
        assert_eq!(consumer.closed().await, Err(Error::Cancel));
        assert_eq!(other.is_closed(), Some(Err(Error::Cancel)));

        let mut track = TrackProducer::new(Track::new("t"));
        let mut consumer = track.consume();
        track.abort_on_drop(Error::Cancel);
        track.cancel_abort_on_drop();
        drop(track);
        assert_eq!(consumer.closed().await, Ok(()));
    }

    #[tokio::test]
    async fn producer_sees_when_every_consumer_left() {
        let mut track = TrackProducer::new(Track::new("t"));
        assert!(track.is_unused());
        let consumer = track.consume();
        let copy = consumer.clone();
        assert!(poll(|cx| track.poll_unused(cx)).is_pending());
        drop(consumer);
        assert!(!track.is_unused());
        drop(copy);
        track.unused().await;
    }

    #[tokio::test(start_paused = true)]
    async fn groups_expire_once_superseded_for_max_age() {
        let config = CacheConfig {
            max_age: Duration::from_secs(2),
            ..Default::default()
        };
        let mut track = TrackProducer::with_cache(Track::new("t"), config);
        let mut slow = track.consume_from(0);
        let g0 = group_with(&mut track, 0, 10);
        tokio::time::advance(Duration::from_secs(5)).await;
        // Alone, the latest group never expires.
        assert_eq!(track.cache_stats().groups, 1);

        let mut g1 = group_with(&mut track, 1, 10);
        tokio::time::advance(Duration::from_millis(2000)).await;
        let _g2 = group_with(&mut track, 2, 10);
        assert_eq!(track.cache_stats().groups, 3);
        tokio::time::advance(Duration::from_millis(1)).await;
        // Group 0 was superseded by group 1 two seconds ago.
        assert_eq!(next(&mut slow), Some(1));
        assert_eq!(slow.skipped(), 1);
        assert_eq!(track.cache_stats().groups, 2);
        assert_eq!(g0.is_closed(), Some(Err(Error::Old)));
        assert_eq!(track.create_group(0).err(), Some(Error::Old));

        // Group 1 expires once group 2 is over two seconds old; its writer is stopped.
        tokio::time::advance(Duration::from_millis(2001)).await;
        assert_eq!(next(&mut slow), Some(2));
        assert_eq!(g1.write_frame(Bytes::new()), Err(Error::Old));
        assert_eq!(track.cache_stats().evicted, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_group_older_than_max_age_is_refused() {
        let config = CacheConfig {
            max_age: Duration::from_secs(1),
            ..Default::default()
        };
        let mut track = TrackProducer::with_cache(Track::new("t"), config);
        let _g5 = track.create_group(5).unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(track.create_group(3).is_ok());
        tokio::time::advance(Duration::from_millis(501)).await;
        assert_eq!(track.create_group(4).err(), Some(Error::Old));
    }

    #[test]
    fn the_byte_bound_evicts_oldest_but_keeps_the_latest() {
        use crate::model::{FRAME_OVERHEAD, GROUP_OVERHEAD};
        let config = CacheConfig {
            max_bytes: 4000,
            max_group_bytes: 3000,
            ..Default::default()
        };
        // Each group: 400 payload bytes in two frames, plus bookkeeping.
        let per_group = GROUP_OVERHEAD + 2 * FRAME_OVERHEAD + 400;
        let mut track = TrackProducer::with_cache(Track::new("t"), config);
        let mut slow = track.consume_from(0);
        for sequence in 0..10 {
            let mut group = group_with(&mut track, sequence, 300);
            group.write_frame(Bytes::from(vec![1u8; 100])).unwrap();
            let stats = track.cache_stats();
            assert!(stats.bytes <= 4000, "{stats:?}");
        }
        let stats = track.cache_stats();
        assert_eq!(stats.groups, (4000 / per_group) as usize);
        assert_eq!(stats.bytes, stats.groups as u64 * per_group);
        // The slow consumer skips what was evicted and never blocked anyone.
        let first_held = 10 - stats.groups as u64;
        assert_eq!(next(&mut slow), Some(first_held));
        assert_eq!(slow.skipped(), first_held);

        // One big group fills the track on its own and still stays.
        let mut big = track.append_group().unwrap();
        big.write_frame(Bytes::from(vec![0u8; 3000])).unwrap();
        assert_eq!(track.cache_stats().groups, 1);
        assert_eq!(big.write_frame(Bytes::from_static(b"x")), Err(Error::CacheFull));
        assert!(slow.latest_group().is_some());
    }

    #[test]
    fn empty_groups_are_not_free() {
        // Thousands of empty groups cannot grow the cache past its bound.
        let config = CacheConfig {
            max_bytes: 64 * 1024,
            ..Default::default()
        };
        let mut track = TrackProducer::with_cache(Track::new("t"), config);
        for _ in 0..10_000 {
            let mut group = track.append_group().unwrap();
            group.write_frame(Bytes::new()).unwrap();
        }
        let stats = track.cache_stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        assert!(stats.groups <= 128, "{stats:?}");
    }

    #[tokio::test]
    async fn latest_group_and_group_lookup() {
        let mut track = TrackProducer::new(Track::new("t"));
        let consumer = track.consume();
        assert!(consumer.latest_group().is_none());
        let mut g = track.append_group().unwrap();
        g.write_frame(Bytes::from_static(b"a")).unwrap();
        g.write_frame(Bytes::from_static(b"b")).unwrap();
        let latest = consumer.latest_group().unwrap();
        assert_eq!(latest.sequence(), 0);
        assert_eq!(latest.latest_frame().unwrap(), "b");
        assert_eq!(consumer.group(0).unwrap().sequence(), 0);
        assert!(consumer.group(1).is_none());
        assert_eq!(consumer.latest(), Some(0));
    }

    #[test]
    fn a_cloned_consumer_continues_from_the_same_place() {
        let mut track = TrackProducer::new(Track::new("t"));
        let mut a = track.consume_from(0);
        let _g0 = track.append_group().unwrap();
        let _g1 = track.append_group().unwrap();
        assert_eq!(next(&mut a), Some(0));
        let mut b = a.clone();
        assert!(a.is_same_track(&b));
        assert_eq!(next(&mut b), Some(1));
        assert_eq!(next(&mut a), Some(1));
    }
}

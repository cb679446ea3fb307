//! Tracks: groups by sequence number, delivered in the order they arrive.
//!
//! A [`TrackProducer`] appends groups; every [`TrackConsumer`] has its own
//! cursor and, by default, starts at the latest group, so a late joiner
//! starts at once. Recent groups are kept by the track's cache (see
//! [`CacheConfig`]); a consumer that falls behind skips what was evicted and
//! can tell how many groups it skipped.
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

use tokio::time::Instant;

use super::cache::{CacheConfig, TrackCache};
use super::group::{GroupConsumer, GroupProducer};
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrackStatus {
    Open,
    Finished,
    Aborted(Error),
}

pub(crate) struct TrackState {
    pub cache: TrackCache,
    pub status: TrackStatus,
    pub producers: usize,
    pub consumers: usize,
    readers: WaiterList,
    unused: WaiterList,
}

pub(crate) struct TrackShared {
    pub info: Track,
    pub state: Lock<TrackState>,
}

impl TrackShared {
    pub fn new(info: Track, config: CacheConfig) -> Arc<Self> {
        Arc::new_cyclic(|weak| TrackShared {
            info,
            state: Lock::new(TrackState {
                cache: TrackCache::new(config, weak.clone()),
                status: TrackStatus::Open,
                producers: 0,
                consumers: 0,
                readers: WaiterList::default(),
                unused: WaiterList::default(),
            }),
        })
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().status == TrackStatus::Open
    }

    /// Ends the track with `err` unless it already ended.
    pub fn abort(&self, err: Error) {
        let mut state = self.state.lock();
        if state.status == TrackStatus::Open {
            state.status = TrackStatus::Aborted(err);
            state.readers.wake_all();
            state.unused.wake_all();
        }
    }
}

/// Writes a track: creates its groups.
///
/// Cloning gives another writer of the same track. Dropping the last one ends
/// the track: consumers read the groups still held, then the end.
pub struct TrackProducer {
    shared: Arc<TrackShared>,
    slot: Option<WaitSlot>,
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
        shared.state.lock().producers += 1;
        TrackProducer { shared, slot: None }
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
        match &state.status {
            TrackStatus::Open => {}
            TrackStatus::Finished => return Err(Error::Closed),
            TrackStatus::Aborted(err) => return Err(err.clone()),
        }
        let group = state.cache.insert(sequence, Instant::now())?;
        state.readers.wake_all();
        Ok(GroupProducer::from_shared(group))
    }

    /// Sequence of the latest group, if any.
    pub fn latest(&self) -> Option<u64> {
        self.shared.state.lock().cache.latest()
    }

    /// Ends the track; consumers read the groups still held, then the end.
    pub fn finish(self) -> Result<()> {
        let mut state = self.shared.state.lock();
        match &state.status {
            TrackStatus::Open => {
                state.status = TrackStatus::Finished;
                state.readers.wake_all();
                state.unused.wake_all();
                Ok(())
            }
            TrackStatus::Finished => Err(Error::Closed),
            TrackStatus::Aborted(err) => Err(err.clone()),
        }
    }

    /// Ends the track with `err`; consumers see it on their next read.
    pub fn abort(self, err: Error) {
        self.shared.abort(err);
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
        status_result(&self.shared.state.lock().status)
    }

    /// Whether no consumer is left.
    pub fn is_unused(&self) -> bool {
        self.shared.state.lock().consumers == 0
    }

    /// Ready once no consumer is left or the track has ended.
    pub fn poll_unused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.state.lock();
        if state.consumers == 0 || state.status != TrackStatus::Open {
            return Poll::Ready(());
        }
        state.unused.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// Waits until every consumer has gone (or the track ended), so a relay
    /// can release its upstream subscription.
    pub async fn unused(&mut self) {
        std::future::poll_fn(|cx| self.poll_unused(cx)).await
    }

    /// Cache counters: groups held, bytes held, groups evicted so far.
    pub fn cache_stats(&self) -> CacheStats {
        let state = self.shared.state.lock();
        CacheStats {
            groups: state.cache.len(),
            bytes: state.cache.bytes(),
            evicted: state.cache.evicted(),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<TrackShared> {
        &self.shared
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
        state.unused.unregister(&mut self.slot);
        state.producers -= 1;
        if state.producers == 0 && state.status == TrackStatus::Open {
            state.status = TrackStatus::Finished;
            state.readers.wake_all();
            state.unused.wake_all();
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Groups held.
    pub groups: usize,
    /// Payload bytes held.
    pub bytes: u64,
    /// Groups evicted since the track started.
    pub evicted: u64,
}

fn status_result(status: &TrackStatus) -> Option<Result<()>> {
    match status {
        TrackStatus::Open => None,
        TrackStatus::Finished => Some(Ok(())),
        TrackStatus::Aborted(err) => Some(Err(err.clone())),
    }
}

/// Reads a track's groups, in arrival order, with its own cursor.
pub struct TrackConsumer {
    shared: Arc<TrackShared>,
    /// Arrival number of the next group to look at.
    cursor: u64,
    /// Groups older than this are not delivered.
    start: Option<u64>,
    skipped: u64,
    slot: Option<WaitSlot>,
}

impl TrackConsumer {
    /// `start: None` means the latest group at this moment (or the first to
    /// come, on an empty track).
    pub(crate) fn new(shared: Arc<TrackShared>, start: Option<u64>) -> Self {
        let (cursor, start) = {
            let mut state = shared.state.lock();
            state.consumers += 1;
            (state.cache.first_arrival(), start.or(state.cache.latest()))
        };
        TrackConsumer {
            shared,
            cursor,
            start,
            skipped: 0,
            slot: None,
        }
    }

    /// The track's name and priority.
    pub fn info(&self) -> &Track {
        &self.shared.info
    }

    /// The next group to arrive at or after the start; `None` once the
    /// track finished and every held group was read.
    pub fn poll_next_group(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<GroupConsumer>>> {
        let mut state = self.shared.state.lock();
        if let TrackStatus::Aborted(err) = &state.status {
            return Poll::Ready(Err(err.clone()));
        }
        state.cache.evict_expired(Instant::now());
        while let Some(found) = state.cache.next_from(self.cursor) {
            // Arrival numbers are dense: a gap is a group evicted unread.
            self.skipped += found.arrival - self.cursor;
            self.cursor = found.arrival + 1;
            if self.start.is_some_and(|start| found.sequence < start) {
                continue;
            }
            return Poll::Ready(Ok(Some(GroupConsumer::new(found.group.clone()))));
        }
        let next = state.cache.next_arrival();
        self.skipped += next - self.cursor;
        self.cursor = next;
        if state.status == TrackStatus::Finished {
            return Poll::Ready(Ok(None));
        }
        state.readers.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next group to arrive at or after the start; `None` once the
    /// track finished and every held group was read.
    pub async fn next_group(&mut self) -> Result<Option<GroupConsumer>> {
        std::future::poll_fn(|cx| self.poll_next_group(cx)).await
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
        let mut state = self.shared.state.lock();
        if let Some(result) = status_result(&state.status) {
            return Poll::Ready(result);
        }
        state.readers.register(&mut self.slot, cx.waker());
        Poll::Pending
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
        self.shared.state.lock().consumers += 1;
        TrackConsumer {
            shared: self.shared.clone(),
            cursor: self.cursor,
            start: self.start,
            skipped: self.skipped,
            slot: None,
        }
    }
}

impl Drop for TrackConsumer {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.readers.unregister(&mut self.slot);
        state.consumers -= 1;
        if state.consumers == 0 {
            state.unused.wake_all();
        }
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

//! Groups: frames in order, finished or aborted.
//!
//! A group is the unit a consumer can join at and the unit the cache evicts.
//! Its frames live in one shared state behind one lock, so a consumer reads a
//! frame with one lock and a reference-count bump, and `N` consumers cost `N`
//! of those, never a copy of the payload.
//!
//! ```
//! use moq_lite::model::GroupProducer;
//! # tokio_test_block_on(async {
//! let mut group = GroupProducer::new(0);
//! let mut reader = group.consume();
//! group.write_frame("hello".into()).unwrap();
//! group.finish().unwrap();
//! assert_eq!(reader.read_frame().await.unwrap().unwrap(), "hello");
//! assert_eq!(reader.read_frame().await.unwrap(), None);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use super::frame::{FrameConsumer, FrameProducer};
use super::lock::Lock;
use super::waiter::{WaitSlot, WaiterList};
use crate::{Error, Result};

/// What a group costs beyond its payload, charged to the cache budget so
/// that empty groups cannot pile up for free (the group's state, its place in
/// the cache's maps).
pub const GROUP_OVERHEAD: u64 = 512;
/// What a frame costs beyond its payload (its entry and first chunk).
pub const FRAME_OVERHEAD: u64 = 64;
/// What each further chunk of a frame costs beyond its bytes.
pub const CHUNK_OVERHEAD: u64 = 32;

/// Per-group bounds, taken from the track's [`CacheConfig`](super::CacheConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Frames a group may hold.
    pub max_frames: u64,
    /// Payload bytes a group may hold.
    pub max_bytes: u64,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            max_frames: super::cache::DEFAULT_MAX_GROUP_FRAMES,
            max_bytes: super::cache::DEFAULT_MAX_GROUP_BYTES,
        }
    }
}

/// Where a group's bytes are counted towards its track's memory bound.
///
/// Frame writes add to it without touching the track's lock; only when the
/// bound is crossed does the writer take that lock to evict old groups.
pub(crate) trait ByteBudget: Send + Sync {
    /// Adds `n` bytes; returns whether the track is now over its bound.
    fn add(&self, n: u64) -> bool;
    /// Evicts old groups until the track is back under its bound.
    fn enforce(&self);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupStatus {
    Open,
    Finished,
    Aborted(Error),
}

/// One frame inside the group state.
#[derive(Debug)]
pub(crate) struct FrameEntry {
    pub size: u64,
    pub written: u64,
    /// Chunks as written; collapsed into one on the first whole-frame read.
    pub chunks: Vec<Bytes>,
}

impl FrameEntry {
    pub fn is_complete(&self) -> bool {
        self.written == self.size
    }

    /// The whole payload; joins the chunks once (shared by every later reader).
    pub fn whole(&mut self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks[0].clone(),
            _ => {
                let mut joined = BytesMut::with_capacity(self.written as usize);
                for chunk in &self.chunks {
                    joined.extend_from_slice(chunk);
                }
                let joined = joined.freeze();
                self.chunks = vec![joined.clone()];
                joined
            }
        }
    }

    /// The bytes from `offset` to the end of the chunk that holds it.
    ///
    /// `hint` is the reader's place: (chunk index, byte offset where that
    /// chunk starts). Reading a frame of k chunks is then O(k), not O(k^2);
    /// a hint past the end (the chunks were joined into one) starts over.
    pub fn chunk_at(&self, offset: u64, hint: &mut (usize, u64)) -> Option<Bytes> {
        if hint.0 >= self.chunks.len() || hint.1 > offset {
            *hint = (0, 0);
        }
        let (mut index, mut start) = *hint;
        while let Some(chunk) = self.chunks.get(index) {
            let end = start + chunk.len() as u64;
            if offset < end {
                *hint = (index, start);
                return Some(chunk.slice((offset - start) as usize..));
            }
            index += 1;
            start = end;
        }
        None
    }
}

pub(crate) struct GroupState {
    pub frames: Vec<FrameEntry>,
    pub status: GroupStatus,
    /// Charged to the track's budget: payload plus bookkeeping overhead.
    pub bytes: u64,
    /// Payload bytes declared so far, for the per-group limit.
    pub payload: u64,
    pub producers: usize,
    pub consumers: usize,
    pub readers: WaiterList,
    pub unused: WaiterList,
}

impl GroupState {
    /// Forgets a departing consumer (group or frame reader) and tells the
    /// producers when it was the last.
    pub(crate) fn release_consumer(&mut self, slot: &mut Option<WaitSlot>) {
        self.readers.unregister(slot);
        self.consumers -= 1;
        if self.consumers == 0 {
            self.unused.wake_all();
        }
    }
}

pub(crate) struct GroupShared {
    pub sequence: u64,
    pub limits: GroupLimits,
    pub budget: Option<Arc<dyn ByteBudget>>,
    pub state: Lock<GroupState>,
    /// Frames fully written, readable without the lock (for `latest_frame` peeks).
    pub complete: AtomicU64,
}

impl GroupShared {
    pub fn new(sequence: u64, limits: GroupLimits, budget: Option<Arc<dyn ByteBudget>>) -> Arc<Self> {
        Arc::new(GroupShared {
            sequence,
            limits,
            budget,
            state: Lock::new(GroupState {
                frames: Vec::new(),
                status: GroupStatus::Open,
                bytes: GROUP_OVERHEAD,
                payload: 0,
                producers: 0,
                consumers: 0,
                readers: WaiterList::default(),
                unused: WaiterList::default(),
            }),
            complete: AtomicU64::new(0),
        })
    }

    /// Ends the group with `err` unless it already ended; wakes everyone.
    pub fn abort(&self, err: Error) {
        let mut state = self.state.lock();
        if state.status == GroupStatus::Open {
            state.status = GroupStatus::Aborted(err);
            state.readers.wake_all();
            state.unused.wake_all();
        }
    }

    /// Bytes held, for eviction accounting.
    pub fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }

    /// Appends `size` bytes worth of frame entry after checking every bound.
    /// On a bound violation the group is aborted, so consumers see why.
    pub fn push_frame(&self, size: u64, first: Option<Bytes>) -> Result<usize> {
        let (index, over) = {
            let mut state = self.state.lock();
            check_open(&state.status)?;
            if let Some(last) = state.frames.last() {
                if !last.is_complete() {
                    // A new frame while the last still lacks bytes: that frame was short.
                    return Err(abort_locked(&mut state, Error::WrongSize));
                }
            }
            if state.frames.len() as u64 >= self.limits.max_frames
                || state.payload.saturating_add(size) > self.limits.max_bytes
            {
                return Err(abort_locked(&mut state, Error::CacheFull));
            }
            // `first` is a whole frame (`size` is its length) or nothing yet.
            let written = first.as_ref().map_or(0, |b| b.len() as u64);
            state.frames.push(FrameEntry {
                size,
                written,
                chunks: first.into_iter().filter(|b| !b.is_empty()).collect(),
            });
            let charged = written + FRAME_OVERHEAD;
            state.bytes += charged;
            state.payload += size;
            if written == size {
                self.complete.fetch_add(1, Ordering::Release);
            }
            state.readers.wake_all();
            let index = state.frames.len() - 1;
            let over = self.budget.as_ref().is_some_and(|b| b.add(charged));
            (index, over)
        };
        if over {
            self.enforce_budget();
        }
        Ok(index)
    }

    /// Appends a chunk to frame `index`.
    pub fn write_chunk(&self, index: usize, chunk: Bytes) -> Result<()> {
        let n = chunk.len() as u64;
        let over = {
            let mut state = self.state.lock();
            check_open(&state.status)?;
            let frame = &state.frames[index];
            if frame.written.saturating_add(n) > frame.size {
                return Err(abort_locked(&mut state, Error::WrongSize));
            }
            if n == 0 {
                return Ok(());
            }
            let charged = n + CHUNK_OVERHEAD;
            state.bytes += charged;
            let frame = &mut state.frames[index];
            frame.written += n;
            frame.chunks.push(chunk);
            if frame.is_complete() {
                self.complete.fetch_add(1, Ordering::Release);
            }
            state.readers.wake_all();
            self.budget.as_ref().is_some_and(|b| b.add(charged))
        };
        if over {
            self.enforce_budget();
        }
        Ok(())
    }

    fn enforce_budget(&self) {
        if let Some(budget) = &self.budget {
            budget.enforce();
        }
    }

    /// Drops one producer reference; the last one ends the group.
    pub fn release_producer(&self) {
        let mut state = self.state.lock();
        state.producers -= 1;
        if state.producers == 0 && state.status == GroupStatus::Open {
            let short = state.frames.last().is_some_and(|f| !f.is_complete());
            state.status = if short {
                GroupStatus::Aborted(Error::WrongSize)
            } else {
                GroupStatus::Finished
            };
            state.readers.wake_all();
            state.unused.wake_all();
        }
    }
}

pub(crate) fn check_open(status: &GroupStatus) -> Result<()> {
    match status {
        GroupStatus::Open => Ok(()),
        GroupStatus::Finished => Err(Error::Closed),
        GroupStatus::Aborted(err) => Err(err.clone()),
    }
}

fn abort_locked(state: &mut GroupState, err: Error) -> Error {
    if state.status == GroupStatus::Open {
        state.status = GroupStatus::Aborted(err.clone());
        state.readers.wake_all();
        state.unused.wake_all();
    }
    err
}

/// Writes the frames of one group.
///
/// Cloning gives another writer of the same group; the group finishes when
/// [`finish`](Self::finish) is called or the last writer (frame writers
/// included) is dropped. A group dropped with a frame short of its declared
/// size is aborted with [`Error::WrongSize`].
pub struct GroupProducer {
    shared: Arc<GroupShared>,
    slot: Option<WaitSlot>,
}

impl GroupProducer {
    /// A standalone group with default limits and no track (for tests and tools).
    pub fn new(sequence: u64) -> Self {
        Self::from_shared(GroupShared::new(sequence, GroupLimits::default(), None))
    }

    pub(crate) fn from_shared(shared: Arc<GroupShared>) -> Self {
        shared.state.lock().producers += 1;
        GroupProducer { shared, slot: None }
    }

    /// The group's sequence number within its track.
    pub fn sequence(&self) -> u64 {
        self.shared.sequence
    }

    /// Appends a whole frame.
    pub fn write_frame(&mut self, payload: Bytes) -> Result<()> {
        let size = payload.len() as u64;
        self.shared.push_frame(size, Some(payload)).map(|_| ())
    }

    /// Starts a frame of `size` bytes to be written in chunks.
    ///
    /// Starting a frame while the previous one is still short aborts the
    /// group with [`Error::WrongSize`].
    pub fn create_frame(&mut self, size: u64) -> Result<FrameProducer> {
        let index = self.shared.push_frame(size, None)?;
        Ok(FrameProducer::new(self.shared.clone(), index))
    }

    /// Ends the group: consumers read what is there, then the end.
    pub fn finish(self) -> Result<()> {
        let mut state = self.shared.state.lock();
        check_open(&state.status)?;
        if state.frames.last().is_some_and(|f| !f.is_complete()) {
            return Err(abort_locked(&mut state, Error::WrongSize));
        }
        state.status = GroupStatus::Finished;
        state.readers.wake_all();
        state.unused.wake_all();
        Ok(())
    }

    /// Ends the group with `err`; consumers see the error.
    pub fn abort(self, err: Error) {
        self.shared.abort(err);
    }

    /// A new reader starting at the first frame.
    pub fn consume(&self) -> GroupConsumer {
        GroupConsumer::new(self.shared.clone())
    }

    /// Whether the group has ended, and how.
    pub fn is_closed(&self) -> Option<Result<()>> {
        match &self.shared.state.lock().status {
            GroupStatus::Open => None,
            GroupStatus::Finished => Some(Ok(())),
            GroupStatus::Aborted(err) => Some(Err(err.clone())),
        }
    }

    /// Whether no consumer of this group is left.
    pub fn is_unused(&self) -> bool {
        self.shared.state.lock().consumers == 0
    }

    /// Ready once no consumer is left or the group has ended.
    pub fn poll_unused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.state.lock();
        if state.consumers == 0 || state.status != GroupStatus::Open {
            return Poll::Ready(());
        }
        state.unused.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// Waits until no consumer is left (or the group has ended), so a relay
    /// can stop forwarding a group nobody reads.
    pub async fn unused(&mut self) {
        std::future::poll_fn(|cx| self.poll_unused(cx)).await
    }
}

impl Clone for GroupProducer {
    fn clone(&self) -> Self {
        Self::from_shared(self.shared.clone())
    }
}

impl Drop for GroupProducer {
    fn drop(&mut self) {
        self.shared.state.lock().unused.unregister(&mut self.slot);
        self.shared.release_producer();
    }
}

impl std::fmt::Debug for GroupProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupProducer")
            .field("sequence", &self.sequence())
            .finish()
    }
}

/// Reads the frames of one group in order, with its own cursor.
pub struct GroupConsumer {
    shared: Arc<GroupShared>,
    index: usize,
    slot: Option<WaitSlot>,
}

impl GroupConsumer {
    pub(crate) fn new(shared: Arc<GroupShared>) -> Self {
        shared.state.lock().consumers += 1;
        GroupConsumer {
            shared,
            index: 0,
            slot: None,
        }
    }

    /// The group's sequence number within its track.
    pub fn sequence(&self) -> u64 {
        self.shared.sequence
    }

    /// Index of the next frame this consumer will read.
    pub fn position(&self) -> usize {
        self.index
    }

    /// Reads the next whole frame; `None` once the group finished.
    pub fn poll_read_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        let mut state = self.shared.state.lock();
        if let GroupStatus::Aborted(err) = &state.status {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some(frame) = state.frames.get_mut(self.index) {
            if frame.is_complete() {
                self.index += 1;
                return Poll::Ready(Ok(Some(frame.whole())));
            }
        } else if state.status == GroupStatus::Finished {
            return Poll::Ready(Ok(None));
        }
        state.readers.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// Reads the next whole frame; `None` once the group finished.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_read_frame(cx)).await
    }

    /// The next frame as a reader of its chunks, as soon as it starts.
    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<FrameConsumer>>> {
        let mut state = self.shared.state.lock();
        if let GroupStatus::Aborted(err) = &state.status {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some(size) = state.frames.get(self.index).map(|f| f.size) {
            let reader = FrameConsumer::new(self.shared.clone(), &mut state, self.index, size);
            self.index += 1;
            return Poll::Ready(Ok(Some(reader)));
        }
        if state.status == GroupStatus::Finished {
            return Poll::Ready(Ok(None));
        }
        state.readers.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next frame as a reader of its chunks; `None` once the group finished.
    /// Lets a relay forward a large frame before it has fully arrived.
    pub async fn next_frame(&mut self) -> Result<Option<FrameConsumer>> {
        std::future::poll_fn(|cx| self.poll_next_frame(cx)).await
    }

    /// The most recent complete frame, without moving the cursor.
    pub fn latest_frame(&self) -> Option<Bytes> {
        if self.shared.complete.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut state = self.shared.state.lock();
        state
            .frames
            .iter_mut()
            .rev()
            .find(|f| f.is_complete())
            .map(FrameEntry::whole)
    }

    /// Waits for the group to end: `Ok` when finished, the error when aborted.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut state = self.shared.state.lock();
        match &state.status {
            GroupStatus::Finished => Poll::Ready(Ok(())),
            GroupStatus::Aborted(err) => Poll::Ready(Err(err.clone())),
            GroupStatus::Open => {
                state.readers.register(&mut self.slot, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Waits for the group to end: `Ok` when finished, the error when aborted.
    pub async fn closed(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }
}

impl Clone for GroupConsumer {
    /// A second reader at the same position.
    fn clone(&self) -> Self {
        let mut other = GroupConsumer::new(self.shared.clone());
        other.index = self.index;
        other
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.shared.state.lock().release_consumer(&mut self.slot);
    }
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("sequence", &self.sequence())
            .field("position", &self.index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        f(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn frames_arrive_in_order_then_the_end() {
        let mut group = GroupProducer::new(7);
        let mut reader = group.consume();
        assert_eq!(reader.sequence(), 7);
        group.write_frame(Bytes::from_static(b"a")).unwrap();
        group.write_frame(Bytes::from_static(b"")).unwrap();
        group.write_frame(Bytes::from_static(b"c")).unwrap();
        group.finish().unwrap();
        assert_eq!(reader.read_frame().await.unwrap().unwrap(), "a");
        assert_eq!(reader.read_frame().await.unwrap().unwrap(), "");
        assert_eq!(reader.read_frame().await.unwrap().unwrap(), "c");
        assert_eq!(reader.read_frame().await.unwrap(), None);
        assert_eq!(reader.closed().await, Ok(()));
    }

    #[tokio::test]
    async fn abort_reaches_every_consumer() {
        let mut group = GroupProducer::new(0);
        let mut a = group.consume();
        let mut b = group.consume();
        group.write_frame(Bytes::from_static(b"x")).unwrap();
        group.abort(Error::App(3));
        assert_eq!(a.read_frame().await, Err(Error::App(3)));
        assert_eq!(b.closed().await, Err(Error::App(3)));
    }

    #[tokio::test]
    async fn dropping_the_last_writer_finishes() {
        let group = GroupProducer::new(0);
        let second = group.clone();
        let mut reader = group.consume();
        drop(group);
        assert!(poll(|cx| reader.poll_closed(cx)).is_pending());
        drop(second);
        assert_eq!(reader.closed().await, Ok(()));
    }

    #[tokio::test]
    async fn chunked_frame_is_readable_before_it_completes() {
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut frame = group.create_frame(10).unwrap();
        frame.write(Bytes::from_static(b"0123")).unwrap();

        let mut chunks = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(chunks.size(), 10);
        assert_eq!(chunks.read_chunk().await.unwrap().unwrap(), "0123");
        assert!(poll(|cx| chunks.poll_read_chunk(cx)).is_pending());

        frame.write(Bytes::from_static(b"456789")).unwrap();
        assert_eq!(frame.remaining(), 0);
        frame.finish().unwrap();
        assert_eq!(chunks.read_chunk().await.unwrap().unwrap(), "456789");
        assert_eq!(chunks.read_chunk().await.unwrap(), None);

        // A second reader gets the frame whole.
        let mut whole = group.consume();
        assert_eq!(whole.read_frame().await.unwrap().unwrap(), "0123456789");
    }

    #[tokio::test]
    async fn read_all_returns_the_rest_after_chunks() {
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut frame = group.create_frame(6).unwrap();
        frame.write(Bytes::from_static(b"abc")).unwrap();
        let mut chunks = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(chunks.read_chunk().await.unwrap().unwrap(), "abc");
        frame.write(Bytes::from_static(b"de")).unwrap();
        frame.write(Bytes::from_static(b"f")).unwrap();
        assert_eq!(chunks.read_all().await.unwrap(), "def");
    }

    #[tokio::test]
    async fn writing_past_the_declared_size_aborts() {
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut frame = group.create_frame(3).unwrap();
        assert_eq!(frame.write(Bytes::from_static(b"abcd")), Err(Error::WrongSize));
        assert_eq!(reader.read_frame().await, Err(Error::WrongSize));
        assert_eq!(group.write_frame(Bytes::new()), Err(Error::WrongSize));
    }

    #[tokio::test]
    async fn a_short_frame_aborts_the_group() {
        // Dropped short.
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut frame = group.create_frame(3).unwrap();
        frame.write(Bytes::from_static(b"ab")).unwrap();
        drop(frame);
        assert_eq!(reader.closed().await, Err(Error::WrongSize));

        // Finished short.
        let mut group = GroupProducer::new(0);
        let frame = group.create_frame(3).unwrap();
        assert_eq!(frame.finish(), Err(Error::WrongSize));

        // A new frame started while the previous one is short.
        let mut group = GroupProducer::new(0);
        let _frame = group.create_frame(3).unwrap();
        assert_eq!(group.create_frame(1).err(), Some(Error::WrongSize));

        // The group finished while a frame is short.
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let _frame = group.create_frame(3).unwrap();
        assert_eq!(group.finish(), Err(Error::WrongSize));
        assert_eq!(reader.closed().await, Err(Error::WrongSize));
    }

    #[tokio::test]
    async fn group_limits_abort_with_cache_full() {
        let limits = GroupLimits {
            max_frames: 2,
            max_bytes: 10,
        };
        let mut group = GroupProducer::from_shared(GroupShared::new(0, limits, None));
        group.write_frame(Bytes::from_static(b"1")).unwrap();
        group.write_frame(Bytes::from_static(b"2")).unwrap();
        assert_eq!(group.write_frame(Bytes::from_static(b"3")), Err(Error::CacheFull));

        let mut group = GroupProducer::from_shared(GroupShared::new(0, limits, None));
        let mut reader = group.consume();
        assert_eq!(group.create_frame(11).err(), Some(Error::CacheFull));
        assert_eq!(reader.closed().await, Err(Error::CacheFull));
    }

    #[tokio::test]
    async fn payloads_are_shared_not_copied() {
        let mut group = GroupProducer::new(0);
        let mut a = group.consume();
        let mut b = group.consume();
        let payload = Bytes::from(vec![7u8; 4096]);
        group.write_frame(payload.clone()).unwrap();
        let mut frame = group.create_frame(4).unwrap();
        frame.write(Bytes::from_static(b"ab")).unwrap();
        frame.write(Bytes::from_static(b"cd")).unwrap();

        let (a1, b1) = (
            a.read_frame().await.unwrap().unwrap(),
            b.read_frame().await.unwrap().unwrap(),
        );
        assert_eq!(a1.as_ptr(), payload.as_ptr());
        assert_eq!(b1.as_ptr(), payload.as_ptr());
        // A chunked frame is joined once, then shared by every reader.
        let (a2, b2) = (
            a.read_frame().await.unwrap().unwrap(),
            b.read_frame().await.unwrap().unwrap(),
        );
        assert_eq!(a2, "abcd");
        assert_eq!(a2.as_ptr(), b2.as_ptr());
    }

    #[tokio::test]
    async fn producer_sees_consumers_leave() {
        let mut group = GroupProducer::new(0);
        assert!(group.is_unused());
        let reader = group.consume();
        let copy = reader.clone();
        assert!(!group.is_unused());
        assert!(poll(|cx| group.poll_unused(cx)).is_pending());
        drop(reader);
        assert!(poll(|cx| group.poll_unused(cx)).is_pending());
        drop(copy);
        group.unused().await;
        assert!(group.is_unused());
    }

    #[tokio::test]
    async fn latest_frame_and_clone_position() {
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        assert_eq!(reader.latest_frame(), None);
        group.write_frame(Bytes::from_static(b"1")).unwrap();
        let _partial = group.create_frame(5).unwrap();
        assert_eq!(reader.latest_frame().unwrap(), "1");
        reader.read_frame().await.unwrap();
        let copy = reader.clone();
        assert_eq!(copy.position(), 1);
    }

    #[test]
    fn writes_after_the_end_fail() {
        let mut group = GroupProducer::new(0);
        let second = group.clone();
        second.finish().unwrap();
        assert_eq!(group.write_frame(Bytes::new()), Err(Error::Closed));
        assert_eq!(group.is_closed(), Some(Ok(())));
    }

    #[tokio::test]
    async fn a_chunk_reader_keeps_its_place_when_another_joins_the_chunks() {
        let mut group = GroupProducer::new(0);
        let mut frame = group.create_frame(6).unwrap();
        for chunk in ["ab", "cd", "ef"] {
            frame.write(Bytes::from_static(chunk.as_bytes())).unwrap();
        }
        let mut chunked = group.consume().next_frame().await.unwrap().unwrap();
        assert_eq!(chunked.read_chunk().await.unwrap().unwrap(), "ab");
        assert_eq!(chunked.read_chunk().await.unwrap().unwrap(), "cd");
        // A whole-frame reader joins the three chunks into one.
        assert_eq!(group.consume().read_frame().await.unwrap().unwrap(), "abcdef");
        assert_eq!(chunked.read_chunk().await.unwrap().unwrap(), "ef");
        assert_eq!(chunked.read_chunk().await.unwrap(), None);
    }
}

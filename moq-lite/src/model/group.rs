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
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::frame::{FrameConsumer, FrameProducer};
use super::group_state::{FrameEntry, GroupShared};
use super::limits::GroupLimits;
use super::waiter::WaitSlot;
use crate::{Error, Result};

/// Writes the frames of one group.
///
/// Cloning gives another writer of the same group; the group finishes when
/// [`finish`](Self::finish) is called or the last writer (frame writers
/// included) is dropped. A group dropped with a frame short of its declared
/// size is aborted with [`Error::WrongSize`].
pub struct GroupProducer {
    shared: Arc<GroupShared>,
    slot: Option<WaitSlot>,
    /// Set by [`abort_on_drop`](Self::abort_on_drop).
    abort_on_drop: Option<Error>,
}

impl GroupProducer {
    /// A standalone group with default limits and no track (for tests and tools).
    pub fn new(sequence: u64) -> Self {
        Self::from_shared(GroupShared::new(sequence, GroupLimits::default(), None))
    }

    pub(crate) fn from_shared(shared: Arc<GroupShared>) -> Self {
        shared.state.lock().life.add_producer();
        GroupProducer {
            shared,
            slot: None,
            abort_on_drop: None,
        }
    }

    /// The group's sequence number within its track.
    pub fn sequence(&self) -> u64 {
        self.shared.sequence
    }

    /// Appends a whole frame.
    pub fn write_frame(&mut self, payload: Bytes) -> Result<()> {
        let size = payload.len() as u64;
        self.shared.push_frame(size, Some(payload), None).map(|_| ())
    }

    /// Appends a whole frame stamped `timestamp` (microseconds, the unit
    /// WebCodecs uses; the origin is the publisher's). moq-lite-05+ carries
    /// it to subscribers; older versions deliver the payload alone.
    pub fn write_frame_at(&mut self, payload: Bytes, timestamp: u64) -> Result<()> {
        let size = payload.len() as u64;
        self.shared
            .push_frame(size, Some(payload), Some(timestamp))
            .map(|_| ())
    }

    /// Starts a frame of `size` bytes to be written in chunks.
    ///
    /// Starting a frame while the previous one is still short aborts the
    /// group with [`Error::WrongSize`].
    pub fn create_frame(&mut self, size: u64) -> Result<FrameProducer> {
        self.create_frame_at(size, None)
    }

    /// [`create_frame`](Self::create_frame) with an optional timestamp
    /// (microseconds, see [`write_frame_at`](Self::write_frame_at)).
    pub fn create_frame_at(&mut self, size: u64, timestamp: Option<u64>) -> Result<FrameProducer> {
        let index = self.shared.push_frame(size, None, timestamp)?;
        Ok(FrameProducer::new(self.shared.clone(), index))
    }

    /// Ends the group: consumers read what is there, then the end.
    pub fn finish(self) -> Result<()> {
        let mut state = self.shared.state.lock();
        state.life.check_open()?;
        if state.has_short_frame() {
            return Err(state.life.abort(Error::WrongSize));
        }
        state.life.finish()
    }

    /// Ends the group with `err`; consumers see the error.
    pub fn abort(self, err: Error) {
        self.shared.abort(err);
    }

    /// Makes dropping this handle abort the group with `err`, whatever other
    /// handles remain, instead of releasing it (which finishes the group once
    /// the last writer is gone).
    ///
    /// For a writer that can be cancelled part-way, such as a session's task
    /// receiving a group from the network: a group cut short must not read
    /// as complete. [`finish`](Self::finish) and [`abort`](Self::abort)
    /// still end the group as they say. Clones do not inherit the setting.
    pub fn abort_on_drop(&mut self, err: Error) {
        self.abort_on_drop = Some(err);
    }

    /// Undoes [`abort_on_drop`](Self::abort_on_drop): dropping this handle
    /// releases it as usual again.
    pub fn cancel_abort_on_drop(&mut self) {
        self.abort_on_drop = None;
    }

    /// A new reader starting at the first frame.
    pub fn consume(&self) -> GroupConsumer {
        GroupConsumer::new(self.shared.clone())
    }

    /// Whether the group has ended, and how.
    pub fn is_closed(&self) -> Option<Result<()>> {
        self.shared.state.lock().life.closed()
    }

    /// Whether no consumer of this group is left.
    pub fn is_unused(&self) -> bool {
        self.shared.state.lock().life.is_unused()
    }

    /// Ready once no consumer is left or the group has ended.
    pub fn poll_unused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared
            .state
            .lock()
            .life
            .poll_unused(&mut self.slot, cx.waker())
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
        self.shared
            .release_producer(&mut self.slot, self.abort_on_drop.take());
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
        shared.state.lock().life.add_consumer();
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

    /// The first frame's timestamp (microseconds), once the first frame
    /// exists and has one.
    pub fn first_timestamp(&self) -> Option<u64> {
        self.shared.state.lock().frames.first().and_then(|f| f.timestamp)
    }

    /// Whether the group was published as a datagram (see
    /// [`TrackProducer::write_datagram`](super::TrackProducer::write_datagram)).
    pub fn is_datagram(&self) -> bool {
        self.shared.datagram.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Index of the next frame this consumer will read.
    pub fn position(&self) -> usize {
        self.index
    }

    /// Reads the next whole frame; `None` once the group finished.
    pub fn poll_read_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        let mut state = self.shared.state.lock();
        if let Some(err) = state.life.aborted() {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some(frame) = state.frames.get_mut(self.index) {
            if frame.is_complete() {
                self.index += 1;
                return Poll::Ready(Ok(Some(frame.whole())));
            }
        } else if state.life.is_finished() {
            return Poll::Ready(Ok(None));
        }
        state.life.wait(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// Reads the next whole frame; `None` once the group finished.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_read_frame(cx)).await
    }

    /// The next frame as a reader of its chunks, as soon as it starts.
    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<FrameConsumer>>> {
        let mut state = self.shared.state.lock();
        if let Some(err) = state.life.aborted() {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some((size, timestamp)) = state.frames.get(self.index).map(|f| (f.size, f.timestamp)) {
            let reader = FrameConsumer::new(self.shared.clone(), &mut state, self.index, size, timestamp);
            self.index += 1;
            return Poll::Ready(Ok(Some(reader)));
        }
        if state.life.is_finished() {
            return Poll::Ready(Ok(None));
        }
        state.life.wait(&mut self.slot, cx.waker());
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
        self.shared
            .state
            .lock()
            .life
            .poll_closed(&mut self.slot, cx.waker())
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
        self.shared.state.lock().life.release_consumer(&mut self.slot);
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

    #[tokio::test]
    async fn abort_on_drop_aborts_whatever_writers_remain() {
        let mut group = GroupProducer::new(0);
        let other = group.clone();
        let mut reader = group.consume();
        group.write_frame(Bytes::from_static(b"a")).unwrap();
        group.abort_on_drop(Error::Cancel);
        drop(group);
        assert_eq!(reader.closed().await, Err(Error::Cancel));
        assert_eq!(other.is_closed(), Some(Err(Error::Cancel)));

        // Finishing first, or disarming, ends the group normally.
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        group.abort_on_drop(Error::Cancel);
        group.finish().unwrap();
        assert_eq!(reader.closed().await, Ok(()));

        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        group.abort_on_drop(Error::Cancel);
        group.cancel_abort_on_drop();
        drop(group);
        assert_eq!(reader.closed().await, Ok(()));

        // Clones do not inherit it.
        let mut group = GroupProducer::new(0);
        group.abort_on_drop(Error::Cancel);
        let copy = group.clone();
        let mut reader = group.consume();
        drop(copy);
        assert!(poll(|cx| reader.poll_closed(cx)).is_pending());
        drop(group);
        assert_eq!(reader.closed().await, Err(Error::Cancel));
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

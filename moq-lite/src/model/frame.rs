//! Frames: a payload with a size declared up front, written and read whole or
//! in chunks.
//!
//! The declared size lets a relay forward a frame's first bytes before its
//! last have arrived. A frame's bytes live in its group's state; these handles
//! are a group plus an index.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::group_state::{GroupShared, GroupState};
use super::waiter::WaitSlot;
use crate::{Error, Result};

/// Writes one frame in chunks.
///
/// The frame is complete once exactly its declared size has been written;
/// writing past it, or dropping the writer short of it, aborts the group with
/// [`Error::WrongSize`] (the group's later frames could not be trusted).
pub struct FrameProducer {
    group: Arc<GroupShared>,
    index: usize,
}

impl FrameProducer {
    pub(crate) fn new(group: Arc<GroupShared>, index: usize) -> Self {
        group.state.lock().life.add_producer();
        FrameProducer { group, index }
    }

    /// The declared size in bytes.
    pub fn size(&self) -> u64 {
        self.group.state.lock().frames[self.index].size
    }

    /// Bytes still to be written.
    pub fn remaining(&self) -> u64 {
        let state = self.group.state.lock();
        let frame = &state.frames[self.index];
        frame.size - frame.written
    }

    /// Appends a chunk; an error if it runs past the declared size.
    pub fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.group.write_chunk(self.index, chunk)
    }

    /// Checks that the whole declared size was written.
    pub fn finish(self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            self.group.abort(Error::WrongSize);
            Err(Error::WrongSize)
        }
    }
}

impl Drop for FrameProducer {
    fn drop(&mut self) {
        // Dropped short, the frame cannot be completed by anyone: the group
        // aborts, whatever writers remain.
        let mut state = self.group.state.lock();
        let short = !state.frames[self.index].is_complete();
        let decision = state
            .life
            .release_producer(&mut None, short.then_some(Error::WrongSize));
        if let Some(status) = decision {
            state.end(status);
        }
    }
}

impl std::fmt::Debug for FrameProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameProducer")
            .field("index", &self.index)
            .finish()
    }
}

/// Reads one frame, whole or chunk by chunk, without copying the payload.
pub struct FrameConsumer {
    group: Arc<GroupShared>,
    index: usize,
    size: u64,
    timestamp: Option<u64>,
    offset: u64,
    /// Where `offset` was found last time (see `FrameEntry::chunk_at`).
    hint: (usize, u64),
    slot: Option<WaitSlot>,
}

impl FrameConsumer {
    /// Made while the caller holds the group's lock, hence `state`.
    pub(crate) fn new(
        group: Arc<GroupShared>,
        state: &mut GroupState,
        index: usize,
        size: u64,
        timestamp: Option<u64>,
    ) -> Self {
        state.life.add_consumer();
        FrameConsumer {
            group,
            index,
            size,
            timestamp,
            offset: 0,
            hint: (0, 0),
            slot: None,
        }
    }

    /// The declared size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The publisher's timestamp in microseconds, if it set one (see
    /// [`GroupProducer::write_frame_at`](super::GroupProducer::write_frame_at)).
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// The next chunk as soon as it is written; `None` after the last byte.
    pub fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        if self.offset == self.size {
            return Poll::Ready(Ok(None));
        }
        let mut state = self.group.state.lock();
        if let Some(err) = state.life.aborted() {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some(chunk) = state.frames[self.index].chunk_at(self.offset, &mut self.hint) {
            self.offset += chunk.len() as u64;
            return Poll::Ready(Ok(Some(chunk)));
        }
        state.life.wait(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next chunk as soon as it is written; `None` after the last byte.
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_read_chunk(cx)).await
    }

    /// The rest of the frame once it is complete.
    pub fn poll_read_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        let mut state = self.group.state.lock();
        if let Some(err) = state.life.aborted() {
            return Poll::Ready(Err(err.clone()));
        }
        let frame = &mut state.frames[self.index];
        if frame.is_complete() {
            let whole = frame.whole();
            let rest = whole.slice(self.offset as usize..);
            self.offset = self.size;
            return Poll::Ready(Ok(rest));
        }
        state.life.wait(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The rest of the frame once it is complete.
    pub async fn read_all(&mut self) -> Result<Bytes> {
        std::future::poll_fn(|cx| self.poll_read_all(cx)).await
    }
}

impl Drop for FrameConsumer {
    fn drop(&mut self) {
        self.group.state.lock().life.release_consumer(&mut self.slot);
    }
}

impl std::fmt::Debug for FrameConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameConsumer")
            .field("size", &self.size)
            .field("offset", &self.offset)
            .finish()
    }
}

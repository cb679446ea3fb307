//! What a group's handles share: its frames, its lifecycle and its byte
//! accounting, behind one lock.
//!
//! Group handles ([`GroupProducer`](super::GroupProducer),
//! [`GroupConsumer`](super::GroupConsumer)) and frame handles
//! ([`FrameProducer`](super::FrameProducer),
//! [`FrameConsumer`](super::FrameConsumer)) are all views of this state, and
//! the track cache holds it to evict a group. Keeping it apart from the
//! handles lets frames, groups and the cache each import it without importing
//! one another.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use super::lifecycle::{Lifecycle, Status};
use super::limits::{ByteBudget, CHUNK_OVERHEAD, FRAME_OVERHEAD, GROUP_OVERHEAD, GroupLimits};
use super::lock::Lock;
use super::waiter::WaitSlot;
use crate::{Error, Result};

/// One frame inside the group state.
#[derive(Debug)]
pub(crate) struct FrameEntry {
    pub size: u64,
    /// The publisher's timestamp in microseconds, if it set one.
    pub timestamp: Option<u64>,
    pub written: u64,
    /// Chunks as written; collapsed into one on the first whole-frame read.
    pub chunks: Vec<Bytes>,
}

// Inlined: every frame read goes through these, from the handles' modules
// (other codegen units); keeps the reads as cheap as before the split.
impl FrameEntry {
    #[inline]
    pub fn is_complete(&self) -> bool {
        self.written == self.size
    }

    /// The whole payload; joins the chunks once (shared by every later reader).
    #[inline]
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
    /// Producers are group and frame writers; consumers are group and frame
    /// readers, all parked on the same readers' list.
    pub life: Lifecycle,
    /// Charged to the track's budget: payload plus bookkeeping overhead.
    pub bytes: u64,
    /// Payload bytes declared so far, for the per-group limit.
    pub payload: u64,
}

impl GroupState {
    /// Whether the last frame still lacks bytes it declared.
    #[inline]
    pub fn has_short_frame(&self) -> bool {
        self.frames.last().is_some_and(|f| !f.is_complete())
    }

    /// Ends the group as decided, except that a group left with a short frame
    /// is aborted with [`Error::WrongSize`]: that frame, and so the group,
    /// could not be read as complete.
    pub fn end(&mut self, status: Status) {
        let status = match status {
            Status::Finished if self.has_short_frame() => Status::Aborted(Error::WrongSize),
            status => status,
        };
        self.life.end(status);
    }
}

pub(crate) struct GroupShared {
    pub sequence: u64,
    pub limits: GroupLimits,
    pub budget: Option<Arc<dyn ByteBudget>>,
    pub state: Lock<GroupState>,
    /// Frames fully written, readable without the lock (for `latest_frame` peeks).
    pub complete: AtomicU64,
    /// A group of one frame meant for a datagram (set before anyone sees it).
    pub datagram: std::sync::atomic::AtomicBool,
    /// A group fetched after newer ones (a backfill): consumers at the live
    /// edge pass over it (set before anyone sees it).
    pub backfilled: std::sync::atomic::AtomicBool,
}

impl GroupShared {
    pub fn new(sequence: u64, limits: GroupLimits, budget: Option<Arc<dyn ByteBudget>>) -> Arc<Self> {
        Arc::new(GroupShared {
            sequence,
            limits,
            budget,
            state: Lock::new(GroupState {
                frames: Vec::new(),
                life: Lifecycle::new(),
                bytes: GROUP_OVERHEAD,
                payload: 0,
            }),
            complete: AtomicU64::new(0),
            datagram: std::sync::atomic::AtomicBool::new(false),
            backfilled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Ends the group with `err` unless it already ended; wakes everyone.
    pub fn abort(&self, err: Error) {
        self.state.lock().life.abort(err);
    }

    /// Bytes held, for eviction accounting.
    pub fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }

    /// Appends `size` bytes worth of frame entry after checking every bound.
    /// On a bound violation the group is aborted, so consumers see why.
    pub fn push_frame(&self, size: u64, first: Option<Bytes>, timestamp: Option<u64>) -> Result<usize> {
        let (index, over) = {
            let mut state = self.state.lock();
            state.life.check_open()?;
            if state.has_short_frame() {
                // A new frame while the last still lacks bytes: that frame was short.
                return Err(state.life.abort(Error::WrongSize));
            }
            if state.frames.len() as u64 >= self.limits.max_frames
                || state.payload.saturating_add(size) > self.limits.max_bytes
            {
                return Err(state.life.abort(Error::CacheFull));
            }
            // `first` is a whole frame (`size` is its length) or nothing yet.
            let written = first.as_ref().map_or(0, |b| b.len() as u64);
            state.frames.push(FrameEntry {
                size,
                timestamp,
                written,
                chunks: first.into_iter().filter(|b| !b.is_empty()).collect(),
            });
            let charged = written + FRAME_OVERHEAD;
            state.bytes += charged;
            state.payload += size;
            if written == size {
                self.complete.fetch_add(1, Ordering::Release);
            }
            state.life.wake_readers();
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
            state.life.check_open()?;
            let frame = &state.frames[index];
            if frame.written.saturating_add(n) > frame.size {
                return Err(state.life.abort(Error::WrongSize));
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
            state.life.wake_readers();
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

    /// Drops one producer handle (see [`Lifecycle::release_producer`]): the
    /// last one ends the group, and `abort` ends it whoever remains.
    pub fn release_producer(&self, slot: &mut Option<WaitSlot>, abort: Option<Error>) {
        let mut state = self.state.lock();
        if let Some(status) = state.life.release_producer(slot, abort) {
            state.end(status);
        }
    }
}

//! The lifecycle every level of the model shares.
//!
//! A broadcast, a track and a group live the same way: open while producer
//! handles exist, then finished (`finish`, or the last producer went away) or
//! aborted with an error, never reopened. Consumers wait for that end;
//! producers wait for the last consumer to leave. [`Lifecycle`] is that state
//! machine, written once. It is plain data inside each level's state, changed
//! under the level's own lock, so it adds no lock and no allocation: a frame
//! write still pays one status compare. Its methods decide and wake, nothing
//! else. What ending means beyond the status (a broadcast's close hooks, a
//! group's short frame) stays with the level, which is why a departing
//! producer gets a decision back instead of the level being ended for it.

use std::task::{Poll, Waker};

use super::waiter::{WaitSlot, WaiterList};
use crate::{Error, Result};

/// Where a level is in its life; it only ever leaves `Open`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Status {
    #[default]
    Open,
    Finished,
    Aborted(Error),
}

/// A level's status, handle counts and waiters. Callers hold the level's lock.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    status: Status,
    producers: usize,
    consumers: usize,
    /// Consumer handles waiting for any change: new content or the end. One
    /// list for both, because a reader parked on content must also see the end.
    readers: WaiterList,
    /// Producer handles waiting for the last consumer to leave.
    unused: WaiterList,
}

// The checks and wakes marked `#[inline]` run on every frame write and
// read, called from other modules (other codegen units).
impl Lifecycle {
    /// An open level with no handles yet: each handle counts itself in.
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(self.status, Status::Open)
    }

    #[inline]
    pub fn is_finished(&self) -> bool {
        matches!(self.status, Status::Finished)
    }

    /// The error the level was aborted with, which readers report before
    /// anything still held.
    #[inline]
    pub fn aborted(&self) -> Option<&Error> {
        match &self.status {
            Status::Aborted(err) => Some(err),
            _ => None,
        }
    }

    /// `None` while open, else how the level ended.
    pub fn closed(&self) -> Option<Result<()>> {
        match &self.status {
            Status::Open => None,
            Status::Finished => Some(Ok(())),
            Status::Aborted(err) => Some(Err(err.clone())),
        }
    }

    /// Why a write must fail: [`Error::Closed`] after a finish, the error
    /// after an abort.
    #[inline]
    pub fn check_open(&self) -> Result<()> {
        match &self.status {
            Status::Open => Ok(()),
            Status::Finished => Err(Error::Closed),
            Status::Aborted(err) => Err(err.clone()),
        }
    }

    pub fn add_producer(&mut self) {
        self.producers += 1;
    }

    pub fn add_consumer(&mut self) {
        self.consumers += 1;
    }

    pub fn consumers(&self) -> usize {
        self.consumers
    }

    pub fn is_unused(&self) -> bool {
        self.consumers == 0
    }

    /// Ends an open level with `status`, waking every waiter. Returns whether
    /// this call ended it: the first end wins, later ones change nothing.
    pub fn end(&mut self, status: Status) -> bool {
        if !self.is_open() || matches!(status, Status::Open) {
            return false;
        }
        self.status = status;
        self.readers.wake_all();
        self.unused.wake_all();
        true
    }

    /// Finishes an open level; ending twice is an error, as for any write.
    pub fn finish(&mut self) -> Result<()> {
        self.check_open()?;
        self.end(Status::Finished);
        Ok(())
    }

    /// Aborts with `err` unless already ended; returns `err` so a failing
    /// write can abort and report in one expression.
    pub fn abort(&mut self, err: Error) -> Error {
        if self.is_open() {
            self.end(Status::Aborted(err.clone()));
        }
        err
    }

    /// Forgets a departing producer handle and decides whether its departure
    /// ends the level: `abort` (the handle was set to abort on drop) ends it
    /// with that error whatever other producers remain; otherwise the last
    /// producer ends it as finished. `None` when the level stays as it is.
    /// The caller applies the decision with [`end`](Self::end), possibly
    /// amended (a group with a short frame aborts instead).
    #[must_use]
    pub fn release_producer(&mut self, slot: &mut Option<WaitSlot>, abort: Option<Error>) -> Option<Status> {
        self.unused.unregister(slot);
        self.producers -= 1;
        if !self.is_open() {
            return None;
        }
        match abort {
            Some(err) => Some(Status::Aborted(err)),
            None if self.producers == 0 => Some(Status::Finished),
            None => None,
        }
    }

    /// Forgets a departing consumer handle; the last one wakes the producers
    /// waiting for the level to be unused.
    pub fn release_consumer(&mut self, slot: &mut Option<WaitSlot>) {
        self.readers.unregister(slot);
        self.consumers -= 1;
        if self.consumers == 0 {
            self.unused.wake_all();
        }
    }

    /// Ready once no consumer is left or the level ended (either way the
    /// producer has no one left to write for).
    pub fn poll_unused(&mut self, slot: &mut Option<WaitSlot>, waker: &Waker) -> Poll<()> {
        if self.consumers == 0 || !self.is_open() {
            return Poll::Ready(());
        }
        self.unused.register(slot, waker);
        Poll::Pending
    }

    /// Ready with how the level ended, once it has.
    pub fn poll_closed(&mut self, slot: &mut Option<WaitSlot>, waker: &Waker) -> Poll<Result<()>> {
        match self.closed() {
            Some(result) => Poll::Ready(result),
            None => {
                self.readers.register(slot, waker);
                Poll::Pending
            }
        }
    }

    /// Parks a consumer handle until the next change (content or the end).
    #[inline]
    pub fn wait(&mut self, slot: &mut Option<WaitSlot>, waker: &Waker) {
        self.readers.register(slot, waker);
    }

    /// Wakes the parked consumers: the level has new content.
    #[inline]
    pub fn wake_readers(&mut self) {
        self.readers.wake_all();
    }

    #[cfg(test)]
    fn waiting(&self) -> (usize, usize) {
        (self.readers.len(), self.unused.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(producers: usize, consumers: usize) -> Lifecycle {
        let mut life = Lifecycle::new();
        (0..producers).for_each(|_| life.add_producer());
        (0..consumers).for_each(|_| life.add_consumer());
        life
    }

    #[test]
    fn the_last_producer_leaving_decides_to_finish() {
        let mut life = open(2, 0);
        assert_eq!(life.release_producer(&mut None, None), None);
        assert_eq!(life.release_producer(&mut None, None), Some(Status::Finished));
        // A decision, not an action: the level is still open until applied.
        assert!(life.is_open());
    }

    #[test]
    fn an_abort_on_drop_ends_the_level_whoever_remains() {
        let mut life = open(2, 0);
        let decision = life.release_producer(&mut None, Some(Error::Cancel));
        assert_eq!(decision, Some(Status::Aborted(Error::Cancel)));
        assert!(life.end(decision.unwrap()));
        assert_eq!(life.closed(), Some(Err(Error::Cancel)));
        // The remaining producer's departure changes nothing.
        assert_eq!(life.release_producer(&mut None, None), None);
    }

    #[test]
    fn nothing_to_decide_once_ended() {
        let mut life = open(1, 0);
        life.finish().unwrap();
        assert_eq!(life.release_producer(&mut None, Some(Error::Cancel)), None);
        assert_eq!(life.closed(), Some(Ok(())));
    }

    #[test]
    fn the_first_end_wins() {
        let mut life = open(1, 0);
        assert_eq!(life.abort(Error::Old), Error::Old);
        assert_eq!(life.abort(Error::Cancel), Error::Cancel);
        assert!(!life.end(Status::Finished));
        assert_eq!(life.aborted(), Some(&Error::Old));
        assert_eq!(life.finish(), Err(Error::Old));
        assert_eq!(life.check_open(), Err(Error::Old));

        let mut life = open(1, 0);
        assert!(!life.end(Status::Open));
        life.finish().unwrap();
        assert!(life.is_finished());
        assert_eq!(life.finish(), Err(Error::Closed));
        assert_eq!(life.aborted(), None);
    }

    #[test]
    fn unused_once_the_last_consumer_leaves_or_the_level_ends() {
        let waker = Waker::noop();
        let mut life = open(1, 2);
        let mut producer = None;
        let (mut a, mut b) = (None, None);
        assert!(life.poll_unused(&mut producer, waker).is_pending());
        assert!(life.poll_closed(&mut a, waker).is_pending());
        life.wait(&mut b, waker);
        assert_eq!(life.waiting(), (2, 1));

        life.release_consumer(&mut a);
        assert!(!life.is_unused());
        assert_eq!(life.waiting(), (1, 1));
        life.release_consumer(&mut b);
        assert!(life.is_unused());
        assert_eq!(life.waiting(), (0, 0));
        assert!(life.poll_unused(&mut producer, waker).is_ready());

        // A slot belongs to one list: a new level, a new slot.
        let mut life = open(1, 1);
        let mut producer = None;
        assert!(life.poll_unused(&mut producer, waker).is_pending());
        assert_eq!(life.consumers(), 1);
        life.abort(Error::Cancel);
        assert_eq!(life.waiting(), (0, 0));
        assert!(life.poll_unused(&mut producer, waker).is_ready());
    }

    #[test]
    fn closed_reports_how_it_ended() {
        let waker = Waker::noop();
        let mut life = open(1, 1);
        let mut slot = None;
        assert_eq!(life.closed(), None);
        assert!(life.poll_closed(&mut slot, waker).is_pending());
        life.wake_readers();
        assert_eq!(life.waiting(), (0, 0));
        assert_eq!(life.release_producer(&mut None, None), Some(Status::Finished));
        life.end(Status::Finished);
        assert_eq!(life.poll_closed(&mut slot, waker), Poll::Ready(Ok(())));
    }

    #[test]
    fn a_departing_producer_leaves_no_waker_behind() {
        let waker = Waker::noop();
        let mut life = open(2, 1);
        let mut slot = None;
        assert!(life.poll_unused(&mut slot, waker).is_pending());
        assert_eq!(life.release_producer(&mut slot, None), None);
        assert_eq!(life.waiting(), (0, 0));
    }
}

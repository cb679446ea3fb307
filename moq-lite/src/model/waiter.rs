//! Wakers of the handles waiting on one shared state.
//!
//! Every consumer of a track or group waits on the same state, and a handle
//! may be polled many times before anything changes (inside a `select!` loop,
//! say). A plain `Vec<Waker>` would grow on each of those polls; here each
//! handle owns at most one slot, found again in O(1) through its [`WaitSlot`].
//! Waking drains every slot and starts a new generation, which invalidates the
//! slots handed out before.

use std::task::Waker;

/// The wakers waiting on one state.
#[derive(Default, Debug)]
pub(crate) struct WaiterList {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
    generation: u64,
}

/// A handle's place in a [`WaiterList`], valid until the next wake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitSlot {
    index: usize,
    generation: u64,
}

impl WaiterList {
    /// Registers `waker` for the handle owning `slot`, replacing its previous
    /// waker if it is still registered.
    pub fn register(&mut self, slot: &mut Option<WaitSlot>, waker: &Waker) {
        if let Some(s) = *slot {
            if s.generation == self.generation {
                match &mut self.slots[s.index] {
                    Some(old) if old.will_wake(waker) => {}
                    entry => *entry = Some(waker.clone()),
                }
                return;
            }
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[index] = Some(waker.clone());
        *slot = Some(WaitSlot {
            index,
            generation: self.generation,
        });
    }

    /// Forgets the handle's waker (the handle is going away).
    pub fn unregister(&mut self, slot: &mut Option<WaitSlot>) {
        if let Some(s) = slot.take() {
            if s.generation == self.generation && self.slots[s.index].take().is_some() {
                self.free.push(s.index);
            }
        }
    }

    /// Wakes every registered handle.
    ///
    /// Called with the state's lock held: wakers only schedule tasks, and
    /// waking in place keeps the slot vector's allocation for the next round.
    pub fn wake_all(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        self.free.clear();
        for waker in self.slots.drain(..).flatten() {
            waker.wake();
        }
    }

    /// How many handles are waiting (for tests and metrics).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn one_slot_per_handle_however_often_polled() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut list = WaiterList::default();
        let mut a = None;
        let mut b = None;
        for _ in 0..100 {
            list.register(&mut a, &waker);
            list.register(&mut b, &waker);
        }
        assert_eq!(list.len(), 2);
        list.wake_all();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert_eq!(list.len(), 0);

        // Old slots are stale after a wake: registering again takes a new one.
        list.register(&mut a, &waker);
        list.unregister(&mut a);
        assert_eq!(list.len(), 0);
        list.unregister(&mut b); // stale: a no-op
        list.wake_all();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }
}

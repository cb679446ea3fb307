//! A mutex that shrugs off poisoning.
//!
//! The model's states are plain data updated in short critical sections that
//! leave them consistent between statements; a panic in one consumer's task
//! must not turn every other session's lock into a panic too.

use std::sync::{Mutex, MutexGuard};

/// `std::sync::Mutex` whose `lock` ignores poisoning.
#[derive(Debug, Default)]
pub(crate) struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    pub fn new(value: T) -> Self {
        Lock(Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

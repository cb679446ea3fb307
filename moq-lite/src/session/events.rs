//! What a [`super::Session`] handle waits for: [`Events`].

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::Error;
use crate::model::Path;

/// How a session ended, and what the peer refused of what we announce:
/// set by the session's tasks, awaited through the [`super::Session`]
/// handle.
///
/// One small struct rather than a tokio watch channel each: one of those
/// is about 360 bytes (a lock and eight notifiers), and every session,
/// idle or not, had two.
#[derive(Debug, Default)]
pub(crate) struct Events {
    closed: Mutex<Option<Error>>,
    refused: Mutex<Vec<(Path, Error)>>,
    changed: Notify,
}

impl Events {
    /// The session ended with `err`; only the first reason counts.
    pub fn close(&self, err: Error) {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if closed.is_none() {
            *closed = Some(err);
            drop(closed);
            self.changed.notify_waiters();
        }
    }

    /// The peer refused what we announce under `path`; remembered if fewer
    /// than `max` are.
    pub fn refuse(&self, path: Path, err: Error, max: usize) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() < max {
            refused.push((path, err));
            drop(refused);
            self.changed.notify_waiters();
        }
    }

    /// Why the session ended, once it has.
    pub async fn closed(&self) -> Error {
        self.wait(|events| events.closed.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .await
    }

    /// The first refusal, once there is one.
    pub async fn refused(&self) -> (Path, Error) {
        self.wait(|events| {
            let refused = events.refused.lock().unwrap_or_else(|e| e.into_inner());
            refused.first().cloned()
        })
        .await
    }

    /// Waits until `ready` has a value. The waiter registers before it
    /// looks, so a change between the two still wakes it.
    async fn wait<T>(&self, ready: impl Fn(&Self) -> Option<T>) -> T {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(value) = ready(self) {
                return value;
            }
            changed.await;
        }
    }
}

/// Ends the session's [`Events`] with [`Error::Closed`] when dropped, if
/// nothing ended them before: a session task that panicked still ends its
/// handle's wait.
pub(crate) struct CloseOnDrop(pub std::sync::Arc<Events>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(Error::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_first_close_counts() {
        let events = Arc::new(Events::default());
        let waiting = tokio::spawn({
            let events = events.clone();
            async move { events.closed().await }
        });
        events.close(Error::Cancel);
        events.close(Error::Timeout);
        assert_eq!(waiting.await.unwrap(), Error::Cancel);
        assert_eq!(events.closed().await, Error::Cancel, "and stays");
    }

    #[tokio::test]
    async fn dropping_the_guard_closes_once() {
        let events = Arc::new(Events::default());
        drop(CloseOnDrop(events.clone()));
        assert_eq!(events.closed().await, Error::Closed);
        events.close(Error::Cancel);
        assert_eq!(events.closed().await, Error::Closed);
    }

    #[tokio::test]
    async fn refusals_are_bounded() {
        let events = Events::default();
        for i in 0..3 {
            events.refuse(Path::new(format!("p{i}")), Error::Bounds, 2);
        }
        assert_eq!(events.refused().await, (Path::new("p0"), Error::Bounds));
        assert_eq!(events.refused.lock().unwrap().len(), 2);
    }
}

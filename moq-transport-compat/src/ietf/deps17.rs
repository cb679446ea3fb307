//! Draft-17 requests that depend on others (17 §Required Request ID): a
//! request naming a Required Request ID Delta, or a joining FETCH whose
//! subscription was not read yet (requests on different streams may be read
//! in any order), waits until the required request was handled, for at most
//! [`REQUIRED_WAIT`], with at most [`MAX_WAITING`] waiting at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use web_transport_trait::Session as Transport;

use super::stream::{StreamError, Writer};
use super::{Inner, SessionError, State};
use crate::control::{ControlMessage, FetchType, RequestError};

/// How long a request waits for the request it depends on (17 §Required
/// Request ID: "If the required request does not arrive, the receiver will
/// time out the dependent request").
const REQUIRED_WAIT: Duration = Duration::from_secs(3);

/// How many peer requests may wait for another at once (each holds its
/// stream and its message); more are refused with EXCESSIVE_LOAD.
const MAX_WAITING: usize = 32;

/// Draft-17 REQUEST_ERROR codes (17 §REQUEST_ERROR).
pub(super) mod request_error {
    /// TIMEOUT.
    pub const TIMEOUT: u64 = 0x2;
    /// EXCESSIVE_LOAD.
    pub const EXCESSIVE_LOAD: u64 = 0x9;
}

/// Retry Interval sent with EXCESSIVE_LOAD: one second (the field is the
/// interval in milliseconds plus one).
pub(super) const RETRY_AFTER_LOAD: u64 = 1000 + 1;

/// Draft-17: what requests that depend on others wait on (17 §Required
/// Request ID). A peer request counts as handled once its Request ID was
/// used ([`Inner::peer_request`]) and [`Inner::handle`] returned.
#[derive(Default)]
pub(super) struct Deps17 {
    /// Peer requests inside [`Inner::handle`] right now.
    handling: HashSet<u64>,
    /// Peer requests waiting.
    waiting: usize,
    /// Woken whenever a peer request was handled.
    handled: Arc<Notify>,
}

impl Deps17 {
    /// Wakes the requests waiting for others, to look again.
    pub(super) fn wake(&self) {
        self.handled.notify_waiters();
    }
}

/// How a wait for a required request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waited {
    Handled,
    TimedOut,
    /// Too many requests wait already.
    Busy,
}

/// What to do with a peer request after [`Inner::wait_required17`].
pub(super) enum Dependency {
    /// Handle it.
    Go,
    /// Refuse it with this REQUEST_ERROR (it waited too long, or too many
    /// wait); its Request ID is used all the same.
    Refuse(RequestError),
    /// The peer cancelled it (STOP_SENDING) while it waited.
    Cancelled,
}

/// A waiting request's place in [`Deps17::waiting`], given back on drop.
struct WaitSlot<'a, T: Transport>(&'a Inner<T>);

impl<T: Transport> Drop for WaitSlot<'_, T> {
    fn drop(&mut self) {
        self.0.lock().deps17.waiting -= 1;
    }
}

/// The request a peer request must wait for: `(Request ID, explicit)`.
/// Explicit: its Required Request ID Delta names it (17 §Required Request
/// ID: Request ID - 2 x Delta; the decoder checked that this is not
/// negative). Otherwise a joining FETCH waits for an earlier request of
/// the peer's that it joins (§Joining Fetches: the publisher "buffers the
/// pending Joining Fetch until either the Subscription is established or
/// the request times out").
pub(super) fn required17(msg: &ControlMessage, id: u64) -> Option<(u64, bool)> {
    use ControlMessage as M;
    let delta = match msg {
        M::Subscribe(m) | M::TrackStatus(m) => m.required_request_id_delta,
        M::Fetch(m) => m.required_request_id_delta,
        M::Publish(m) => m.required_request_id_delta,
        M::PublishNamespace(m) => m.required_request_id_delta,
        M::SubscribeNamespace(m) => m.required_request_id_delta,
        M::RequestUpdate(m) => m.required_request_id_delta,
        _ => 0,
    };
    if delta != 0 {
        return Some((id - 2 * delta, true));
    }
    match msg {
        M::Fetch(crate::control::Fetch {
            fetch_type:
                FetchType::RelativeJoining {
                    joining_request_id, ..
                }
                | FetchType::AbsoluteJoining {
                    joining_request_id, ..
                },
            ..
        }) if *joining_request_id < id && joining_request_id % 2 == id % 2 => {
            Some((*joining_request_id, false))
        }
        _ => None,
    }
}

/// Whether peer request `id` was handled.
pub(super) fn handled17(state: &State, id: u64) -> bool {
    state.ids.recorded(id) && !state.deps17.handling.contains(&id)
}

/// Whether `id` could be a new peer request (of the peer's parity, not used
/// yet); anything else is left to [`Inner::peer_request`] to refuse.
pub(super) fn fresh17(state: &State, id: u64) -> bool {
    state.ids.fresh(id)
}

impl<T: Transport> Inner<T> {
    /// Waits, if peer request `id` must, for the request it depends on
    /// (`required`, from [`required17`]), and says what to do with it.
    pub(super) async fn wait_required17(
        self: &Arc<Self>,
        required: &Option<(u64, bool)>,
        id: u64,
        writer: &mut Writer<T::SendStream>,
    ) -> Result<Dependency, StreamError> {
        let Some((required, explicit)) = *required else {
            return Ok(Dependency::Go);
        };
        // A duplicate or wrong-parity ID: handling it closes the session now.
        if !fresh17(&self.lock(), id) {
            return Ok(Dependency::Go);
        }
        let waited = tokio::select! {
            waited = self.clone().wait17(required) => waited,
            _ = writer.closed() => {
                self.use_request_id17(id)?;
                return Ok(Dependency::Cancelled);
            }
        };
        let error = |code, retry_interval, reason: &str| RequestError {
            redirect: Default::default(),
            request_id: id,
            error_code: code,
            retry_interval,
            reason: reason.to_string(),
        };
        let error = match (waited, explicit) {
            (Waited::Handled, _) => return Ok(Dependency::Go),
            // A joining FETCH without a Required Request ID: answered as it
            // stands (INVALID_JOINING_REQUEST_ID, §Joining Fetches).
            (_, false) => return Ok(Dependency::Go),
            (Waited::TimedOut, true) => {
                error(request_error::TIMEOUT, 0, "the required request did not arrive")
            }
            (Waited::Busy, true) => error(
                request_error::EXCESSIVE_LOAD,
                RETRY_AFTER_LOAD,
                "too many requests wait for others",
            ),
        };
        tracing::debug!(id, required, ?waited, "dependent request refused");
        self.use_request_id17(id)?;
        Ok(Dependency::Refuse(error))
    }

    /// Uses peer Request ID `id` for a request that is not handled.
    pub(super) fn use_request_id17(&self, id: u64) -> Result<(), StreamError> {
        self.peer_request(id).map_err(StreamError::Protocol)?;
        self.woken17();
        Ok(())
    }

    /// Wakes the requests waiting for others.
    pub(super) fn woken17(&self) {
        self.lock().deps17.wake();
    }

    /// Waits until peer request `required` was handled, for at most
    /// [`REQUIRED_WAIT`], or says [`Waited::Busy`] when [`MAX_WAITING`]
    /// requests wait already.
    pub(super) async fn wait17(self: Arc<Self>, required: u64) -> Waited {
        let (handled, _slot) = {
            let mut state = self.lock();
            if handled17(&state, required) {
                return Waited::Handled;
            }
            if state.deps17.waiting >= MAX_WAITING {
                return Waited::Busy;
            }
            state.deps17.waiting += 1;
            (state.deps17.handled.clone(), WaitSlot(&self))
        };
        let deadline = Instant::now() + REQUIRED_WAIT;
        loop {
            let notified = handled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if handled17(&self.lock(), required) {
                return Waited::Handled;
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Hands peer request `id` (or REQUEST_UPDATE `id`) to [`Inner::handle`],
    /// and wakes the requests that wait for it.
    pub(super) fn deliver17(self: &Arc<Self>, id: u64, msg: ControlMessage) -> Result<(), SessionError> {
        self.lock().deps17.handling.insert(id);
        let result = self.handle(msg);
        self.lock().deps17.handling.remove(&id);
        self.woken17();
        result
    }
}

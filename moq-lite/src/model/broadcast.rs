//! Broadcasts: tracks by name.
//!
//! A [`BroadcastConsumer`] can ask for any track. If the producer has it, the
//! consumer reads it; otherwise, when the producer side serves requests (a
//! [`BroadcastRequests`] handle exists, as in a relay that fetches tracks on
//! demand), the request is queued for it and concurrent requests for the
//! same name share one track. Without such a handle an unknown track is
//! [`Error::NotFound`].
//!
//! ```
//! use moq_lite::model::{BroadcastProducer, Track};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let broadcast = BroadcastProducer::new();
//! let mut requests = broadcast.requests();
//! let consumer = broadcast.consume();
//!
//! // Two subscribers ask for a track nobody has created yet...
//! let mut a = consumer.subscribe_track(&Track::new("audio")).unwrap();
//! let _b = consumer.subscribe_track(&Track::new("audio")).unwrap();
//!
//! // ...and the producer side sees one request to fulfil.
//! let mut track = requests.requested_track().await.unwrap();
//! assert_eq!(track.info().name, "audio");
//! track.append_group().unwrap().write_frame("hi".into()).unwrap();
//! let mut group = a.next_group().await.unwrap().unwrap();
//! assert_eq!(group.read_frame().await.unwrap().unwrap(), "hi");
//! # });
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use super::lifecycle::{Lifecycle, Status};
use super::limits::CacheConfig;
use super::lock::Lock;
use super::route::RouteCost;
use super::track::{CacheStats, Track, TrackConsumer, TrackProducer, TrackShared};
use super::waiter::{WaitSlot, WaiterList};
use crate::{Error, Result};

/// Requests waiting for the producer side; more are refused with
/// [`Error::Bounds`] so a subscriber cannot grow the queue without limit.
pub const MAX_PENDING_TRACK_REQUESTS: usize = 1024;

type CloseHook = Box<dyn FnOnce() + Send>;

struct BroadcastState {
    tracks: HashMap<String, Weak<TrackShared>>,
    /// Size at which dead entries are next swept out of `tracks`.
    sweep_at: usize,
    requests: VecDeque<TrackProducer>,
    request_handlers: usize,
    /// The tracks the producer offered (not those made for requests), each
    /// with its number in order of offer, for [`OfferedTracks`] cursors.
    offered: VecDeque<(u64, Weak<TrackShared>)>,
    /// The number the next offer gets.
    offered_next: u64,
    /// Size at which ended tracks are next swept out of `offered`.
    offered_sweep_at: usize,
    /// [`OfferedTracks`] waiting for an offer.
    offered_waiting: WaiterList,
    /// Consumers park on its readers' list for the end.
    life: Lifecycle,
    /// Request handlers waiting for a request.
    handlers_waiting: WaiterList,
    on_close: Vec<CloseHook>,
}

pub(crate) struct BroadcastShared {
    cache: CacheConfig,
    state: Lock<BroadcastState>,
    /// Relays the broadcast came through, nearest the origin first.
    hops: Lock<Vec<u64>>,
    /// What the route it came over costs (local: nothing).
    cost: Lock<RouteCost>,
}

impl BroadcastShared {
    /// Runs `hook` once when the broadcast ends (now, if it already has).
    pub fn on_close(&self, hook: CloseHook) {
        let mut state = self.state.lock();
        if state.life.is_open() {
            state.on_close.push(hook);
        } else {
            drop(state);
            hook();
        }
    }

    fn close(&self, status: Status) {
        let (hooks, requests) = {
            let mut state = self.state.lock();
            let finished = matches!(status, Status::Finished);
            if !state.life.end(status) {
                return;
            }
            state.handlers_waiting.wake_all();
            state.offered_waiting.wake_all();
            state.offered.clear();
            // Requests made while the broadcast was live still reach a
            // handler, which drains the queue before it sees a clean end:
            // the peer behind it answers them (a relay that replaced its
            // route to this broadcast serves them from the new one). Without
            // a handler, or after an abort, nobody would.
            let requests = if state.request_handlers == 0 || !finished {
                std::mem::take(&mut state.requests)
            } else {
                VecDeque::new()
            };
            (std::mem::take(&mut state.on_close), requests)
        };
        // Outside the lock: hooks take other locks (the origin's).
        for request in requests {
            request.abort(Error::NotFound);
        }
        for hook in hooks {
            hook();
        }
    }
}

/// Publishes a broadcast: creates its tracks.
///
/// Cloning gives another producer of the same broadcast. Dropping the last
/// one ends the broadcast, which unpublishes it from any origin.
pub struct BroadcastProducer {
    shared: Arc<BroadcastShared>,
    slot: Option<WaitSlot>,
}

impl BroadcastProducer {
    /// A new broadcast whose tracks use the default cache bounds.
    pub fn new() -> Self {
        Self::with_cache(CacheConfig::default())
    }

    /// A new broadcast whose tracks use `cache`.
    pub fn with_cache(cache: CacheConfig) -> Self {
        let mut life = Lifecycle::new();
        life.add_producer();
        let shared = Arc::new(BroadcastShared {
            cache,
            state: Lock::new(BroadcastState {
                tracks: HashMap::new(),
                sweep_at: 64,
                requests: VecDeque::new(),
                request_handlers: 0,
                offered: VecDeque::new(),
                offered_next: 0,
                offered_sweep_at: 64,
                offered_waiting: WaiterList::default(),
                life,
                handlers_waiting: WaiterList::default(),
                on_close: Vec::new(),
            }),
            hops: Lock::new(Vec::new()),
            cost: Lock::new(RouteCost::LOCAL),
        });
        BroadcastProducer { shared, slot: None }
    }

    /// Creates track `info`, replacing any track of the same name for new
    /// subscribers (current ones keep reading the old one).
    pub fn create_track(&self, info: Track) -> TrackProducer {
        let track = TrackProducer::with_cache(info, self.shared.cache);
        self.insert_track(&track);
        track
    }

    /// Records the relays this broadcast came through (their hop IDs, the
    /// origin's side first), before publishing it. Origins prefer the
    /// publication with the fewest hops; sessions forward the list so that
    /// relay clusters avoid loops. A broadcast published where it is
    /// produced has none.
    pub fn set_hops(&self, hops: Vec<u64>) {
        *self.shared.hops.lock() = hops;
    }

    /// Records what the route this broadcast came over costs, before
    /// publishing it: origins prefer the lowest cold cost, then the fewest
    /// hops (see [`RouteCost`]). Local broadcasts cost nothing.
    pub fn set_route_cost(&self, cost: RouteCost) {
        *self.shared.cost.lock() = cost;
    }

    /// Offers an existing track under its name.
    pub fn insert_track(&self, track: &TrackProducer) {
        let mut state = self.shared.state.lock();
        insert_entry(
            &mut state,
            track.info().name.clone(),
            Arc::downgrade(track.shared()),
        );
        // Ended tracks are no longer worth offering: sweep them out once the
        // log doubled, so it stays proportional to the live offers.
        if state.offered.len() >= state.offered_sweep_at {
            state
                .offered
                .retain(|(_, t)| t.upgrade().is_some_and(|t| t.is_open()));
            state.offered_sweep_at = (state.offered.len() * 2).max(64);
        }
        let number = state.offered_next;
        state.offered_next += 1;
        state.offered.push_back((number, Arc::downgrade(track.shared())));
        state.offered_waiting.wake_all();
    }

    /// Stops offering the track `name` to new subscribers.
    pub fn remove_track(&self, name: &str) -> bool {
        self.shared.state.lock().tracks.remove(name).is_some()
    }

    /// A handle that receives requests for tracks this broadcast does not
    /// have. While one exists, unknown tracks are queued instead of refused.
    pub fn requests(&self) -> BroadcastRequests {
        self.shared.state.lock().request_handlers += 1;
        BroadcastRequests {
            shared: self.shared.clone(),
            slot: None,
        }
    }

    /// A consumer of this broadcast.
    pub fn consume(&self) -> BroadcastConsumer {
        BroadcastConsumer::new(self.shared.clone())
    }

    /// Ends the broadcast with `err`.
    pub fn abort(self, err: Error) {
        self.shared.close(Status::Aborted(err));
    }

    /// Whether no consumer is left.
    pub fn is_unused(&self) -> bool {
        self.shared.state.lock().life.is_unused()
    }

    /// Ready once no consumer is left or the broadcast ended.
    pub fn poll_unused(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared
            .state
            .lock()
            .life
            .poll_unused(&mut self.slot, cx.waker())
    }

    /// Waits until no consumer is left (or the broadcast ended).
    pub async fn unused(&mut self) {
        std::future::poll_fn(|cx| self.poll_unused(cx)).await
    }
}

fn insert_entry(state: &mut BroadcastState, name: String, track: Weak<TrackShared>) {
    if state.tracks.len() >= state.sweep_at {
        state
            .tracks
            .retain(|_, t| t.upgrade().is_some_and(|t| t.is_open()));
        state.sweep_at = (state.tracks.len() * 2).max(64);
    }
    state.tracks.insert(name, track);
}

impl Default for BroadcastProducer {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for BroadcastProducer {
    fn clone(&self) -> Self {
        self.shared.state.lock().life.add_producer();
        BroadcastProducer {
            shared: self.shared.clone(),
            slot: None,
        }
    }
}

impl Drop for BroadcastProducer {
    fn drop(&mut self) {
        let end = self
            .shared
            .state
            .lock()
            .life
            .release_producer(&mut self.slot, None);
        // Closing runs hooks that take other locks: not under this one.
        if let Some(status) = end {
            self.shared.close(status);
        }
    }
}

impl std::fmt::Debug for BroadcastProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastProducer").finish_non_exhaustive()
    }
}

/// Receives requests for tracks a broadcast does not have, so that a relay can
/// fetch them from upstream on demand.
pub struct BroadcastRequests {
    shared: Arc<BroadcastShared>,
    slot: Option<WaitSlot>,
}

impl BroadcastRequests {
    /// The next requested track, to be filled (or aborted, e.g. with
    /// [`Error::NotFound`]); `None` once the broadcast ended and every
    /// request made before its end was handed out.
    pub fn poll_requested_track(&mut self, cx: &mut Context<'_>) -> Poll<Option<TrackProducer>> {
        let mut state = self.shared.state.lock();
        if let Some(track) = state.requests.pop_front() {
            return Poll::Ready(Some(track));
        }
        if !state.life.is_open() {
            return Poll::Ready(None);
        }
        state.handlers_waiting.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next requested track; `None` once the broadcast ended.
    pub async fn requested_track(&mut self) -> Option<TrackProducer> {
        std::future::poll_fn(|cx| self.poll_requested_track(cx)).await
    }
}

/// The requested tracks as a stream, for serving each as it comes
/// (`requests.for_each_concurrent(None, serve)`); it ends with the broadcast.
impl futures::Stream for BroadcastRequests {
    type Item = TrackProducer;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TrackProducer>> {
        self.get_mut().poll_requested_track(cx)
    }
}

impl Drop for BroadcastRequests {
    fn drop(&mut self) {
        let orphans = {
            let mut state = self.shared.state.lock();
            state.handlers_waiting.unregister(&mut self.slot);
            state.request_handlers -= 1;
            if state.request_handlers == 0 {
                std::mem::take(&mut state.requests)
            } else {
                VecDeque::new()
            }
        };
        for request in orphans {
            request.abort(Error::NotFound);
        }
    }
}

/// The tracks a broadcast's producer offers, one consumer each, from
/// [`BroadcastConsumer::offered_tracks`].
pub struct OfferedTracks {
    shared: Arc<BroadcastShared>,
    /// The number of the next offer to look at.
    next: u64,
    slot: Option<WaitSlot>,
}

impl OfferedTracks {
    /// The next live offered track, a consumer starting at its latest
    /// group; `None` once the broadcast ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<TrackConsumer>> {
        let mut state = self.shared.state.lock();
        if !state.life.is_open() {
            return Poll::Ready(None);
        }
        let from = state.offered.partition_point(|(number, _)| *number < self.next);
        for (number, offer) in state.offered.range(from..) {
            self.next = number + 1;
            if let Some(track) = offer.upgrade().filter(|t| t.is_open()) {
                return Poll::Ready(Some(TrackConsumer::new(track, None)));
            }
        }
        state.offered_waiting.register(&mut self.slot, cx.waker());
        Poll::Pending
    }

    /// The next live offered track; `None` once the broadcast ended.
    pub async fn next(&mut self) -> Option<TrackConsumer> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

/// The offered tracks as a stream; it ends with the broadcast.
impl futures::Stream for OfferedTracks {
    type Item = TrackConsumer;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TrackConsumer>> {
        OfferedTracks::poll_next(self.get_mut(), cx)
    }
}

impl Drop for OfferedTracks {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .offered_waiting
            .unregister(&mut self.slot);
    }
}

impl std::fmt::Debug for OfferedTracks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfferedTracks").finish_non_exhaustive()
    }
}

/// Reads a broadcast: subscribes to its tracks by name.
pub struct BroadcastConsumer {
    shared: Arc<BroadcastShared>,
    slot: Option<WaitSlot>,
}

impl BroadcastConsumer {
    fn new(shared: Arc<BroadcastShared>) -> Self {
        shared.state.lock().life.add_consumer();
        BroadcastConsumer { shared, slot: None }
    }

    /// A consumer of track `info.name`, starting at its latest group.
    ///
    /// A track the producer does not have is requested from the producer side
    /// if it serves requests (see [`BroadcastProducer::requests`]), else this
    /// fails with [`Error::NotFound`].
    pub fn subscribe_track(&self, info: &Track) -> Result<TrackConsumer> {
        self.subscribe_track_from(info, None)
    }

    /// A consumer of track `info.name` starting at group `start` (`None`:
    /// the latest group). Held groups from `start` on are read first; a
    /// track made on request carries `start` to the producer side
    /// ([`TrackProducer::requested_start`]), so a session asks its peer for
    /// the older groups too. Groups older than what either still holds are
    /// not delivered: [`TrackConsumer::skipped`] and the track's first group
    /// tell what arrived.
    pub fn subscribe_track_from(&self, info: &Track, start: Option<u64>) -> Result<TrackConsumer> {
        let mut consumer = self.find_or_request(info, start)?;
        if let Some(start) = start {
            consumer.restart_from(start);
        }
        Ok(consumer)
    }

    /// What the broadcast says of track `name` without subscribing to it (a
    /// peer asking for a track's properties is not a subscriber): its info
    /// when the track is here; `None` when it is not but may be requested
    /// (the producer side serves requests); [`Error::NotFound`] otherwise.
    pub fn track_info(&self, name: &str) -> Result<Option<Track>> {
        let state = self.shared.state.lock();
        match state.life.closed() {
            None => {}
            Some(Ok(())) => return Err(Error::NotFound),
            Some(Err(err)) => return Err(err),
        }
        if let Some(track) = state.tracks.get(name).and_then(Weak::upgrade) {
            if track.is_open() {
                return Ok(Some(track.info.clone()));
            }
        }
        if state.request_handlers == 0 {
            return Err(Error::NotFound);
        }
        Ok(None)
    }

    fn find_or_request(&self, info: &Track, start: Option<u64>) -> Result<TrackConsumer> {
        let mut state = self.shared.state.lock();
        // A finished broadcast has no tracks left to find.
        match state.life.closed() {
            None => {}
            Some(Ok(())) => return Err(Error::NotFound),
            Some(Err(err)) => return Err(err),
        }
        if let Some(track) = state.tracks.get(&info.name).and_then(Weak::upgrade) {
            if let Some(start) = start {
                // A request not yet sent upstream goes from the earliest start.
                track.request_start(start);
            }
            if let Some(consumer) = TrackConsumer::new_unless_aborted(track) {
                return Ok(consumer);
            }
        }
        if state.request_handlers == 0 {
            return Err(Error::NotFound);
        }
        if state.requests.len() >= MAX_PENDING_TRACK_REQUESTS {
            return Err(Error::Bounds);
        }
        let track = TrackProducer::with_cache(info.clone(), self.shared.cache);
        track.shared().mark_fed();
        if let Some(start) = start {
            track.shared().request_start(start);
        }
        let consumer = track.consume();
        insert_entry(&mut state, info.name.clone(), Arc::downgrade(track.shared()));
        state.requests.push_back(track);
        state.handlers_waiting.wake_all();
        Ok(consumer)
    }

    /// The tracks the producer offers ([`BroadcastProducer::create_track`],
    /// [`BroadcastProducer::insert_track`]), those still live first, then
    /// each new one; tracks made for subscribers' requests are not offers.
    /// For sessions that push tracks to peers unasked (IETF PUBLISH).
    pub fn offered_tracks(&self) -> OfferedTracks {
        OfferedTracks {
            shared: self.shared.clone(),
            next: 0,
            slot: None,
        }
    }

    /// What the caches of this broadcast's live tracks hold, summed. Walks
    /// every track: for metrics, not for a hot path.
    pub fn cache_stats(&self) -> CacheStats {
        let tracks: Vec<_> = self
            .shared
            .state
            .lock()
            .tracks
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let mut total = CacheStats::default();
        for track in tracks {
            total += track.cache_stats();
        }
        total
    }

    /// The relays this broadcast came through (see
    /// [`BroadcastProducer::set_hops`]).
    pub fn hops(&self) -> Vec<u64> {
        self.shared.hops.lock().clone()
    }

    /// What the route this broadcast came over costs (see
    /// [`BroadcastProducer::set_route_cost`]).
    pub fn route_cost(&self) -> RouteCost {
        *self.shared.cost.lock()
    }

    /// Whether both handles refer to the same broadcast.
    pub fn is_same(&self, other: &BroadcastConsumer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether the broadcast has ended, and how.
    pub fn is_closed(&self) -> Option<Result<()>> {
        self.shared.state.lock().life.closed()
    }

    /// Waits for the broadcast to end: `Ok` when its producers went away,
    /// the error if aborted.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared
            .state
            .lock()
            .life
            .poll_closed(&mut self.slot, cx.waker())
    }

    /// Waits for the broadcast to end.
    pub async fn closed(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    pub(crate) fn shared(&self) -> &Arc<BroadcastShared> {
        &self.shared
    }
}

impl Clone for BroadcastConsumer {
    fn clone(&self) -> Self {
        BroadcastConsumer::new(self.shared.clone())
    }
}

impl Drop for BroadcastConsumer {
    fn drop(&mut self) {
        self.shared.state.lock().life.release_consumer(&mut self.slot);
    }
}

impl std::fmt::Debug for BroadcastConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastConsumer").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(track: Option<TrackConsumer>) -> String {
        track.expect("an offer").info().name.clone()
    }

    #[tokio::test]
    async fn offered_tracks_are_the_live_ones_then_each_new_one() {
        let broadcast = BroadcastProducer::new();
        let _requests = broadcast.requests();
        let a = broadcast.create_track(Track::new("a"));
        let b = broadcast.create_track(Track::new("b"));
        drop(b);
        let consumer = broadcast.consume();
        // A track made for a subscriber's request is not an offer.
        let _requested = consumer.subscribe_track(&Track::new("asked")).unwrap();

        let mut offers = consumer.offered_tracks();
        assert_eq!(name(offers.next().await), "a", "b ended before it was seen");
        let waiting = tokio::spawn(async move {
            let next = name(offers.next().await);
            (next, offers)
        });
        let _c = broadcast.create_track(Track::new("c"));
        let (next, mut offers) = waiting.await.unwrap();
        assert_eq!(next, "c");

        drop((a, _c, _requests));
        drop(broadcast);
        assert!(offers.next().await.is_none(), "the broadcast ended");
    }

    #[test]
    fn the_offer_log_stays_proportional_to_the_live_tracks() {
        let broadcast = BroadcastProducer::new();
        let live = broadcast.create_track(Track::new("live"));
        for i in 0..10_000 {
            drop(broadcast.create_track(Track::new(format!("t{i}"))));
        }
        assert!(broadcast.shared.state.lock().offered.len() <= 128);
        let mut offers = broadcast.consume().offered_tracks();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(first)) = offers.poll_next(&mut cx) else {
            panic!("the live track is offered")
        };
        assert_eq!(first.info().name, "live");
        assert!(offers.poll_next(&mut cx).is_pending());
        drop(live);
    }
}

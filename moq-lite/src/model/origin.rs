//! Origins: broadcasts by path, and live announcements of them.
//!
//! An [`OriginProducer`] publishes broadcasts under paths; an
//! [`OriginConsumer`] looks them up and follows announcements (a broadcast
//! became active, or ended) for everything it may see, starting with a replay
//! of what is active now. Both can be scoped to a set of allowed prefixes (how
//! auth limits a session) and re-rooted under a prefix (how a session's URL
//! path becomes the root of the paths it uses).
//!
//! When two broadcasts are published at one path, the newest is the one
//! consumers get; if it ends, the older one comes back. (In a relay cluster
//! the cheapest route (see [`super::RouteCost`]), then the one with the
//! fewest hops, wins first: see
//! [`BroadcastProducer::set_hops`].) Announcements always alternate per
//! path: a replacement reads as `ended` then `active`.
//!
//! Each consumer's pending announcements are a set of changed paths, not a
//! log: one that never reads costs at most one entry per path, however often
//! broadcasts come and go.
//!
//! ```
//! use moq_lite::model::{BroadcastProducer, OriginProducer, Path};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let origin = OriginProducer::new();
//! let mut consumer = origin.consume();
//!
//! let broadcast = origin.create_broadcast("room/alice").unwrap();
//! let announced = consumer.announced().await.unwrap();
//! assert_eq!(announced.path, Path::new("room/alice"));
//! assert!(announced.broadcast.is_some());
//!
//! drop(broadcast); // unpublished automatically
//! let announced = consumer.announced().await.unwrap();
//! assert!(announced.broadcast.is_none());
//! # });
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use super::broadcast::{BroadcastConsumer, BroadcastProducer};
use super::limits::CacheConfig;
use super::lock::Lock;
use super::path::Path;
use crate::{Error, Result};

/// A change in what an [`OriginConsumer`] can see.
#[derive(Debug, Clone)]
pub struct Announced {
    /// The broadcast's path, relative to the consumer's root.
    pub path: Path,
    /// The broadcast now active at that path, or `None` if it ended.
    pub broadcast: Option<BroadcastConsumer>,
}

/// What a handle may touch: a root, and absolute prefixes under it.
#[derive(Debug, Clone)]
struct Scope {
    root: Path,
    allowed: Vec<Path>,
}

impl Scope {
    fn full() -> Self {
        Scope {
            root: Path::root(),
            allowed: vec![Path::root()],
        }
    }

    fn absolute(&self, path: &Path) -> Path {
        self.root.join(path)
    }

    fn allows(&self, absolute: &Path) -> bool {
        self.allowed.iter().any(|prefix| absolute.has_prefix(prefix))
    }

    fn relative(&self, absolute: &Path) -> Option<Path> {
        absolute.strip_prefix(&self.root)
    }

    /// Only the parts of this scope under `prefixes` (relative to the root).
    fn narrow(&self, prefixes: &[Path]) -> Option<Scope> {
        let mut allowed: Vec<Path> = Vec::new();
        for prefix in prefixes {
            let wanted = self.absolute(prefix);
            for have in &self.allowed {
                let both = if wanted.has_prefix(have) {
                    wanted.clone()
                } else if have.has_prefix(&wanted) {
                    have.clone()
                } else {
                    continue;
                };
                if !allowed.iter().any(|a| both.has_prefix(a)) {
                    allowed.retain(|a| !a.has_prefix(&both));
                    allowed.push(both);
                }
            }
        }
        (!allowed.is_empty()).then(|| Scope {
            root: self.root.clone(),
            allowed,
        })
    }

    /// The same scope with `prefix` (relative) as the new root.
    fn reroot(&self, prefix: &Path) -> Option<Scope> {
        let root = self.absolute(prefix);
        let narrowed = self.narrow(std::slice::from_ref(prefix))?;
        Some(Scope {
            root,
            allowed: narrowed.allowed,
        })
    }
}

struct Published {
    id: u64,
    /// Relays between us and the broadcast's producer (fixed at publish).
    hops: usize,
    /// The route's cold cost (fixed at publish).
    cost: u64,
    broadcast: BroadcastConsumer,
}

struct Watcher {
    allowed: Vec<Path>,
    dirty: VecDeque<Path>,
    queued: HashSet<Path>,
    waker: Option<Waker>,
}

impl Watcher {
    fn mark(&mut self, path: &Path) {
        if self.allowed.iter().any(|a| path.has_prefix(a)) && self.queued.insert(path.clone()) {
            self.dirty.push_back(path.clone());
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }
}

struct OriginState {
    /// Per path, every publication. Ordered by path, so that the paths under
    /// a prefix are one contiguous range.
    broadcasts: BTreeMap<Path, Vec<Published>>,
    next_id: u64,
    watchers: Vec<Option<Watcher>>,
    free: Vec<usize>,
    producers: usize,
}

impl OriginState {
    fn changed(&mut self, path: &Path) {
        for watcher in self.watchers.iter_mut().flatten() {
            watcher.mark(path);
        }
    }

    /// The publication consumers get: the cheapest route (lowest cold
    /// cost, then fewest hops: the shortest route in a relay cluster), the
    /// newest among equals.
    fn active(&self, path: &Path) -> Option<&Published> {
        self.broadcasts
            .get(path)
            .and_then(|v| v.iter().rev().min_by_key(|p| (p.cost, p.hops)))
    }
}

struct OriginShared {
    cache: CacheConfig,
    state: Lock<OriginState>,
}

impl OriginShared {
    fn remove(&self, path: &Path, id: u64) -> bool {
        let mut state = self.state.lock();
        let Some(list) = state.broadcasts.get_mut(path) else {
            return false;
        };
        let before = list.len();
        list.retain(|p| p.id != id);
        let removed = list.len() != before;
        if list.is_empty() {
            state.broadcasts.remove(path);
        }
        if removed {
            state.changed(path);
        }
        removed
    }
}

/// Publishes broadcasts into an origin.
pub struct OriginProducer {
    shared: Arc<OriginShared>,
    scope: Scope,
}

impl OriginProducer {
    /// A new, empty origin whose broadcasts use the default cache bounds.
    pub fn new() -> Self {
        Self::with_cache(CacheConfig::default())
    }

    /// A new, empty origin; broadcasts made by
    /// [`create_broadcast`](Self::create_broadcast) use `cache`.
    pub fn with_cache(cache: CacheConfig) -> Self {
        OriginProducer {
            shared: Arc::new(OriginShared {
                cache,
                state: Lock::new(OriginState {
                    broadcasts: BTreeMap::new(),
                    next_id: 0,
                    watchers: Vec::new(),
                    free: Vec::new(),
                    producers: 1,
                }),
            }),
            scope: Scope::full(),
        }
    }

    /// Publishes `broadcast` at `path` until it ends or is unpublished.
    ///
    /// Fails with [`Error::Unauthorized`] outside this handle's scope and
    /// with [`Error::Duplicate`] if this broadcast is already at that path.
    pub fn publish(&self, path: impl Into<Path>, broadcast: &BroadcastConsumer) -> Result<()> {
        let path = self.scope.absolute(&path.into());
        if !self.scope.allows(&path) {
            return Err(Error::Unauthorized);
        }
        let id = {
            let mut state = self.shared.state.lock();
            let list = state.broadcasts.entry(path.clone()).or_default();
            if list.iter().any(|p| p.broadcast.is_same(broadcast)) {
                return Err(Error::Duplicate);
            }
            let id = state.next_id;
            state.next_id += 1;
            let published = Published {
                id,
                hops: broadcast.hops().len(),
                cost: broadcast.route_cost().cold,
                broadcast: broadcast.clone(),
            };
            state.broadcasts.entry(path.clone()).or_default().push(published);
            state.changed(&path);
            id
        };
        // Registered outside the origin's lock: it runs at once if the
        // broadcast already ended, and then takes that lock itself.
        let origin: Weak<OriginShared> = Arc::downgrade(&self.shared);
        broadcast.shared().on_close(Box::new(move || {
            if let Some(origin) = origin.upgrade() {
                origin.remove(&path, id);
            }
        }));
        Ok(())
    }

    /// Creates a broadcast (with this origin's cache bounds) and publishes it
    /// at `path`; it is unpublished when the returned producer is dropped.
    pub fn create_broadcast(&self, path: impl Into<Path>) -> Result<BroadcastProducer> {
        let broadcast = self.new_broadcast();
        self.publish(path, &broadcast.consume())?;
        Ok(broadcast)
    }

    /// A broadcast with this origin's cache bounds, not yet published: set
    /// it up (say, attach [`BroadcastProducer::requests`]) before
    /// [`publish`](Self::publish) makes it visible.
    pub fn new_broadcast(&self) -> BroadcastProducer {
        BroadcastProducer::with_cache(self.shared.cache)
    }

    /// Withdraws `broadcast` from `path`; returns whether it was there.
    pub fn unpublish(&self, path: impl Into<Path>, broadcast: &BroadcastConsumer) -> bool {
        let path = self.scope.absolute(&path.into());
        if !self.scope.allows(&path) {
            return false;
        }
        let id = {
            let state = self.shared.state.lock();
            let found = state
                .broadcasts
                .get(&path)
                .and_then(|list| list.iter().find(|p| p.broadcast.is_same(broadcast)).map(|p| p.id));
            match found {
                Some(id) => id,
                None => return false,
            }
        };
        self.shared.remove(&path, id)
    }

    /// A consumer with this handle's root and scope.
    pub fn consume(&self) -> OriginConsumer {
        OriginConsumer::new(self.shared.clone(), self.scope.clone())
    }

    /// A producer limited to `prefixes` (relative to the root); `None` if
    /// none of them is within this handle's scope.
    pub fn scope(&self, prefixes: &[Path]) -> Option<OriginProducer> {
        let scope = self.scope.narrow(prefixes)?;
        Some(self.with_scope(scope))
    }

    /// A producer whose paths are relative to `prefix`; `None` if nothing
    /// under `prefix` is within this handle's scope.
    pub fn with_root(&self, prefix: impl Into<Path>) -> Option<OriginProducer> {
        let scope = self.scope.reroot(&prefix.into())?;
        Some(self.with_scope(scope))
    }

    fn with_scope(&self, scope: Scope) -> OriginProducer {
        self.shared.state.lock().producers += 1;
        OriginProducer {
            shared: self.shared.clone(),
            scope,
        }
    }

    /// The root of this handle's paths, as an absolute path.
    pub fn root(&self) -> &Path {
        &self.scope.root
    }

    /// The absolute prefixes this handle may publish under.
    pub fn allowed(&self) -> &[Path] {
        &self.scope.allowed
    }
}

impl Default for OriginProducer {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for OriginProducer {
    fn clone(&self) -> Self {
        self.with_scope(self.scope.clone())
    }
}

impl Drop for OriginProducer {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.producers -= 1;
        if state.producers == 0 {
            for watcher in state.watchers.iter_mut().flatten() {
                if let Some(waker) = watcher.waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

impl std::fmt::Debug for OriginProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginProducer")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Finds broadcasts in an origin and follows their announcements.
pub struct OriginConsumer {
    shared: Arc<OriginShared>,
    scope: Scope,
    watcher: Option<usize>,
    /// What this consumer last announced as active, by absolute path.
    reported: HashMap<Path, u64>,
}

impl OriginConsumer {
    fn new(shared: Arc<OriginShared>, scope: Scope) -> Self {
        OriginConsumer {
            shared,
            scope,
            watcher: None,
            reported: HashMap::new(),
        }
    }

    /// The broadcast active at `path` (relative to the root), if any and if
    /// this handle may see it.
    pub fn consume_broadcast(&self, path: impl Into<Path>) -> Option<BroadcastConsumer> {
        let path = self.scope.absolute(&path.into());
        if !self.scope.allows(&path) {
            return None;
        }
        let state = self.shared.state.lock();
        state.active(&path).map(|p| p.broadcast.clone())
    }

    /// The next announcement: first every broadcast active when this is
    /// first called, then changes as they happen. `None` once every producer
    /// of the origin is gone and everything announced has ended.
    pub fn poll_announced(&mut self, cx: &mut Context<'_>) -> Poll<Option<Announced>> {
        let shared = self.shared.clone();
        let mut state = shared.state.lock();
        if let Some(announced) = self.next_locked(&mut state) {
            return Poll::Ready(Some(announced));
        }
        if state.producers == 0 && self.reported.is_empty() {
            return Poll::Ready(None);
        }
        // `next_locked` registered this consumer's watcher.
        if let Some(watcher) = self.watcher.and_then(|i| state.watchers[i].as_mut()) {
            watcher.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next announcement (see [`poll_announced`](Self::poll_announced)).
    pub async fn announced(&mut self) -> Option<Announced> {
        std::future::poll_fn(|cx| self.poll_announced(cx)).await
    }

    /// The next announcement if one is ready now, without waiting.
    pub fn try_announced(&mut self) -> Option<Announced> {
        let shared = self.shared.clone();
        let mut state = shared.state.lock();
        self.next_locked(&mut state)
    }

    fn next_locked(&mut self, state: &mut OriginState) -> Option<Announced> {
        let index = match self.watcher {
            Some(index) => index,
            None => self.register(state),
        };
        loop {
            let watcher = state.watchers[index].as_mut()?;
            let path = watcher.dirty.pop_front()?;
            watcher.queued.remove(&path);
            let current = state.active(&path).map(|p| (p.id, p.broadcast.clone()));
            let reported = self.reported.get(&path).copied();
            let relative = self.scope.relative(&path)?;
            match (reported, current) {
                (None, None) => continue,
                (Some(seen), Some((id, _))) if seen == id => continue,
                (Some(_), Some(_)) => {
                    // Replaced: announce the end now and the newcomer next.
                    self.reported.remove(&path);
                    let watcher = state.watchers[index].as_mut()?;
                    watcher.queued.insert(path.clone());
                    watcher.dirty.push_front(path);
                    return Some(Announced {
                        path: relative,
                        broadcast: None,
                    });
                }
                (None, Some((id, broadcast))) => {
                    self.reported.insert(path, id);
                    return Some(Announced {
                        path: relative,
                        broadcast: Some(broadcast),
                    });
                }
                (Some(_), None) => {
                    self.reported.remove(&path);
                    return Some(Announced {
                        path: relative,
                        broadcast: None,
                    });
                }
            }
        }
    }

    /// Starts following changes, queueing what is active now as the replay.
    fn register(&mut self, state: &mut OriginState) -> usize {
        let mut watcher = Watcher {
            allowed: self.scope.allowed.clone(),
            dirty: VecDeque::new(),
            queued: HashSet::new(),
            waker: None,
        };
        // Replay only what is in scope: every path under a prefix sorts at
        // or after it, among the paths that start with its text.
        for prefix in &self.scope.allowed {
            let under = state
                .broadcasts
                .range(prefix.clone()..)
                .map(|(path, _)| path)
                .take_while(|path| path.as_str().starts_with(prefix.as_str()));
            for path in under {
                watcher.mark(path);
            }
        }
        let index = match state.free.pop() {
            Some(index) => {
                state.watchers[index] = Some(watcher);
                index
            }
            None => {
                state.watchers.push(Some(watcher));
                state.watchers.len() - 1
            }
        };
        self.watcher = Some(index);
        index
    }

    /// A consumer limited to `prefixes` (relative to the root); `None` if
    /// none of them is within this handle's scope.
    pub fn scope(&self, prefixes: &[Path]) -> Option<OriginConsumer> {
        let scope = self.scope.narrow(prefixes)?;
        Some(OriginConsumer::new(self.shared.clone(), scope))
    }

    /// A consumer whose paths are relative to `prefix`; `None` if nothing
    /// under `prefix` is within this handle's scope.
    pub fn with_root(&self, prefix: impl Into<Path>) -> Option<OriginConsumer> {
        let scope = self.scope.reroot(&prefix.into())?;
        Some(OriginConsumer::new(self.shared.clone(), scope))
    }

    /// The root of this handle's paths, as an absolute path.
    pub fn root(&self) -> &Path {
        &self.scope.root
    }

    /// The absolute prefixes this handle may see.
    pub fn allowed(&self) -> &[Path] {
        &self.scope.allowed
    }
}

impl Clone for OriginConsumer {
    /// A consumer with the same scope that starts with its own replay.
    fn clone(&self) -> Self {
        OriginConsumer::new(self.shared.clone(), self.scope.clone())
    }
}

impl Drop for OriginConsumer {
    fn drop(&mut self) {
        if let Some(index) = self.watcher.take() {
            let mut state = self.shared.state.lock();
            state.watchers[index] = None;
            state.free.push(index);
        }
    }
}

impl std::fmt::Debug for OriginConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginConsumer")
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RouteCost;

    #[test]
    fn the_cheapest_route_wins_before_the_shortest() {
        let origin = OriginProducer::new();
        // Two hops over cheap links beat one hop over a dear one, and any
        // priced route beats one of unknown cost (an older wire).
        let cheap = BroadcastProducer::new();
        cheap.set_hops(vec![1, 2]);
        cheap.set_route_cost(RouteCost { warm: 2, cold: 2 });
        let dear = BroadcastProducer::new();
        dear.set_hops(vec![3]);
        dear.set_route_cost(RouteCost { warm: 0, cold: 50 });
        let unknown = BroadcastProducer::new();
        unknown.set_route_cost(RouteCost::UNKNOWN);
        for b in [&unknown, &dear, &cheap] {
            origin.publish("x", &b.consume()).unwrap();
        }
        let active = origin.consume().consume_broadcast("x").unwrap();
        assert!(active.is_same(&cheap.consume()));
        drop(cheap);
        let active = origin.consume().consume_broadcast("x").unwrap();
        assert!(active.is_same(&dear.consume()));
        drop(dear);
        let active = origin.consume().consume_broadcast("x").unwrap();
        assert_eq!(active.route_cost(), RouteCost::UNKNOWN);
    }

    #[test]
    fn the_shortest_route_wins_and_backups_take_over() {
        let origin = OriginProducer::new();
        let mut consumer = origin.consume();
        let far = BroadcastProducer::new();
        far.set_hops(vec![1, 2]);
        let near = BroadcastProducer::new();
        near.set_hops(vec![3]);
        origin.publish("x", &far.consume()).unwrap();
        origin.publish("x", &near.consume()).unwrap();
        let active = consumer.try_announced().unwrap().broadcast.unwrap();
        assert_eq!(active.hops(), vec![3]);

        // A longer route published later does not displace the shorter one.
        let farther = BroadcastProducer::new();
        farther.set_hops(vec![4, 5, 6]);
        origin.publish("x", &farther.consume()).unwrap();
        assert!(consumer.try_announced().is_none());
        assert_eq!(origin.consume().consume_broadcast("x").unwrap().hops(), vec![3]);

        // The primary goes away: the next shortest takes over.
        drop(near);
        assert!(consumer.try_announced().unwrap().broadcast.is_none());
        assert_eq!(
            consumer.try_announced().unwrap().broadcast.unwrap().hops(),
            vec![1, 2]
        );

        // A local publication (no hops) beats every relayed one.
        let local = BroadcastProducer::new();
        origin.publish("x", &local.consume()).unwrap();
        assert!(consumer.try_announced().unwrap().broadcast.is_none());
        assert!(
            consumer
                .try_announced()
                .unwrap()
                .broadcast
                .unwrap()
                .is_same(&local.consume())
        );
    }
}

//! The moq-lite data model: `Origin > Broadcast > Track > Group > Frame`.
//!
//! Each level is a Producer/Consumer pair. Producers write, consumers read
//! with their own cursor; both are cheap to clone. Dropping the last producer
//! ends the level for its consumers, `abort(err)` ends it with an error, and a
//! producer can see when every consumer has gone. Every waiting method has an
//! async form and a `poll_*` twin that works with any [`std::task::Waker`].
//! There is no I/O here: sessions move data between the wire and this model.
//!
//! The track cache ([`CacheConfig`]) decides how much of each track is kept
//! for late and slow consumers; it lives here once and every crate uses it.

//!
//! Modules import one way only, from leaves up: `limits`, `lock`, `waiter`
//! and `path` import no sibling, nor does `backfill` (a pure decision); then
//! `lifecycle`, `group_state` (a group's
//! shared state, which frames, groups and the cache all hold), `frame`,
//! `group`, `cache`, `track`, `broadcast`, `origin`, each importing only
//! modules before it.

mod backfill;
mod broadcast;
mod cache;
mod frame;
mod group;
mod group_state;
mod lifecycle;
mod limits;
mod lock;
mod origin;
mod path;
mod route;
mod track;
mod waiter;

pub use broadcast::*;
pub use frame::*;
pub use group::{GroupConsumer, GroupProducer};
pub use limits::{
    CHUNK_OVERHEAD, CacheConfig, DEFAULT_MAX_AGE, DEFAULT_MAX_GROUP_BYTES, DEFAULT_MAX_GROUP_FRAMES,
    DEFAULT_MAX_TRACK_BYTES, FETCH_WAIT, FRAME_OVERHEAD, GROUP_OVERHEAD, GroupLimits,
};
pub use origin::*;
pub use path::*;
pub use route::RouteCost;
pub use track::{BackfillRequest, CacheStats, Track, TrackConsumer, TrackNext, TrackProducer};

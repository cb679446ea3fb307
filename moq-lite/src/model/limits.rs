//! The cache's bounds and what it charges for, in one leaf module.
//!
//! Groups check their limits and charge their bytes; the track cache sets
//! those limits and counts the bytes. Keeping the numbers and the budget
//! interface here, with no import from the other model modules, lets the
//! modules that use them depend on each other in one direction only.

use std::time::Duration;

/// Default for [`CacheConfig::max_age`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);
/// Default for [`CacheConfig::max_bytes`].
pub const DEFAULT_MAX_TRACK_BYTES: u64 = 64 * 1024 * 1024;
/// Default for [`CacheConfig::max_group_bytes`].
pub const DEFAULT_MAX_GROUP_BYTES: u64 = 16 * 1024 * 1024;
/// How long a request for one older group (a FETCH) waits for a relay's
/// upstream to bring it, at most (see
/// [`TrackConsumer::wait_group`](super::TrackConsumer::wait_group)).
pub const FETCH_WAIT: Duration = Duration::from_secs(2);
/// Default for [`CacheConfig::max_group_frames`].
pub const DEFAULT_MAX_GROUP_FRAMES: u64 = 64 * 1024;

/// What a group costs beyond its payload, charged to the cache budget so
/// that empty groups cannot pile up for free (the group's state, its place in
/// the cache's maps).
pub const GROUP_OVERHEAD: u64 = 512;
/// What a frame costs beyond its payload (its entry and first chunk).
pub const FRAME_OVERHEAD: u64 = 64;
/// What each further chunk of a frame costs beyond its bytes.
pub const CHUNK_OVERHEAD: u64 = 32;

/// How much of a track the cache keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// A group expires once a newer group has existed for this long.
    pub max_age: Duration,
    /// Bytes kept per track: payload plus a fixed charge per group
    /// ([`GROUP_OVERHEAD`]) and frame, so that
    /// many tiny groups are bounded too. The latest group always stays.
    pub max_bytes: u64,
    /// Payload bytes one group may hold; a group growing past it is aborted
    /// with [`Error::CacheFull`](crate::Error::CacheFull). Never more than
    /// `max_bytes`.
    pub max_group_bytes: u64,
    /// Frames one group may hold; past it the group is aborted with
    /// [`Error::CacheFull`](crate::Error::CacheFull).
    pub max_group_frames: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_age: DEFAULT_MAX_AGE,
            max_bytes: DEFAULT_MAX_TRACK_BYTES,
            max_group_bytes: DEFAULT_MAX_GROUP_BYTES,
            max_group_frames: DEFAULT_MAX_GROUP_FRAMES,
        }
    }
}

impl CacheConfig {
    /// The per-group bounds this config implies.
    pub fn group_limits(&self) -> GroupLimits {
        GroupLimits {
            max_frames: self.max_group_frames,
            max_bytes: self.max_group_bytes.min(self.max_bytes),
        }
    }
}

/// Per-group bounds, taken from the track's [`CacheConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Frames a group may hold.
    pub max_frames: u64,
    /// Payload bytes a group may hold.
    pub max_bytes: u64,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            max_frames: DEFAULT_MAX_GROUP_FRAMES,
            max_bytes: DEFAULT_MAX_GROUP_BYTES,
        }
    }
}

/// Where a group's bytes are counted towards its track's memory bound.
///
/// Frame writes add to it without touching the track's lock; only when the
/// bound is crossed does the writer take that lock to evict old groups.
pub(crate) trait ByteBudget: Send + Sync {
    /// Adds `n` bytes; returns whether the track is now over its bound.
    fn add(&self, n: u64) -> bool;
    /// Evicts old groups until the track is back under its bound.
    fn enforce(&self);
}

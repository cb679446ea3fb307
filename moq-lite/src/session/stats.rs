//! Counters of what one session carried.
//!
//! Each session owns its counters (relaxed atomics, bumped once per frame by
//! the task that moves it), so sessions never contend on a shared cache
//! line; a relay sums them when it is scraped.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a session has carried so far; see [`crate::Session::stats`].
#[derive(Debug, Default)]
pub struct SessionStats {
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) groups_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) groups_out: AtomicU64,
    pub(crate) groups_dropped: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
}

/// A copy of [`SessionStats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Frames received from the peer.
    pub frames_in: u64,
    /// Payload bytes received from the peer.
    pub bytes_in: u64,
    /// Groups received from the peer.
    pub groups_in: u64,
    /// Frames sent to the peer.
    pub frames_out: u64,
    /// Payload bytes sent to the peer.
    pub bytes_out: u64,
    /// Groups sent to the peer (streams opened).
    pub groups_out: u64,
    /// Groups abandoned: past the subscriber's max latency, or skipped
    /// because the cache evicted them before they could be sent.
    pub groups_dropped: u64,
    /// Subscriptions the peer holds on us now.
    pub subscriptions: u64,
}

impl SessionStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a frame of `bytes` payload bytes received from the peer.
    pub fn frame_in(&self, bytes: u64) {
        Self::add(&self.frames_in, 1);
        Self::add(&self.bytes_in, bytes);
    }

    /// Counts a group (stream) received from the peer.
    pub fn group_in(&self) {
        Self::add(&self.groups_in, 1);
    }

    /// Counts a frame of `bytes` payload bytes sent to the peer.
    pub fn frame_out(&self, bytes: u64) {
        Self::add(&self.frames_out, 1);
        Self::add(&self.bytes_out, bytes);
    }

    /// Counts a group (stream) opened towards the peer.
    pub fn group_out(&self) {
        Self::add(&self.groups_out, 1);
    }

    /// Counts `n` groups abandoned instead of sent.
    pub fn dropped(&self, n: u64) {
        Self::add(&self.groups_dropped, n);
    }

    /// Counts a subscription the peer opened on us.
    pub fn subscription_started(&self) {
        Self::add(&self.subscriptions, 1);
    }

    /// Counts the end of one of those subscriptions.
    pub fn subscription_ended(&self) {
        self.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            frames_in: get(&self.frames_in),
            bytes_in: get(&self.bytes_in),
            groups_in: get(&self.groups_in),
            frames_out: get(&self.frames_out),
            bytes_out: get(&self.bytes_out),
            groups_out: get(&self.groups_out),
            groups_dropped: get(&self.groups_dropped),
            subscriptions: get(&self.subscriptions),
        }
    }
}

impl std::ops::AddAssign for StatsSnapshot {
    fn add_assign(&mut self, other: StatsSnapshot) {
        self.frames_in += other.frames_in;
        self.bytes_in += other.bytes_in;
        self.groups_in += other.groups_in;
        self.frames_out += other.frames_out;
        self.bytes_out += other.bytes_out;
        self.groups_out += other.groups_out;
        self.groups_dropped += other.groups_dropped;
        self.subscriptions += other.subscriptions;
    }
}

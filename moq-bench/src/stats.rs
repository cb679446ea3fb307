//! Counters and histograms shared by every task of a run, and the JSON
//! figures made from them.
//!
//! Timestamps: every frame starts with the send time as microseconds since
//! [`epoch`], an [`Instant`] taken once per process. Publishers and
//! subscribers always run in the same process, so the clock is monotonic and
//! shared, with no wall-clock skew; the timestamp means nothing to another
//! process.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::hist::Histogram;

/// The process's shared clock origin.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`].
pub fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// Latency histograms are split over this many locks, so that subscribers
/// reading the same frame at once rarely wait for each other.
const SHARDS: usize = 16;
/// Distinct error messages kept (with their counts).
const ERROR_SAMPLES: usize = 16;

#[derive(Default)]
struct Latency {
    /// Since the last live line.
    interval: Histogram,
    /// Since the measurement window opened.
    window: Histogram,
}

/// Every counter of a run.
#[derive(Default)]
pub struct Stats {
    /// Payload bytes written by publishers (frame sizes, timestamps
    /// included), counted once per frame whatever the number of subscribers.
    pub sent_bytes: AtomicU64,
    /// Frames written by publishers, counted once per frame.
    pub sent_frames: AtomicU64,
    /// Groups started by publishers.
    pub sent_groups: AtomicU64,
    /// Payload bytes read by subscribers (frame lengths, timestamps
    /// included), summed over every subscription.
    pub recv_bytes: AtomicU64,
    /// Frames read by subscribers, summed over every subscription.
    pub recv_frames: AtomicU64,
    /// Groups read to their end.
    pub recv_groups: AtomicU64,
    /// Sequence gaps: groups that never arrived.
    pub groups_lost: AtomicU64,
    /// Groups that arrived after a newer one (counted in a gap first, then
    /// taken out of it).
    pub groups_late: AtomicU64,
    /// Groups whose stream ended with an error part-way.
    pub groups_incomplete: AtomicU64,
    /// Groups the subscriber's own cache evicted unread
    /// (`TrackConsumer::skipped`); already part of `groups_lost`.
    pub groups_skipped_local: AtomicU64,
    /// Frames sent before their subscription began (a late joiner's first
    /// group): counted as received, left out of the latency.
    pub backlog_frames: AtomicU64,
    /// Connections established and not yet closed (a gauge, not a total).
    pub connections_up: AtomicU64,
    /// Connections established since the run started (setup completed).
    pub connections_opened: AtomicU64,
    /// Connections closed on purpose at the end of their `--lifetime` (churn).
    pub connections_churned: AtomicU64,
    /// Track subscriptions made by subscribers, re-subscriptions included.
    pub subscriptions: AtomicU64,
    /// Errors counted by [`Stats::error`].
    pub errors: AtomicU64,
    error_samples: Mutex<Vec<(String, u64)>>,
    latency: [Mutex<Latency>; SHARDS],
    setup: Mutex<Histogram>,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Seconds since [`epoch`] when taken; in a difference ([`Counters::since`]),
    /// the seconds between the two snapshots.
    pub at: f64,
    /// See [`Stats::sent_bytes`].
    pub sent_bytes: u64,
    /// See [`Stats::sent_frames`].
    pub sent_frames: u64,
    /// See [`Stats::sent_groups`].
    pub sent_groups: u64,
    /// See [`Stats::recv_bytes`].
    pub recv_bytes: u64,
    /// See [`Stats::recv_frames`].
    pub recv_frames: u64,
    /// See [`Stats::recv_groups`].
    pub recv_groups: u64,
    /// See [`Stats::groups_lost`].
    pub groups_lost: u64,
    /// See [`Stats::groups_late`].
    pub groups_late: u64,
    /// See [`Stats::groups_incomplete`].
    pub groups_incomplete: u64,
    /// See [`Stats::groups_skipped_local`].
    pub groups_skipped_local: u64,
    /// See [`Stats::backlog_frames`].
    pub backlog_frames: u64,
    /// See [`Stats::errors`].
    pub errors: u64,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            at: self.at - earlier.at,
            sent_bytes: self.sent_bytes - earlier.sent_bytes,
            sent_frames: self.sent_frames - earlier.sent_frames,
            sent_groups: self.sent_groups - earlier.sent_groups,
            recv_bytes: self.recv_bytes - earlier.recv_bytes,
            recv_frames: self.recv_frames - earlier.recv_frames,
            recv_groups: self.recv_groups - earlier.recv_groups,
            groups_lost: self.groups_lost.saturating_sub(earlier.groups_lost),
            groups_late: self.groups_late - earlier.groups_late,
            groups_incomplete: self.groups_incomplete - earlier.groups_incomplete,
            groups_skipped_local: self.groups_skipped_local - earlier.groups_skipped_local,
            backlog_frames: self.backlog_frames - earlier.backlog_frames,
            errors: self.errors - earlier.errors,
        }
    }

    /// Lost and incomplete groups as a share of all groups due, in percent.
    pub fn loss_pct(&self) -> f64 {
        let bad = self.groups_lost + self.groups_incomplete;
        let due = self.recv_groups + bad;
        if due == 0 {
            0.0
        } else {
            bad as f64 * 100.0 / due as f64
        }
    }
}

fn mbps(bytes: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / seconds / 1e6
    }
}

fn per_s(n: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 { 0.0 } else { n as f64 / seconds }
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|us| us as f64 / 1000.0)
}

impl Stats {
    /// A subscriber's shard of the latency histograms.
    pub fn record_latency(&self, shard: usize, us: u64) {
        let mut lat = self.latency[shard % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lat.interval.record(us);
        lat.window.record(us);
    }

    /// Records one connection's setup time (QUIC + TLS + moq handshake).
    pub fn record_setup(&self, us: u64) {
        self.setup.lock().unwrap_or_else(|e| e.into_inner()).record(us);
    }

    /// Counts an error and keeps its message (the first few kinds).
    pub fn error(&self, context: &str, err: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = format!("{context}: {err}");
        tracing::debug!("{text}");
        let mut samples = self.error_samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sample) = samples.iter_mut().find(|(t, _)| *t == text) {
            sample.1 += 1;
        } else if samples.len() < ERROR_SAMPLES {
            samples.push((text, 1));
        }
    }

    /// A snapshot of the counters now.
    pub fn counters(&self) -> Counters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counters {
            at: epoch().elapsed().as_secs_f64(),
            sent_bytes: get(&self.sent_bytes),
            sent_frames: get(&self.sent_frames),
            sent_groups: get(&self.sent_groups),
            recv_bytes: get(&self.recv_bytes),
            recv_frames: get(&self.recv_frames),
            recv_groups: get(&self.recv_groups),
            groups_lost: get(&self.groups_lost),
            groups_late: get(&self.groups_late),
            groups_incomplete: get(&self.groups_incomplete),
            groups_skipped_local: get(&self.groups_skipped_local),
            backlog_frames: get(&self.backlog_frames),
            errors: get(&self.errors),
        }
    }

    /// Takes (and empties) the latency of the last interval.
    fn take_interval(&self) -> Histogram {
        let mut out = Histogram::new();
        for shard in &self.latency {
            let mut lat = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.merge(&lat.interval);
            lat.interval.clear();
        }
        out
    }

    fn window(&self) -> Histogram {
        let mut out = Histogram::new();
        for shard in &self.latency {
            out.merge(&shard.lock().unwrap_or_else(|e| e.into_inner()).window);
        }
        out
    }

    /// Opens the measurement window: forgets the latency so far and returns
    /// the counters it starts from.
    pub fn open_window(&self) -> Counters {
        for shard in &self.latency {
            shard.lock().unwrap_or_else(|e| e.into_inner()).window.clear();
        }
        self.counters()
    }

    /// The live line's figures for the interval since `last`.
    pub fn interval(&self, last: &Counters, elapsed: f64) -> (Interval, Counters) {
        let now = self.counters();
        let d = now.since(last);
        let lat = self.take_interval();
        let interval = Interval {
            kind: "interval",
            t_s: elapsed,
            connections: self.connections_up.load(Ordering::Relaxed),
            send_mbps: mbps(d.sent_bytes, d.at),
            recv_mbps: mbps(d.recv_bytes, d.at),
            send_fps: per_s(d.sent_frames, d.at),
            recv_fps: per_s(d.recv_frames, d.at),
            groups_lost: d.groups_lost,
            loss_pct: d.loss_pct(),
            latency_p50_ms: ms(lat.quantile(0.5)),
            latency_p99_ms: ms(lat.quantile(0.99)),
            errors: d.errors,
        };
        (interval, now)
    }

    /// The run's summary over the window that opened at `start`.
    pub fn summary(&self, start: &Counters) -> Summary {
        let d = self.counters().since(start);
        let lat = self.window();
        let setup = self.setup.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let errors = self
            .error_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(text, n)| format!("{n}x {text}"))
            .collect();
        Summary {
            kind: "summary",
            duration_s: d.at,
            connections: self.connections_up.load(Ordering::Relaxed),
            connections_opened: self.connections_opened.load(Ordering::Relaxed),
            connections_churned: self.connections_churned.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            send_mbps: mbps(d.sent_bytes, d.at),
            recv_mbps: mbps(d.recv_bytes, d.at),
            send_fps: per_s(d.sent_frames, d.at),
            recv_fps: per_s(d.recv_frames, d.at),
            bytes_sent: d.sent_bytes,
            bytes_received: d.recv_bytes,
            frames_sent: d.sent_frames,
            frames_received: d.recv_frames,
            groups_sent: d.sent_groups,
            groups_received: d.recv_groups,
            groups_lost: d.groups_lost,
            groups_late: d.groups_late,
            groups_incomplete: d.groups_incomplete,
            groups_skipped_local: d.groups_skipped_local,
            backlog_frames: d.backlog_frames,
            loss_pct: d.loss_pct(),
            latency_samples: lat.count(),
            latency_p50_ms: ms(lat.quantile(0.5)),
            latency_p90_ms: ms(lat.quantile(0.9)),
            latency_p99_ms: ms(lat.quantile(0.99)),
            latency_max_ms: ms(lat.max()),
            latency_mean_ms: lat.mean().map(|us| us / 1000.0),
            setup_samples: setup.count(),
            setup_p50_ms: ms(setup.quantile(0.5)),
            setup_p99_ms: ms(setup.quantile(0.99)),
            setup_max_ms: ms(setup.max()),
            errors: d.errors,
            error_samples: errors,
            load_cpu_pct: None,
            relay: None,
            sender: None,
            scenario: String::new(),
            target: String::new(),
        }
    }
}

/// One live line, also one `--output` JSON line.
#[derive(Serialize, Debug, Clone)]
pub struct Interval {
    /// Always `"interval"`: tells these JSON lines from the summary.
    pub kind: &'static str,
    /// Seconds since the run started (the ramp included).
    pub t_s: f64,
    /// Connections up when the line was made.
    pub connections: u64,
    /// Publishers' payload rate over the interval, in Mbps (1e6 bits/s).
    pub send_mbps: f64,
    /// Subscribers' payload rate over the interval, all subscriptions
    /// together, in Mbps (1e6 bits/s).
    pub recv_mbps: f64,
    /// Frames per second written by publishers over the interval.
    pub send_fps: f64,
    /// Frames per second read by subscribers over the interval, all
    /// subscriptions together.
    pub recv_fps: f64,
    /// Groups lost in the interval (see [`Stats::groups_lost`]).
    pub groups_lost: u64,
    /// Lost and incomplete groups as a share of the groups due in the
    /// interval, in percent ([`Counters::loss_pct`]).
    pub loss_pct: f64,
    /// Median publish-to-receive latency of the interval's frames, in
    /// milliseconds (bucket midpoint); `None` if none arrived.
    pub latency_p50_ms: Option<f64>,
    /// 99th-percentile publish-to-receive latency of the interval's frames,
    /// in milliseconds (bucket midpoint); `None` if none arrived.
    pub latency_p99_ms: Option<f64>,
    /// Errors counted in the interval.
    pub errors: u64,
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lat = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        write!(
            f,
            "[{:6.1}s] conns {:4} | sent {:8.2} Mbps {:7.0} fps | recv {:8.2} Mbps {:7.0} fps | lost {} ({:.2}%) | \
             latency p50 {} ms p99 {} ms | errors {}",
            self.t_s,
            self.connections,
            self.send_mbps,
            self.send_fps,
            self.recv_mbps,
            self.recv_fps,
            self.groups_lost,
            self.loss_pct,
            lat(self.latency_p50_ms),
            lat(self.latency_p99_ms),
            self.errors
        )
    }
}

/// CPU and memory of the relay's process over the window.
#[derive(Serialize, Debug, Clone)]
pub struct ProcessFigures {
    /// The process measured (for the baseline's sender thread, its process).
    pub pid: u32,
    /// True when the relay runs inside moq-bench (`--local-relay`): the
    /// CPU and memory then include the load generator's own.
    pub shared_with_load: bool,
    /// CPU time (user + system) used over the window, in seconds.
    pub cpu_s: f64,
    /// CPU-seconds per GB (1e9 bytes) of payload delivered to subscribers.
    pub cpu_s_per_gb: Option<f64>,
    /// Share of one core, in percent, over the window.
    pub cpu_pct: f64,
    /// RSS before the first connection opened (the idle reading), in bytes.
    pub rss_start_bytes: u64,
    /// RSS at the window's end, in bytes.
    pub rss_end_bytes: u64,
    /// (RSS at the end - RSS before the first connection) / connections.
    pub rss_per_connection_bytes: Option<f64>,
}

/// The final JSON summary.
#[derive(Serialize, Debug, Clone)]
pub struct Summary {
    /// Always `"summary"`: tells this JSON line from the interval lines.
    pub kind: &'static str,
    /// The flags of the run's shape.
    pub scenario: String,
    /// What was measured: the relay URL, or `baseline`.
    pub target: String,
    /// Length of the measurement window, in seconds (as measured, so a little
    /// over `--duration`).
    pub duration_s: f64,
    /// Connections up at the end.
    pub connections: u64,
    /// Connections established over the whole run (ramp and churn
    /// replacements included), not only in the window.
    pub connections_opened: u64,
    /// Connections closed at the end of their `--lifetime` (churn) over the
    /// whole run.
    pub connections_churned: u64,
    /// Track subscriptions made over the whole run, re-subscriptions included
    /// (0 for the baseline, which has no tracks).
    pub subscriptions: u64,
    /// Publishers' payload rate over the window, in Mbps (1e6 bits/s),
    /// counting each frame once.
    pub send_mbps: f64,
    /// Subscribers' payload rate over the window, all subscriptions together,
    /// in Mbps (1e6 bits/s): the relay's delivered goodput.
    pub recv_mbps: f64,
    /// Frames per second written by publishers over the window.
    pub send_fps: f64,
    /// Frames per second read by subscribers over the window, all
    /// subscriptions together.
    pub recv_fps: f64,
    /// Payload bytes written by publishers in the window, each frame once.
    pub bytes_sent: u64,
    /// Payload bytes read by subscribers in the window, all subscriptions
    /// together.
    pub bytes_received: u64,
    /// Frames written by publishers in the window.
    pub frames_sent: u64,
    /// Frames read by subscribers in the window, all subscriptions together.
    pub frames_received: u64,
    /// Groups started by publishers in the window.
    pub groups_sent: u64,
    /// Groups read to their end by subscribers in the window, all
    /// subscriptions together.
    pub groups_received: u64,
    /// Groups that never arrived (sequence gaps) in the window, summed over
    /// subscriptions; late arrivals are taken back out.
    pub groups_lost: u64,
    /// Groups that arrived after a newer one, in the window.
    pub groups_late: u64,
    /// Groups whose stream ended with an error part-way, in the window.
    pub groups_incomplete: u64,
    /// Groups the subscriber's own cache evicted unread, in the window;
    /// already part of `groups_lost`.
    pub groups_skipped_local: u64,
    /// Frames sent before their subscription began, in the window: counted
    /// as received, left out of the latency.
    pub backlog_frames: u64,
    /// Lost and incomplete groups as a share of the groups due in the
    /// window, in percent ([`Counters::loss_pct`]).
    pub loss_pct: f64,
    /// Frames whose latency was measured in the window (backlog frames left
    /// out).
    pub latency_samples: u64,
    /// Median publish-to-receive latency over the window, in milliseconds
    /// (bucket midpoint); `None` if no frame was measured.
    pub latency_p50_ms: Option<f64>,
    /// 90th-percentile publish-to-receive latency over the window, in
    /// milliseconds (bucket midpoint); `None` if no frame was measured.
    pub latency_p90_ms: Option<f64>,
    /// 99th-percentile publish-to-receive latency over the window, in
    /// milliseconds (bucket midpoint); `None` if no frame was measured.
    pub latency_p99_ms: Option<f64>,
    /// Largest publish-to-receive latency over the window, in milliseconds
    /// (exact); `None` if no frame was measured.
    pub latency_max_ms: Option<f64>,
    /// Mean publish-to-receive latency over the window, in milliseconds
    /// (exact); `None` if no frame was measured.
    pub latency_mean_ms: Option<f64>,
    /// Connection setups timed over the whole run (one per established
    /// connection).
    pub setup_samples: u64,
    /// Median connection setup time (connect to session established: QUIC,
    /// TLS and, except for the baseline, the MoQ handshake) over the whole
    /// run, in milliseconds (bucket midpoint); `None` if no connection.
    pub setup_p50_ms: Option<f64>,
    /// 99th-percentile connection setup time over the whole run, in
    /// milliseconds (bucket midpoint); `None` if no connection.
    pub setup_p99_ms: Option<f64>,
    /// Longest connection setup time over the whole run, in milliseconds
    /// (exact); `None` if no connection.
    pub setup_max_ms: Option<f64>,
    /// Errors counted in the window.
    pub errors: u64,
    /// Up to 16 distinct error messages of the whole run, each as
    /// `"<count>x <context>: <error>"`.
    pub error_samples: Vec<String>,
    /// CPU of the moq-bench process itself over the window, in percent of
    /// one core: near the machine's cores x 100, the load generator is the
    /// bottleneck, not the relay.
    pub load_cpu_pct: Option<f64>,
    /// The relay process (`--relay-pid` / `--local-relay`).
    pub relay: Option<ProcessFigures>,
    /// The baseline's sender thread (`moq-bench baseline`).
    pub sender: Option<ProcessFigures>,
}

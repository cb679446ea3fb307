//! The relay's counters, served as Prometheus text on `GET /metrics`.
//!
//! Plain atomics bumped at session and announcement boundaries (never per
//! frame); byte counts come from QUIC's own statistics (TCP counts for
//! WebSocket sessions) when scraped.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use moq_lite::StatsSnapshot;
use moq_lite::endpoint::Transport;

/// Counters shared by every session of a relay.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions accepted since start.
    pub sessions_total: AtomicU64,
    /// Sessions open now.
    pub sessions_active: AtomicU64,
    /// Sessions refused (handshake failed, unauthorized, over the limit).
    pub sessions_refused: AtomicU64,
    /// Sessions accepted since start, by transport: raw QUIC,
    /// WebTransport, WebSocket.
    pub sessions_by_transport: [AtomicU64; 3],
    /// Broadcasts announced now.
    pub broadcasts_active: AtomicU64,
    /// Bytes received and sent by sessions that have ended.
    pub closed_bytes_in: AtomicU64,
    /// See `closed_bytes_in`.
    pub closed_bytes_out: AtomicU64,
    /// What sessions that have ended carried.
    pub closed_sessions: Mutex<StatsSnapshot>,
}

/// Live figures that are not counters: summed when scraped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Live {
    /// Bytes received by open sessions.
    pub bytes_in: u64,
    /// Bytes sent by open sessions.
    pub bytes_out: u64,
    /// What open sessions carried so far.
    pub sessions: StatsSnapshot,
    /// What the caches of the active broadcasts hold.
    pub cache: moq_lite::model::CacheStats,
}

impl Metrics {
    /// Counts an accepted session under its transport.
    pub fn count_transport(&self, transport: Transport) {
        let index = match transport {
            Transport::Quic => 0,
            Transport::WebTransport => 1,
            Transport::WebSocket => 2,
        };
        self.sessions_by_transport[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, live: Live) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "moq_relay_sessions_total",
            "counter",
            "Sessions accepted.",
            get(&self.sessions_total),
        );
        let name = "moq_relay_sessions_by_transport_total";
        let _ = writeln!(
            out,
            "# HELP {name} Sessions accepted, by transport.\n# TYPE {name} counter"
        );
        for (label, count) in ["quic", "webtransport", "websocket"]
            .iter()
            .zip(&self.sessions_by_transport)
        {
            let _ = writeln!(out, "{name}{{transport=\"{label}\"}} {}", get(count));
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "moq_relay_sessions_active",
            "gauge",
            "Sessions open now.",
            get(&self.sessions_active),
        );
        metric(
            "moq_relay_sessions_refused_total",
            "counter",
            "Sessions refused.",
            get(&self.sessions_refused),
        );
        metric(
            "moq_relay_broadcasts_active",
            "gauge",
            "Broadcasts announced now.",
            get(&self.broadcasts_active),
        );
        metric(
            "moq_relay_bytes_in_total",
            "counter",
            "Bytes received: UDP payload for QUIC sessions, TCP for WebSocket ones.",
            get(&self.closed_bytes_in) + live.bytes_in,
        );
        metric(
            "moq_relay_bytes_out_total",
            "counter",
            "Bytes sent: UDP payload for QUIC sessions, TCP for WebSocket ones.",
            get(&self.closed_bytes_out) + live.bytes_out,
        );
        let mut carried = *self.closed_sessions.lock().unwrap_or_else(|e| e.into_inner());
        let subscriptions = live.sessions.subscriptions;
        carried += live.sessions;
        let counters = [
            (
                "moq_relay_frames_in_total",
                "Frames received from publishers.",
                carried.frames_in,
            ),
            (
                "moq_relay_frames_out_total",
                "Frames sent to subscribers.",
                carried.frames_out,
            ),
            (
                "moq_relay_payload_bytes_in_total",
                "Payload bytes received.",
                carried.bytes_in,
            ),
            (
                "moq_relay_payload_bytes_out_total",
                "Payload bytes sent.",
                carried.bytes_out,
            ),
            ("moq_relay_groups_in_total", "Groups received.", carried.groups_in),
            ("moq_relay_groups_out_total", "Groups sent.", carried.groups_out),
            (
                "moq_relay_groups_dropped_total",
                "Groups dropped: past a subscriber's max latency or evicted before sending.",
                carried.groups_dropped,
            ),
        ];
        for (name, help, value) in counters {
            metric(name, "counter", help, value);
        }
        metric(
            "moq_relay_subscriptions_active",
            "gauge",
            "Subscriptions held by sessions now.",
            subscriptions,
        );
        metric(
            "moq_relay_cache_bytes",
            "gauge",
            "Payload bytes held by track caches.",
            live.cache.bytes,
        );
        metric(
            "moq_relay_cache_groups",
            "gauge",
            "Groups held by track caches.",
            live.cache.groups as u64,
        );
        out
    }
}

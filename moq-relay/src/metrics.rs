//! The relay's counters, served as Prometheus text on `GET /metrics`.
//!
//! Plain atomics bumped at session and announcement boundaries (never per
//! frame); byte counts come from QUIC's own statistics when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every session of a relay.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions accepted since start.
    pub sessions_total: AtomicU64,
    /// Sessions open now.
    pub sessions_active: AtomicU64,
    /// Sessions refused (handshake failed, unauthorized, over the limit).
    pub sessions_refused: AtomicU64,
    /// Broadcasts announced now.
    pub broadcasts_active: AtomicU64,
    /// Bytes received and sent by sessions that have ended.
    pub closed_bytes_in: AtomicU64,
    /// See `closed_bytes_in`.
    pub closed_bytes_out: AtomicU64,
}

/// Live figures that are not counters: summed when scraped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Live {
    /// Bytes received by open sessions.
    pub bytes_in: u64,
    /// Bytes sent by open sessions.
    pub bytes_out: u64,
}

impl Metrics {
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
            "UDP payload bytes received.",
            get(&self.closed_bytes_in) + live.bytes_in,
        );
        metric(
            "moq_relay_bytes_out_total",
            "counter",
            "UDP payload bytes sent.",
            get(&self.closed_bytes_out) + live.bytes_out,
        );
        out
    }
}

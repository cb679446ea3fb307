//! QUIC transport settings tuned for live media.
//!
//! moq-lite maps every group to its own stream, so a connection carries many
//! short-lived streams at once, each holding a little data. The defaults
//! allow plenty of concurrent streams but keep the flow-control windows (the
//! memory a peer may make us buffer) modest, so that a relay serving many
//! connections stays small. The stream limits start small too and grow
//! with use, up to the maximums ([`super::QuicSession`]).

use std::{sync::Arc, time::Duration};

use quinn::{IdleTimeout, VarInt};

/// QUIC transport settings shared by [`super::ServerConfig`] and
/// [`super::ClientConfig`].
///
/// | field | default | why |
/// |-------|---------|-----|
/// | `keep_alive` | 4 s | keeps NAT bindings open and detects a dead peer well inside the idle timeout |
/// | `idle_timeout` | 10 s | a live viewer notices a stall after a few seconds; two lost keep-alives still fit |
/// | `max_bidi_streams` | 128 | bidi streams are control requests (subscribe, announce): one per track subscribed |
/// | `max_uni_streams` | 256 | one uni stream per group in flight: live tracks have one or two each |
/// | `initial_bidi_streams` | 8 | where the bidi limit starts: quinn keeps state for every stream the peer may open, so granting the maximums up front was most of an idle connection's memory (128/256 ~17 KiB; 16/16 ~1.6 KiB, 8/8 ~0.8 KiB). The limit doubles once half of it is in use ([`super::QuicSession`]). Not lower: a WebTransport peer's HTTP/3 streams (the CONNECT stream; up to three uni control streams) count against it unseen, and half the limit must stay reachable by the session's own streams |
/// | `initial_uni_streams` | 8 | the same for uni streams: an idle session needs one or two; a burst of groups raises it one doubling per round trip (8 to 256 in five) |
/// | `stream_receive_window` | 1 MiB | a keyframe group fits in one round trip; ~80 Mbit/s per stream at 100 ms RTT |
/// | `receive_window` | 4 MiB | bounds the unread data buffered per connection; ~330 Mbit/s at 100 ms RTT |
/// | `send_window` | 4 MiB | bounds the unacknowledged data buffered per connection, same reasoning |
///
/// Worst-case flow-control memory per connection is therefore about
/// `receive_window + send_window` = 8 MiB, against quinn's default of an
/// unbounded connection receive window and a 10 MiB send window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuicConfig {
    /// Interval between keep-alive packets when nothing else is sent; `None`
    /// sends none.
    pub keep_alive: Option<Duration>,
    /// Close the connection after this long without hearing from the peer;
    /// `None` never times out. The peers use the smaller of their two values.
    pub idle_timeout: Option<Duration>,
    /// How many bidirectional streams the peer may have open at once.
    pub max_bidi_streams: u32,
    /// How many unidirectional streams the peer may have open at once.
    pub max_uni_streams: u32,
    /// How many bidirectional streams the peer may have open at first; the
    /// limit grows towards [`Self::max_bidi_streams`] as it uses them.
    pub initial_bidi_streams: u32,
    /// How many unidirectional streams the peer may have open at first;
    /// the limit grows towards [`Self::max_uni_streams`] as it uses them.
    pub initial_uni_streams: u32,
    /// Bytes the peer may send on one stream ahead of what we have read.
    pub stream_receive_window: u32,
    /// Bytes the peer may send on all streams together ahead of what we have
    /// read.
    pub receive_window: u32,
    /// Bytes we buffer for sending, unacknowledged, on all streams together.
    pub send_window: u64,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(4)),
            idle_timeout: Some(Duration::from_secs(10)),
            max_bidi_streams: 128,
            max_uni_streams: 256,
            initial_bidi_streams: 8,
            initial_uni_streams: 8,
            stream_receive_window: 1024 * 1024,
            receive_window: 4 * 1024 * 1024,
            send_window: 4 * 1024 * 1024,
        }
    }
}

impl QuicConfig {
    /// Build the quinn transport configuration.
    ///
    /// It grants the peer the initial stream limits; only a
    /// [`super::QuicSession`] raises them, so a connection made with it and
    /// used bare stays at those.
    ///
    /// An idle timeout too large for QUIC (over 2^62 ms) is clamped to the
    /// largest one allowed.
    pub fn transport_config(&self) -> quinn::TransportConfig {
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(self.keep_alive);
        transport.max_idle_timeout(
            self.idle_timeout
                .map(|timeout| IdleTimeout::try_from(timeout).unwrap_or_else(|_| VarInt::MAX.into())),
        );
        // Only the initial limits: the session raises them with use.
        transport.max_concurrent_bidi_streams(self.initial_bidi_streams.min(self.max_bidi_streams).into());
        transport.max_concurrent_uni_streams(self.initial_uni_streams.min(self.max_uni_streams).into());
        transport.stream_receive_window(self.stream_receive_window.into());
        transport.receive_window(self.receive_window.into());
        transport.send_window(self.send_window);
        transport
    }

    /// [`Self::transport_config`], shared, as quinn's configs want it.
    pub(crate) fn transport(&self) -> Arc<quinn::TransportConfig> {
        Arc::new(self.transport_config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_idle_timeout_is_clamped() {
        let config = QuicConfig {
            idle_timeout: Some(Duration::MAX),
            ..Default::default()
        };
        let _ = config.transport_config();
    }
}

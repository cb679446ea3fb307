//! Which transport a session runs over.

/// How a session reaches its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Raw QUIC: the TLS ALPN is the protocol, streams are QUIC streams.
    Quic,
    /// WebTransport over HTTP/3 (TLS ALPN `h3`), as browsers speak it.
    WebTransport,
    /// QMux over a WebSocket on TCP ([`super::websocket`]), for clients
    /// without QUIC.
    WebSocket,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Quic => "QUIC",
            Self::WebTransport => "WebTransport",
            Self::WebSocket => "WebSocket",
        })
    }
}

//! Network endpoints: QUIC and WebTransport servers and clients.
//!
//! One UDP port serves both transports. The TLS ALPN decides which one a
//! connection speaks:
//!
//! - `h3`: WebTransport. The client lists the protocols it speaks in the CONNECT
//!   header `wt-available-protocols`; the server answers `wt-protocol` with the
//!   first of them it supports. If neither names one, the protocol is `None`
//!   and the session code negotiates with the SETUP exchange instead.
//! - anything else: raw QUIC, where the ALPN token *is* the protocol
//!   (`moq-lite-04`, `moq-lite-03`, `moql`, ...). The server picks.
//!
//! Client URLs:
//!
//! | URL | transport | default port |
//! |-----|-----------|--------------|
//! | `https://host:port/path` | WebTransport | 443 |
//! | `moqt://host:port/path`, `moql://host:port/path` | raw QUIC | 4443 |
//! | `http://host:port/path` | WebTransport, pinning the certificate hash served at `http://host:port/certificate.sha256` (development only) | 4443 |
//! | `wss://host:port/path`, `ws://host:port/path` | WebSocket (QMux) over TCP, see [`websocket`] | 443 / 80 |
//!
//! The URL path is the session root. Both sides report it exactly as
//! [`url::Url::path`] spells it: percent-encoded and starting with `/`
//! (`https://relay/room/a` gives `/room/a`). A raw QUIC server has no URL and
//! reports `None`.
//!
//! All TLS uses rustls with the ring provider, TLS 1.3 only (QUIC requires it).

mod cert;
mod client;
mod error;
mod fetch;
mod quic_config;
mod quic_session;
mod server;
mod sni;
mod stream_limit;
mod transport;
mod verify;
pub mod websocket;

pub use cert::{Certificate, fingerprint, fingerprint_hex, generate_self_signed, parse_fingerprint};
pub use client::{Client, ClientConfig, ClientTls, Connected};
pub use error::{EndpointError, Result};
pub use quic_config::QuicConfig;
pub use quic_session::{QuicRecvStream, QuicSendStream, QuicSession};
pub use server::{Accepted, Incoming, PemFiles, Server, ServerConfig, ServerTls};
pub use stream_limit::StreamLimit;
pub use transport::Transport;

/// The QUIC and WebTransport crates under these helpers, for callers that
/// need connection statistics or the raw session type.
pub use web_transport_quinn::{self, quinn};

/// The protocols moq-lite speaks, most preferred first.
///
/// This is the default of [`ClientConfig::protocols`] and
/// [`ServerConfig::protocols`]. Other crates (the IETF draft implementation)
/// extend the list with their own strings (`moqt-17`, `moqt-16`, ...).
pub const LITE_PROTOCOLS: &[&str] = &["moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03", "moql"];

/// [`LITE_PROTOCOLS`] as owned strings, ready for a config field.
pub fn default_protocols() -> Vec<String> {
    LITE_PROTOCOLS.iter().map(|p| p.to_string()).collect()
}

/// The TLS ALPN token of HTTP/3, and so of WebTransport.
pub const ALPN_H3: &str = web_transport_quinn::ALPN;

/// The ring crypto provider every endpoint uses.
///
/// Passed explicitly instead of relying on a process-wide default, which may be
/// unset or set to another backend by the application.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

//! The error type of the endpoint helpers.
//!
//! Messages are written for the person running the program: where a failure
//! has a usual cause, the message says what to try.

use std::{net::SocketAddr, path::PathBuf};

/// A `Result` whose error defaults to [`EndpointError`].
pub type Result<T, E = EndpointError> = std::result::Result<T, E>;

/// Why binding, connecting or accepting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The URL's scheme is not one the client speaks.
    #[error(
        "unsupported URL scheme `{0}`: use https:// (WebTransport), moqt:// or moql:// (raw QUIC), \
		 or http:// (development: pins the certificate hash served at /certificate.sha256)"
    )]
    UnsupportedScheme(String),

    /// The URL has no host.
    #[error("URL `{0}` has no host: expected scheme://host:port/path")]
    MissingHost(String),

    /// The host name did not resolve to an address the local socket can reach.
    #[error("could not resolve `{host}`: {reason}; check the host name, or use an IP address")]
    Resolve {
        /// The host name from the URL.
        host: String,
        /// What went wrong.
        reason: String,
    },

    /// Binding the local UDP socket failed.
    #[error("could not bind UDP {addr}: {source}; is another process using the port?")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Reading a certificate, key or root file failed.
    #[error("could not read `{path}`: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The server has no certificate to present.
    #[error(
        "no TLS certificate configured: set tls.pem to PEM chain/key files, or tls.generate to host \
		 names (e.g. localhost) for a self-signed development certificate"
    )]
    NoCertificate,

    /// Generating a self-signed certificate failed.
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),

    /// A TLS configuration (certificate, key, roots) was rejected by rustls.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),

    /// A certificate fingerprint was not 32 bytes of hex.
    #[error("invalid certificate fingerprint `{0}`: expected 64 hex digits (SHA-256), colons allowed")]
    InvalidFingerprint(String),

    /// Fetching `/certificate.sha256` for an `http://` URL failed.
    #[error(
        "could not fetch the certificate fingerprint from {url}: {reason}; http:// URLs are for a \
		 development relay serving /certificate.sha256 over HTTP on the same port (TCP)"
    )]
    Fingerprint {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// A raw QUIC URL with no protocols configured: QUIC needs an ALPN.
    #[error("raw QUIC needs at least one protocol (TLS ALPN); configure protocols or use https://")]
    NoProtocols,

    /// quinn refused to start the connection (bad server name, bad config).
    #[error("could not start the QUIC connection: {0}")]
    Connect(#[from] quinn::ConnectError),

    /// The TLS handshake failed: usually an untrusted certificate.
    #[error(
        "TLS handshake failed: {0}; for a self-signed development relay connect with an http:// URL \
		 (pins the hash served at /certificate.sha256), pin its fingerprint, add its certificate \
		 as a root, or pass --tls-disable-verify"
    )]
    Tls(String),

    /// The peers have no protocol in common.
    #[error(
        "the peer supports none of the offered protocols {offered:?}; is it a MoQ endpoint of a compatible version?"
    )]
    NoCommonProtocol {
        /// What this side (the client), or the client (on the server), offered.
        offered: Vec<String>,
    },

    /// The QUIC connection failed or closed.
    #[error("QUIC connection failed: {0}; is the server running and reachable over UDP?")]
    Connection(quinn::ConnectionError),

    /// The WebTransport handshake failed on the client.
    #[error("WebTransport handshake failed: {0}")]
    WebTransport(#[from] web_transport_quinn::ClientError),

    /// The server refused the WebTransport session with an HTTP status.
    #[error(
        "the server rejected the WebTransport session with status {0}; check the URL path and \
		 that the server supports one of the offered protocols"
    )]
    Rejected(web_transport_quinn::http::StatusCode),

    /// The WebTransport handshake failed on the server.
    #[error("WebTransport handshake failed: {0}")]
    WebTransportServer(#[from] web_transport_quinn::ServerError),

    /// The WebSocket connection or its handshake failed.
    #[error(
        "WebSocket connection failed: {0}; is the server's TCP port reachable, and does it accept \
		 WebSocket (QMux) on that path?"
    )]
    WebSocket(String),

    /// The handshake took too long.
    #[error("the handshake timed out")]
    Timeout,
}

impl From<quinn::ConnectionError> for EndpointError {
    fn from(err: quinn::ConnectionError) -> Self {
        // TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100 + alert.
        const NO_APPLICATION_PROTOCOL: u64 = 0x100 + 120;
        let crypto = |code: u64| (0x100..0x200).contains(&code);

        match &err {
            quinn::ConnectionError::TransportError(e) => match u64::from(e.code) {
                NO_APPLICATION_PROTOCOL => Self::NoCommonProtocol { offered: Vec::new() },
                code if crypto(code) => Self::Tls(e.reason.clone()),
                _ => Self::Connection(err),
            },
            quinn::ConnectionError::ConnectionClosed(close) => match u64::from(close.error_code) {
                NO_APPLICATION_PROTOCOL => Self::NoCommonProtocol { offered: Vec::new() },
                code if crypto(code) => Self::Tls(format!("the peer aborted: {close}")),
                _ => Self::Connection(err),
            },
            _ => Self::Connection(err),
        }
    }
}

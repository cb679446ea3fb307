//! The client: connects to a URL over raw QUIC or WebTransport.
//!
//! ```no_run
//! use moq_lite::endpoint::{Client, ClientConfig};
//! # async fn run() -> moq_lite::endpoint::Result<()> {
//! let client = Client::new(ClientConfig::default())?;
//! let url = url::Url::parse("https://relay.example.com/room").unwrap();
//! let connected = client.connect(&url).await?;
//! println!("{} {:?} {}", connected.transport, connected.protocol, connected.path);
//! # Ok(())
//! # }
//! ```

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use rustls::{RootCertStore, client::danger::ServerCertVerifier, crypto::CryptoProvider};
use url::{Host, Url};
use web_transport_quinn::{
    ClientError, ConnectError, Session,
    proto::{ConnectError::WrongStatus, ConnectRequest},
};

use super::{
    ALPN_H3, EndpointError, QuicConfig, QuicSession, Result, Transport,
    cert::load_certs,
    default_protocols,
    fetch::fetch_fingerprints,
    parse_fingerprint, provider,
    server::bind_with_fallback,
    verify::{NoVerifier, PinnedVerifier},
    websocket::WebSocketConnected,
};

/// How a [`Client`] verifies server certificates.
///
/// The first that applies wins: `disable_verify`, then `fingerprints` (only
/// the pinned certificates are accepted; roots are ignored), then the roots
/// (`roots` files plus, if `system_roots`, the platform's store).
/// `http://` URLs always pin the fingerprint the server publishes, unless
/// `disable_verify` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    /// Accept any certificate. Development only: anyone on the path can
    /// impersonate the server. Default false.
    pub disable_verify: bool,
    /// PEM files of extra root certificates to trust.
    pub roots: Vec<PathBuf>,
    /// Trust the platform's root certificates. Default true.
    pub system_roots: bool,
    /// SHA-256 fingerprints (hex, colons allowed) of the only end-entity
    /// certificates to accept, as browsers' `serverCertificateHashes`.
    pub fingerprints: Vec<String>,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self {
            disable_verify: false,
            roots: Vec::new(),
            system_roots: true,
            fingerprints: Vec::new(),
        }
    }
}

/// How to run a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The local UDP address. Default `[::]:0` (any port, dual-stack); if
    /// IPv6 is unavailable the unspecified IPv6 address falls back to
    /// `0.0.0.0` on the same port.
    pub bind: SocketAddr,
    /// Certificate verification.
    pub tls: ClientTls,
    /// QUIC transport settings.
    pub quic: QuicConfig,
    /// The protocols to offer, preferred first: the TLS ALPN tokens for raw
    /// QUIC, `wt-available-protocols` for WebTransport (where empty offers
    /// none, leaving negotiation to the SETUP exchange). Default
    /// [`super::LITE_PROTOCOLS`].
    pub protocols: Vec<String>,
    /// How long one [`Client::connect`] may take, everything included
    /// (name lookup, fingerprint fetch, QUIC and WebTransport handshakes).
    /// Default 10 s.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0u16; 8], 0)),
            tls: ClientTls::default(),
            quic: QuicConfig::default(),
            protocols: default_protocols(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Certificate verification, resolved from [`ClientTls`].
#[derive(Clone, Debug)]
enum Verify {
    Roots(Arc<RootCertStore>),
    Custom(Arc<dyn ServerCertVerifier>),
}

/// A client endpoint: one UDP socket, any number of connections.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    provider: Arc<CryptoProvider>,
    transport: Arc<quinn::TransportConfig>,
    /// The stream limits every session starts with and grows to.
    quic: QuicConfig,
    protocols: Vec<String>,
    disable_verify: bool,
    timeout: Duration,
    /// For `moqt://` and `moql://`: ALPN = the protocols.
    raw: quinn::ClientConfig,
    /// For `https://`: ALPN `h3`.
    webtransport: quinn::ClientConfig,
    /// Certificate verification, for `wss://` (TLS over TCP).
    verify: Verify,
}

/// An established session, as the client sees it.
#[derive(Debug)]
pub struct Connected {
    /// The session; for raw QUIC a [`Session::raw`] wrapper, so that both
    /// transports present the same `web_transport_trait::Session`, whose
    /// stream limits grow with use.
    pub session: QuicSession,
    /// The negotiated protocol: the ALPN for raw QUIC, the server's
    /// `wt-protocol` for WebTransport; `None` if none was negotiated (use the
    /// SETUP exchange).
    pub protocol: Option<String>,
    /// The URL path, the session root, as [`url::Url::path`] gives it
    /// (percent-encoded, starting with `/`).
    pub path: String,
    /// The server address connected to.
    pub remote: SocketAddr,
    /// Which transport the session uses.
    pub transport: Transport,
}

impl Client {
    /// Load the trusted roots or pins and bind the UDP socket.
    ///
    /// Must be called within a tokio runtime (the endpoint spawns its I/O
    /// driver).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let provider = provider();
        let tls = &config.tls;

        let verify = if tls.disable_verify {
            Verify::Custom(Arc::new(NoVerifier(provider.clone())))
        } else if !tls.fingerprints.is_empty() {
            let pins = tls
                .fingerprints
                .iter()
                .map(|hex| parse_fingerprint(hex))
                .collect::<Result<Vec<_>>>()?;
            Verify::Custom(Arc::new(PinnedVerifier::new(provider.clone(), pins)))
        } else {
            Verify::Roots(Arc::new(roots(tls)?))
        };

        let endpoint = bind_with_fallback(config.bind, quinn::Endpoint::client)?;

        let transport = config.quic.transport();
        let alpn = config.protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        let raw = quic_config(&provider, &transport, &verify, alpn)?;
        let h3 = vec![ALPN_H3.as_bytes().to_vec()];
        let webtransport = quic_config(&provider, &transport, &verify, h3)?;

        Ok(Self {
            endpoint,
            provider,
            transport,
            quic: config.quic,
            protocols: config.protocols,
            disable_verify: tls.disable_verify,
            timeout: config.timeout,
            raw,
            webtransport,
            verify,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The underlying quinn endpoint, for what this type does not cover.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Waits, at most `timeout`, until every connection of this endpoint has
    /// closed and its peer has been told, then closes whatever is left
    /// (application code 0) and gives that a moment too.
    ///
    /// Call it before the process exits, after closing the sessions: a
    /// close is carried out by quinn's background driver (and a WebTransport
    /// close first writes its CLOSE_WEBTRANSPORT_SESSION capsule), which an
    /// exiting process never runs, so the peer (a relay) would only notice
    /// at its idle timeout and keep announcing what this client published
    /// until then.
    pub async fn shutdown(&self, timeout: Duration) {
        if tokio::time::timeout(timeout, self.endpoint.wait_idle())
            .await
            .is_ok()
        {
            return;
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"closed");
        let _ = tokio::time::timeout(Duration::from_millis(100), self.endpoint.wait_idle()).await;
    }

    /// Connect to `url`, within [`ClientConfig::timeout`].
    ///
    /// - `https://host[:port]/path` (port 443 if absent): WebTransport,
    ///   offering the protocols in `wt-available-protocols`.
    /// - `moqt://` or `moql://host[:port]/path` (port 4443 if absent): raw
    ///   QUIC, offering the protocols as TLS ALPN tokens.
    /// - `http://host[:port]/path` (port 4443 if absent, and so also for an
    ///   explicit `:80`, which URL normalization drops): development mode.
    ///   Fetches `http://host:port/certificate.sha256` over TCP, then
    ///   connects as `https://` accepting only a certificate with that
    ///   SHA-256.
    ///
    /// Host names are resolved with the system resolver; the first address
    /// the local socket can reach is used.
    pub async fn connect(&self, url: &Url) -> Result<Connected> {
        tokio::time::timeout(self.timeout, self.connect_inner(url))
            .await
            .map_err(|_| EndpointError::Timeout)?
    }

    async fn connect_inner(&self, url: &Url) -> Result<Connected> {
        let scheme = url.scheme();
        let (transport, dev) = match scheme {
            "https" => (Transport::WebTransport, false),
            "http" => (Transport::WebTransport, true),
            "moqt" | "moql" => (Transport::Quic, false),
            other => return Err(EndpointError::UnsupportedScheme(other.to_string())),
        };

        let host = host_of(url)?;
        let port = url.port().unwrap_or(if scheme == "https" { 443 } else { 4443 });
        let remote = self.resolve(&host, port).await?;
        let path = url.path().to_string();

        if transport == Transport::Quic {
            if self.protocols.is_empty() {
                return Err(EndpointError::NoProtocols);
            }
            let conn = self
                .endpoint
                .connect_with(self.raw.clone(), remote, &host)?
                .await
                .map_err(|err| self.offered(err.into()))?;
            let session = Session::raw(conn);
            let protocol = session.protocol().map(str::to_string);
            tracing::debug!(%url, %remote, ?protocol, "connected raw QUIC");
            return Ok(Connected {
                session: QuicSession::new(session, &self.quic),
                protocol,
                path,
                remote,
                transport,
            });
        }

        let config = if dev && !self.disable_verify {
            let authority = match url.host() {
                Some(Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
                _ => format!("{host}:{port}"),
            };
            let pins = fetch_fingerprints(remote, &authority, self.timeout).await?;
            let verify = Verify::Custom(Arc::new(PinnedVerifier::new(self.provider.clone(), pins)));
            let h3 = vec![ALPN_H3.as_bytes().to_vec()];
            quic_config(&self.provider, &self.transport, &verify, h3)?
        } else {
            self.webtransport.clone()
        };

        let mut target = url.clone();
        if dev {
            // http -> https between two special schemes always succeeds.
            let _ = target.set_scheme("https");
        }
        let _ = target.set_port(Some(port));

        let conn = self.endpoint.connect_with(config, remote, &host)?.await?;
        let request = ConnectRequest::new(target).with_protocols(self.protocols.clone());
        let session = Session::connect(conn, request).await.map_err(client_error)?;
        let protocol = session.protocol().map(str::to_string);
        tracing::debug!(%url, %remote, ?protocol, "connected WebTransport");

        Ok(Connected {
            session: QuicSession::new(session, &self.quic),
            protocol,
            path,
            remote,
            transport,
        })
    }

    /// Connect to `url` over WebSocket (QMux on TCP, see
    /// [`super::websocket`]), within [`ClientConfig::timeout`], offering the
    /// protocols as `qmux-NN.<protocol>` subprotocols.
    ///
    /// - `wss://host[:port]/path` (port 443 if absent): TLS, verified as
    ///   for WebTransport (roots, pins or `disable_verify`).
    /// - `ws://host[:port]/path` (port 80 if absent): plain TCP.
    /// - `https://` and `http://` URLs dial the same host, port (443 /
    ///   4443 if absent) and path as `wss://` / `ws://`: the fallback when
    ///   QUIC does not get through. An `http://` relay serves both on its
    ///   TCP port.
    pub async fn connect_websocket(&self, url: &Url) -> Result<WebSocketConnected> {
        tokio::time::timeout(self.timeout, self.connect_websocket_inner(url))
            .await
            .map_err(|_| EndpointError::Timeout)?
    }

    async fn connect_websocket_inner(&self, url: &Url) -> Result<WebSocketConnected> {
        let (secure, default_port) = match url.scheme() {
            "wss" => (true, 443),
            "ws" => (false, 80),
            "https" => (true, 443),
            "http" => (false, 4443),
            other => return Err(EndpointError::UnsupportedScheme(other.to_string())),
        };
        let host = host_of(url)?;
        let port = url.port().unwrap_or(default_port);
        let remote = self.resolve(&host, port).await?;
        let mut target = url.clone();
        // Between special schemes this always succeeds.
        let _ = target.set_scheme(if secure { "wss" } else { "ws" });
        let _ = target.set_port(Some(port));
        let tls = if secure {
            let mut config = tls_config(&self.provider, &self.verify, false)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|err| EndpointError::Tls(format!("bad server name `{host}`: {err}")))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let tcp = tokio::net::TcpStream::connect(remote)
            .await
            .map_err(|err| EndpointError::WebSocket(format!("TCP connect to {remote}: {err}")))?;
        let connected = super::websocket::connect(&target, tcp, &self.protocols, tls).await?;
        tracing::debug!(%url, %remote, protocol = ?connected.protocol, "connected WebSocket");
        Ok(connected)
    }

    /// Resolve `host` to an address the local socket can reach.
    async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }

        let resolve_error = |reason: String| EndpointError::Resolve {
            host: host.to_string(),
            reason,
        };
        let v4_only = self.endpoint.local_addr().map(|a| a.is_ipv4()).unwrap_or(false);
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| resolve_error(err.to_string()))?
            .find(|addr| !v4_only || addr.is_ipv4())
            .ok_or_else(|| resolve_error("no usable address".into()))
    }

    /// Fill in what this client offered when the server accepted none of it.
    fn offered(&self, err: EndpointError) -> EndpointError {
        match err {
            EndpointError::NoCommonProtocol { .. } => EndpointError::NoCommonProtocol {
                offered: self.protocols.clone(),
            },
            err => err,
        }
    }
}

/// The URL's host as a name or address literal, to resolve and to verify
/// the certificate against.
fn host_of(url: &Url) -> Result<String> {
    match url.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => Ok(domain.to_string()),
        Some(Host::Ipv4(ip)) => Ok(ip.to_string()),
        Some(Host::Ipv6(ip)) => Ok(ip.to_string()),
        _ => Err(EndpointError::MissingHost(url.to_string())),
    }
}

/// A quinn client config with the given verification and ALPN tokens.
fn quic_config(
    provider: &Arc<CryptoProvider>,
    transport: &Arc<quinn::TransportConfig>,
    verify: &Verify,
    alpn: Vec<Vec<u8>>,
) -> Result<quinn::ClientConfig> {
    let mut tls = tls_config(provider, verify, true)?;
    tls.alpn_protocols = alpn;

    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|err| rustls::Error::General(err.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport.clone());
    Ok(config)
}

/// A rustls client config with the given verification; TLS 1.3 only for
/// QUIC (which requires it), 1.2 too over TCP.
fn tls_config(
    provider: &Arc<CryptoProvider>,
    verify: &Verify,
    tls13_only: bool,
) -> Result<rustls::ClientConfig> {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    Ok(match verify {
        Verify::Roots(roots) => builder.with_root_certificates(roots.clone()),
        Verify::Custom(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone()),
    }
    .with_no_client_auth())
}

/// The root store from the `roots` files and, if asked, the system store.
fn roots(tls: &ClientTls) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();

    if tls.system_roots {
        let native = rustls_native_certs::load_native_certs();
        for err in native.errors {
            tracing::warn!(%err, "failed to load a system root certificate");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded system root certificates");
    }

    for path in &tls.roots {
        let certs = load_certs(path)?;
        if certs.is_empty() {
            return Err(EndpointError::Pem {
                path: path.clone(),
                reason: "no CERTIFICATE found".into(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|err| EndpointError::Pem {
                path: path.clone(),
                reason: err.to_string(),
            })?;
        }
    }

    Ok(roots)
}

/// Map a WebTransport client error, surfacing TLS failures and HTTP
/// statuses.
fn client_error(err: ClientError) -> EndpointError {
    match err {
        ClientError::Connection(err) | ClientError::HttpError(ConnectError::ConnectionError(err)) => {
            err.into()
        }
        ClientError::HttpError(ConnectError::ErrorStatus(status))
        | ClientError::HttpError(ConnectError::ProtoError(WrongStatus(Some(status)))) => {
            EndpointError::Rejected(status)
        }
        err => EndpointError::WebTransport(err),
    }
}

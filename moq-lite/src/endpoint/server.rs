//! The server: one UDP port accepting both raw QUIC and WebTransport.
//!
//! ```no_run
//! use moq_lite::endpoint::{Server, ServerConfig, ServerTls};
//! # async fn run() -> moq_lite::endpoint::Result<()> {
//! let server = Server::bind(ServerConfig {
//!     tls: ServerTls { generate: vec!["localhost".into()], ..Default::default() },
//!     ..Default::default()
//! })?;
//! println!("certificate.sha256: {:?}", server.fingerprints());
//!
//! while let Some(incoming) = server.accept().await {
//!     // Finish the handshake in its own task so that a slow client cannot
//!     // hold up the accept loop.
//!     tokio::spawn(async move {
//!         match incoming.accept().await {
//!             Ok(accepted) => println!("{} {:?} {:?}", accepted.transport, accepted.protocol, accepted.path),
//!             Err(err) => eprintln!("handshake failed: {err}"),
//!         }
//!     });
//! }
//! # Ok(())
//! # }
//! ```

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use rustls::sign::CertifiedKey;
use web_transport_quinn::{Session, http::StatusCode, proto::ConnectResponse};

use super::{
    ALPN_H3, Certificate, EndpointError, QuicConfig, QuicSession, Result, Transport, default_protocols,
    generate_self_signed, provider, sni::SniResolver,
};

/// A certificate chain and key stored as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFiles {
    /// The chain: one or more `CERTIFICATE` blocks, end-entity first.
    pub chain: PathBuf,
    /// The end-entity certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificates a [`Server`] presents.
///
/// The server picks, per connection, the first certificate valid for the
/// server name (SNI) the client asked for, and falls back to the first
/// certificate overall (clients connecting to an IP address send no name).
/// The order is: `pem`, then `certificates`, then the one generated for
/// `generate`. At least one must be given.
#[derive(Clone, Debug, Default)]
pub struct ServerTls {
    /// Certificates loaded from PEM files.
    pub pem: Vec<PemFiles>,
    /// Certificates already in memory.
    pub certificates: Vec<Certificate>,
    /// Host names and IP addresses to put in one generated self-signed
    /// certificate (see [`super::generate_self_signed`]); empty generates
    /// none.
    pub generate: Vec<String>,
}

/// How to run a [`Server`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The UDP address to listen on. Default `[::]:4443`, all interfaces,
    /// IPv4 too on dual-stack systems; if IPv6 is unavailable the unspecified
    /// IPv6 address falls back to `0.0.0.0` on the same port.
    pub bind: SocketAddr,
    /// The certificates to present.
    pub tls: ServerTls,
    /// QUIC transport settings.
    pub quic: QuicConfig,
    /// The protocols this server speaks, preferred first. Default
    /// [`super::LITE_PROTOCOLS`].
    ///
    /// Raw QUIC: they are the TLS ALPN tokens, and the server picks the
    /// first of its own list that the client offers. WebTransport: the server
    /// selects the first protocol in the *client's* list that appears here.
    pub protocols: Vec<String>,
    /// How long [`Incoming::accept`] may take, QUIC and WebTransport
    /// handshakes together. Default 10 s.
    pub handshake_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0u16; 8], 4443)),
            tls: ServerTls::default(),
            quic: QuicConfig::default(),
            protocols: default_protocols(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What every [`Incoming`] needs from its server.
#[derive(Debug)]
struct Shared {
    protocols: Vec<String>,
    handshake_timeout: Duration,
    /// The stream limits every session starts with and grows to.
    quic: QuicConfig,
}

/// A server accepting raw QUIC and WebTransport sessions on one UDP port.
///
/// Clones share the same socket and accept queue.
#[derive(Clone, Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    fingerprints: Vec<String>,
    shared: Arc<Shared>,
}

impl Server {
    /// Load or generate the certificates and bind the UDP socket.
    ///
    /// Must be called within a tokio runtime (the endpoint spawns its I/O
    /// driver).
    pub fn bind(config: ServerConfig) -> Result<Self> {
        let provider = provider();

        let mut certs = Vec::new();
        for pem in &config.tls.pem {
            certs.push(Certificate::load(&pem.chain, &pem.key)?);
        }
        certs.extend(config.tls.certificates.iter().cloned());
        if !config.tls.generate.is_empty() {
            certs.push(generate_self_signed(&config.tls.generate)?);
        }
        if certs.is_empty() || certs.iter().any(|cert| cert.chain.is_empty()) {
            return Err(EndpointError::NoCertificate);
        }

        let fingerprints = certs.iter().map(Certificate::fingerprint_hex).collect();
        let keys = certs
            .into_iter()
            .map(|cert| CertifiedKey::from_der(cert.chain, cert.key, &provider).map(Arc::new))
            .collect::<std::result::Result<Vec<_>, _>>()?;

        let protocols: Vec<String> = config
            .protocols
            .iter()
            .filter(|p| p.as_str() != ALPN_H3)
            .cloned()
            .collect();

        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver::new(keys)));
        tls.alpn_protocols = protocols
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .chain([ALPN_H3.as_bytes().to_vec()])
            .collect();

        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|err| rustls::Error::General(err.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(config.quic.transport());

        let endpoint = bind_with_fallback(config.bind, |addr| quinn::Endpoint::server(server.clone(), addr))?;

        Ok(Self {
            endpoint,
            fingerprints,
            shared: Arc::new(Shared {
                protocols,
                handshake_timeout: config.handshake_timeout,
                quic: config.quic,
            }),
        })
    }

    /// The address the socket is bound to (with the actual port if the
    /// configured one was 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The lowercase hex SHA-256 of each certificate's end-entity
    /// certificate, in [`ServerTls`] order: what to serve at
    /// `/certificate.sha256` (one per line) for `http://` development clients.
    pub fn fingerprints(&self) -> Vec<String> {
        self.fingerprints.clone()
    }

    /// Wait for the next connection attempt; `None` once the server is
    /// closed.
    ///
    /// This returns before any handshake: call [`Incoming::accept`] (usually
    /// in a spawned task) to complete it.
    pub async fn accept(&self) -> Option<Incoming> {
        let incoming = self.endpoint.accept().await?;
        Some(Incoming {
            incoming,
            shared: self.shared.clone(),
        })
    }

    /// Close every connection and stop accepting new ones.
    pub fn close(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"server closed");
    }

    /// The underlying quinn endpoint, for what this type does not cover.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }
}

/// Bind `addr`, retrying the IPv4 unspecified address on the same port if
/// `addr` is the IPv6 unspecified address and binding it fails.
pub(crate) fn bind_with_fallback(
    addr: SocketAddr,
    bind: impl Fn(SocketAddr) -> std::io::Result<quinn::Endpoint>,
) -> Result<quinn::Endpoint> {
    match bind(addr) {
        Ok(endpoint) => Ok(endpoint),
        Err(err) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::debug!(%addr, %err, "IPv6 unavailable, binding {v4}");
            bind(v4).map_err(|source| EndpointError::Bind { addr: v4, source })
        }
        Err(source) => Err(EndpointError::Bind { addr, source }),
    }
}

/// A connection attempt, not yet handshaken.
#[derive(Debug)]
pub struct Incoming {
    incoming: quinn::Incoming,
    shared: Arc<Shared>,
}

impl Incoming {
    /// The client's address (as seen before address validation).
    pub fn remote(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Turn the client away, telling it the server is busy.
    pub fn refuse(self) {
        self.incoming.refuse();
    }

    /// Complete the handshake, within [`ServerConfig::handshake_timeout`].
    ///
    /// TLS ALPN `h3` means WebTransport: the server answers the CONNECT
    /// request with `wt-protocol` set to the first protocol in the client's
    /// `wt-available-protocols` that the server speaks, or with no protocol if
    /// the client offered none. If the client offered some but none match,
    /// the session is rejected with `400 Bad Request` and this returns
    /// [`EndpointError::NoCommonProtocol`]. Any other ALPN means raw QUIC,
    /// and the ALPN is the protocol.
    pub async fn accept(self) -> Result<Accepted> {
        let timeout = self.shared.handshake_timeout;
        tokio::time::timeout(timeout, self.handshake())
            .await
            .map_err(|_| EndpointError::Timeout)?
    }

    async fn handshake(self) -> Result<Accepted> {
        let remote = self.incoming.remote_address();
        let conn = self.incoming.accept()?.await?;

        let alpn = conn
            .handshake_data()
            .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|data| data.protocol)
            .map(|alpn| String::from_utf8_lossy(&alpn).into_owned());

        if alpn.as_deref() != Some(ALPN_H3) {
            tracing::debug!(%remote, ?alpn, "accepted raw QUIC");
            return Ok(Accepted {
                session: QuicSession::new(Session::raw(conn), &self.shared.quic),
                protocol: alpn,
                path: None,
                remote,
                transport: Transport::Quic,
            });
        }

        let request = web_transport_quinn::Request::accept(conn).await?;
        let path = request.url.path().to_string();
        let offered = request.protocols.clone();

        let protocol = offered
            .iter()
            .find(|p| self.shared.protocols.contains(p))
            .cloned();

        let session = match &protocol {
            Some(protocol) => {
                let response = ConnectResponse::new(StatusCode::OK).with_protocol(protocol);
                request.respond(response).await?
            }
            None if offered.is_empty() => request.ok().await?,
            None => {
                // Keep the connection until the client has read the status
                // and closed it; dropping it now could lose the response.
                let conn = request.conn().clone();
                request.reject(StatusCode::BAD_REQUEST).await?;
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                });
                return Err(EndpointError::NoCommonProtocol { offered });
            }
        };

        tracing::debug!(%remote, ?protocol, %path, "accepted WebTransport");
        Ok(Accepted {
            session: QuicSession::new(session, &self.shared.quic),
            protocol,
            path: Some(path),
            remote,
            transport: Transport::WebTransport,
        })
    }
}

/// An established session, as the server sees it.
#[derive(Debug)]
pub struct Accepted {
    /// The session; for raw QUIC a [`Session::raw`] wrapper, so that both
    /// transports present the same `web_transport_trait::Session`, whose
    /// stream limits grow with use.
    pub session: QuicSession,
    /// The negotiated protocol: the ALPN for raw QUIC, the `wt-protocol` for
    /// WebTransport; `None` if none was negotiated (use the SETUP exchange).
    pub protocol: Option<String>,
    /// The request's URL path for WebTransport, as [`url::Url::path`] gives
    /// it (percent-encoded, starting with `/`); `None` for raw QUIC, which
    /// carries no URL.
    pub path: Option<String>,
    /// The client's address.
    pub remote: SocketAddr,
    /// Which transport the session uses.
    pub transport: Transport,
}

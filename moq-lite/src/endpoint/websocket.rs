//! MoQ over WebSocket: QMux in WebSocket messages, for clients that cannot
//! use QUIC (Safari, Firefox, Node, networks that block UDP).
//!
//! QMux carries QUIC's stream frames over an ordered byte stream; the `qmux`
//! crate implements it as one more `web-transport-trait` session, so every
//! MoQ version runs over it with the same session code as over QUIC. One
//! WebSocket binary message holds one QMux record.
//!
//! The WebSocket subprotocol (`Sec-WebSocket-Protocol`) chooses both layers:
//! `qmux-01.moq-lite-04` is QMux draft-01 framing carrying moq-lite-04, as
//! a TLS ALPN would choose it over QUIC. The bare values `qmux-02`,
//! `qmux-01`, `qmux-00` and `webtransport` (the pre-QMux framing, also used
//! when the client offers no subprotocol) choose only the framing, and MoQ
//! negotiates its version with the SETUP exchange. The server picks by its
//! own preference, the first of its list the client offered, as the
//! reference relay does (`../shared/specs/qmux-notes.md`, section 4).
//!
//! ```
//! use moq_lite::endpoint::websocket::{choose_subprotocol, subprotocols};
//! let ours = subprotocols(&["moq-lite-04".to_string(), "moql".to_string()]);
//! assert_eq!(ours[0], "qmux-01.moq-lite-04");
//! // The client's order does not matter; ours does.
//! let offered = ["qmux-01.moql", "qmux-01.moq-lite-04"];
//! assert_eq!(choose_subprotocol(offered, &ours), Some("qmux-01.moq-lite-04"));
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use qmux::ws::tokio_tungstenite::{self, tungstenite};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderValue, header};
use tungstenite::protocol::{Role, WebSocketConfig};

use super::{EndpointError, Result};

/// The QMux session type every WebSocket connection becomes.
pub use qmux::Session;

/// The QMux wire versions paired with a MoQ protocol, preferred first: what
/// the reference relay and `@moq/net` speak (draft-02 is wire-compatible
/// with draft-01 and nobody pairs it yet).
const PAIRED: &[qmux::Version] = &[qmux::Version::QMux01, qmux::Version::QMux00];

/// Subprotocols that choose the framing only; MoQ then negotiates with SETUP.
const BARE: &[&str] = &["qmux-02", "qmux-01", "qmux-00", "webtransport"];

/// The largest WebSocket message accepted: one QMux record (at most 16382
/// bytes unless a peer raises it, which ours do not accept) with room to
/// spare; a larger one closes the connection instead of growing a buffer.
const MAX_MESSAGE: usize = 64 * 1024;

/// Keep-alive: a WebSocket Ping this often, and the session ends after this
/// long without a frame from the peer (TCP alone notices a dead peer only
/// after minutes).
const PING_INTERVAL: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The subprotocols for `protocols` (MoQ ALPNs, preferred first), in
/// preference order: each ALPN with each paired QMux version, then the bare
/// values. A server accepts them in this order; a client offers them.
pub fn subprotocols(protocols: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(protocols.len() * PAIRED.len() + BARE.len());
    for alpn in protocols {
        for version in PAIRED {
            out.push(format!("{}{alpn}", version.prefix()));
        }
    }
    out.extend(BARE.iter().map(|s| s.to_string()));
    out
}

/// The server's choice: the first of `ours` that the client `offered`, or
/// `None` if it offered none of them.
pub fn choose_subprotocol<'a, 'b>(
    offered: impl IntoIterator<Item = &'b str>,
    ours: &'a [String],
) -> Option<&'a str> {
    let offered: Vec<&str> = offered.into_iter().map(str::trim).collect();
    ours.iter()
        .map(String::as_str)
        .find(|ours| offered.contains(ours))
}

/// The values of `Sec-WebSocket-Protocol` headers: comma-separated, any
/// number of headers.
pub fn offered_subprotocols<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`
/// (RFC 6455 section 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

/// The session settings both sides use: stream counts as our QUIC defaults,
/// records no larger than the draft's default.
fn qmux_config() -> qmux::Config {
    let mut config = qmux::Config::default();
    config.max_streams_bidi = 128;
    config.max_streams_uni = 256;
    config
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

fn keep_alive() -> qmux::ws::KeepAlive {
    qmux::ws::KeepAlive::new(PING_INTERVAL, IDLE_TIMEOUT)
}

/// Serves an upgraded connection (the HTTP server already answered 101 with
/// `subprotocol`) as the server side of a QMux session. `None`: the client
/// offered no subprotocol, so the legacy `webtransport` framing is used.
pub async fn accept<T>(io: T, subprotocol: Option<&str>) -> Session
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let mut upgraded = qmux::ws::Upgraded::new(binary_only(ws))
        .with_keep_alive(keep_alive())
        .with_session_config(qmux_config());
    if let Some(subprotocol) = subprotocol {
        upgraded = upgraded.with_alpn(subprotocol);
    }
    upgraded.accept()
}

/// A WebSocket session, as the client sees it.
pub struct WebSocketConnected {
    /// The QMux session.
    pub session: Session,
    /// The MoQ protocol the server chose (`None`: a bare subprotocol, so
    /// use the SETUP exchange).
    pub protocol: Option<String>,
    /// The server address connected to.
    pub remote: SocketAddr,
    /// Bytes on the TCP connection, each way.
    pub bytes: ByteCounts,
}

impl std::fmt::Debug for WebSocketConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketConnected")
            .field("protocol", &self.protocol)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`; the path and query are
/// the session's) over `tcp`, offering `protocols`, and starts the client
/// side of a QMux session. `tls` is required for `wss://`.
pub(super) async fn connect(
    url: &url::Url,
    tcp: tokio::net::TcpStream,
    protocols: &[String],
    tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
) -> Result<WebSocketConnected> {
    let ws_error = |err: std::io::Error| EndpointError::WebSocket(err.to_string());
    let remote = tcp.peer_addr().map_err(ws_error)?;
    let _ = tcp.set_nodelay(true);
    let bytes = ByteCounts::default();
    let tcp = Counted::new(tcp, bytes.clone());
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| EndpointError::WebSocket(err.to_string()))?;
    let offered = subprotocols(protocols).join(", ");
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(&offered).map_err(|err| EndpointError::WebSocket(err.to_string()))?,
    );
    let (session, protocol) = match tls {
        Some((config, name)) => {
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|err| EndpointError::Tls(err.to_string()))?;
            handshake(request, stream).await?
        }
        None => handshake(request, tcp).await?,
    };
    Ok(WebSocketConnected {
        session,
        protocol,
        remote,
        bytes,
    })
}

async fn handshake<S>(
    request: tungstenite::handshake::client::Request,
    stream: S,
) -> Result<(Session, Option<String>)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()))
        .await
        .map_err(|err| match err {
            tungstenite::Error::Http(response) => {
                match web_transport_quinn::http::StatusCode::from_u16(response.status().as_u16()) {
                    Ok(status) => EndpointError::Rejected(status),
                    Err(_) => EndpointError::WebSocket(format!("HTTP status {}", response.status())),
                }
            }
            err => EndpointError::WebSocket(err.to_string()),
        })?;
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut upgraded = qmux::ws::Upgraded::new(binary_only(ws))
        .with_keep_alive(keep_alive())
        .with_session_config(qmux_config());
    if let Some(chosen) = &chosen {
        upgraded = upgraded.with_alpn(chosen);
    }
    let protocol = chosen.and_then(|c| {
        PAIRED
            .iter()
            .find_map(|v| c.strip_prefix(v.prefix()))
            .map(str::to_string)
    });
    Ok((upgraded.connect(), protocol))
}

/// `ws` with a text message turned into an error, which ends the session:
/// QMux travels in binary messages only (draft-lcurley-qmux-websocket), and
/// the `qmux` crate would skip text ones, leaving a peer that sends nothing
/// else connected until the MoQ handshake times out.
fn binary_only<S>(
    ws: S,
) -> impl futures::Stream<Item = std::result::Result<tungstenite::Message, tungstenite::Error>>
+ futures::Sink<tungstenite::Message, Error = tungstenite::Error>
+ Unpin
+ Send
+ 'static
where
    S: futures::Stream<Item = std::result::Result<tungstenite::Message, tungstenite::Error>>
        + futures::Sink<tungstenite::Message, Error = tungstenite::Error>
        + Unpin
        + Send
        + 'static,
{
    use futures::StreamExt;
    ws.map(|message| match message {
        Ok(tungstenite::Message::Text(_)) => Err(tungstenite::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a text message on a QMux WebSocket",
        ))),
        other => other,
    })
}

/// Bytes read and written on one connection, shared with whoever reports
/// them (QMux does not count its own).
#[derive(Clone, Debug, Default)]
pub struct ByteCounts {
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl ByteCounts {
    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// An I/O stream that counts the bytes through it into a [`ByteCounts`].
pub struct Counted<T> {
    inner: T,
    counts: ByteCounts,
}

impl<T> Counted<T> {
    /// Counts `inner`'s traffic into `counts`.
    pub fn new(inner: T, counts: ByteCounts) -> Self {
        Counted { inner, counts }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counts.read.fetch_add(n, Ordering::Relaxed);
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counts.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<String> {
        subprotocols(&[
            "moq-lite-04".into(),
            "moq-lite-03".into(),
            "moql".into(),
            "moqt-17".into(),
        ])
    }

    #[test]
    fn each_alpn_is_paired_with_qmux_01_then_00_and_the_bare_values_come_last() {
        assert_eq!(
            ours(),
            [
                "qmux-01.moq-lite-04",
                "qmux-00.moq-lite-04",
                "qmux-01.moq-lite-03",
                "qmux-00.moq-lite-03",
                "qmux-01.moql",
                "qmux-00.moql",
                "qmux-01.moqt-17",
                "qmux-00.moqt-17",
                "qmux-02",
                "qmux-01",
                "qmux-00",
                "webtransport",
            ]
        );
    }

    #[test]
    fn the_server_picks_by_its_own_preference() {
        let ours = ours();
        // @moq/net offers lite-05 first, which we lack: lite-04 wins.
        let offered = offered_subprotocols([
            "qmux-01.moq-lite-05, qmux-00.moq-lite-05",
            "qmux-01.moqt-17,qmux-01.moq-lite-04 , qmux-01",
        ]);
        assert_eq!(choose_subprotocol(offered, &ours), Some("qmux-01.moq-lite-04"));
        assert_eq!(choose_subprotocol(["qmux-00"], &ours), Some("qmux-00"));
        assert_eq!(choose_subprotocol(["qmux-01.moq-lite-05", "chat"], &ours), None);
        assert_eq!(choose_subprotocol([], &ours), None);
    }

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}

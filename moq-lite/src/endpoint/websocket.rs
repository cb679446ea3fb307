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

/// The WebSocket as QMux gets it: text messages turn into an error, and
/// writes after the peer's close are dropped instead of failing.
///
/// - QMux travels in binary messages only (draft-lcurley-qmux-websocket);
///   the `qmux` crate would skip text ones, leaving a peer that sends
///   nothing else connected until the MoQ handshake times out.
/// - A peer ends a session with a QMux close frame (its code says why: a
///   refusal, say) then a WebSocket Close. Once tungstenite has read that
///   Close, every write fails, and a failed write ends the `qmux` session as
///   plainly "closed" before its reader task has handled the close frame
///   queued ahead of it: the code would be lost. Dropping those writes
///   instead (the peer is gone; nobody would read them) lets the reader's
///   ordered view decide.
struct BinaryOnly<S> {
    ws: S,
}

fn binary_only<S>(ws: S) -> BinaryOnly<S> {
    BinaryOnly { ws }
}

type WsResult<T> = std::result::Result<T, tungstenite::Error>;

/// Whether a write failed because the WebSocket is already closing.
fn closing(err: &tungstenite::Error) -> bool {
    matches!(
        err,
        tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::SendAfterClosing)
    )
}

impl<S> futures::Stream for BinaryOnly<S>
where
    S: futures::Stream<Item = WsResult<tungstenite::Message>> + Unpin,
{
    type Item = WsResult<tungstenite::Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.ws).poll_next(cx).map(|message| match message {
            Some(Ok(tungstenite::Message::Text(_))) => {
                Some(Err(tungstenite::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a text message on a QMux WebSocket",
                ))))
            }
            other => other,
        })
    }
}

impl<S> futures::Sink<tungstenite::Message> for BinaryOnly<S>
where
    S: futures::Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WsResult<()>> {
        match Pin::new(&mut self.ws).poll_ready(cx) {
            Poll::Ready(Err(err)) if closing(&err) => Poll::Ready(Ok(())),
            other => other,
        }
    }

    fn start_send(mut self: Pin<&mut Self>, message: tungstenite::Message) -> WsResult<()> {
        match Pin::new(&mut self.ws).start_send(message) {
            Err(err) if closing(&err) => Ok(()),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WsResult<()>> {
        match Pin::new(&mut self.ws).poll_flush(cx) {
            Poll::Ready(Err(err)) if closing(&err) => Poll::Ready(Ok(())),
            other => other,
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WsResult<()>> {
        match Pin::new(&mut self.ws).poll_close(cx) {
            Poll::Ready(Err(err)) if closing(&err) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

/// Bytes read and written on one connection, shared with whoever reports
/// them (QMux does not count its own).
#[derive(Clone, Debug, Default)]
pub struct ByteCounts {
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    /// Woken by the first write.
    wrote: Arc<tokio::sync::Notify>,
}

impl ByteCounts {
    /// Waits until something was written (for a new QMux session: its
    /// transport parameters, which it queues first).
    ///
    /// A QMux session closed while its first write is in flight abandons
    /// that write and never sends its close frame (the `qmux` crate will not
    /// touch a transport parked mid-frame), so a server that refuses a
    /// session at once waits for this first: the peer then learns why.
    pub async fn written_once(&self) {
        loop {
            let wrote = self.wrote.notified();
            tokio::pin!(wrote);
            wrote.as_mut().enable();
            if self.sent() > 0 {
                return;
            }
            wrote.await;
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// How long a closed connection keeps reading what the peer still sends.
const LINGER: Duration = Duration::from_secs(2);

/// An I/O stream that counts the bytes through it into a [`ByteCounts`],
/// and closes gracefully when dropped.
///
/// Closing a TCP socket with unread bytes in its receive buffer makes the
/// kernel send a reset, and a reset makes the peer discard what it had not
/// read yet: the QMux close frame that says why (a refusal's code, say).
/// So a dropped `Counted` shuts its write side down and keeps reading (and
/// discarding) until the peer closes too, for at most `LINGER`, in a task
/// of its own, as HTTP servers' lingering close does.
pub struct Counted<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    inner: Option<T>,
    counts: ByteCounts,
}

impl<T> Counted<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Counts `inner`'s traffic into `counts`.
    pub fn new(inner: T, counts: ByteCounts) -> Self {
        Counted {
            inner: Some(inner),
            counts,
        }
    }

    fn inner(&mut self) -> Pin<&mut T> {
        // Only `drop` takes it.
        Pin::new(self.inner.as_mut().expect("present until dropped"))
    }
}

impl<T> Drop for Counted<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn drop(&mut self) {
        let (Some(mut inner), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tokio::time::timeout(LINGER, async {
                let _ = inner.shutdown().await;
                let mut sink = [0u8; 4096];
                while let Ok(n) = inner.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        });
    }
}

impl<T> AsyncRead for Counted<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.inner().poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counts.read.fetch_add(n, Ordering::Relaxed);
        poll
    }
}

impl<T> AsyncWrite for Counted<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = self.inner().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            // Only the first write is waited for; later ones need no wake-up.
            if self.counts.written.fetch_add(*n as u64, Ordering::Relaxed) == 0 && *n > 0 {
                self.counts.wrote.notify_waiters();
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner().poll_shutdown(cx)
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

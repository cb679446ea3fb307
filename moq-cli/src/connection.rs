//! The global flags: where to connect and how, and the connect / reconnect
//! logic every command shares.

use std::path::PathBuf;
use std::time::Duration;

use moq_lite::SessionConfig;
use moq_lite::endpoint::websocket::WebSocketConnected;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls, Connected, EndpointError, Transport};
use web_transport_trait::Session as _;

use moq_lite::model::{OriginConsumer, OriginProducer};
use moq_transport_compat::Session;
use url::Url;

use crate::error::explain;

/// How long a command that is done waits for its connection close to reach
/// the relay.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an `https://` or `http://` connection waits for QUIC before
/// trying WebSocket as well (the first to connect wins). Browsers' MoQ
/// client waits 500 ms too: long enough for a QUIC handshake across an
/// ocean, short enough that a network that drops UDP costs half a second.
pub const WEBSOCKET_FALLBACK_DELAY: Duration = Duration::from_millis(500);

/// A transport pinned with `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportPin {
    /// Raw QUIC to the URL's host and port (`moqt://`).
    Quic,
    /// WebTransport only: no WebSocket fallback.
    WebTransport,
    /// WebSocket (QMux) only: `ws://` for `http://`, `wss://` for `https://`.
    WebSocket,
}

impl std::str::FromStr for TransportPin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quic" => Ok(TransportPin::Quic),
            "webtransport" => Ok(TransportPin::WebTransport),
            "websocket" => Ok(TransportPin::WebSocket),
            other => Err(format!(
                "unknown transport `{other}`: use quic, webtransport or websocket"
            )),
        }
    }
}

/// A protocol version forced with `--protocol`: one of the versions of
/// [`moq_transport_compat::protocols::VERSIONS`], by name (`moq-lite-04`,
/// `moq-transport-16`).
pub type Protocol = moq_transport_compat::Version;

/// Where and how to connect: the URL plus the global flags.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The relay URL (`https://`, `http://`, `moql://`, `moqt://`).
    pub url: Url,
    /// Accept any certificate.
    pub tls_disable_verify: bool,
    /// Extra PEM root certificates.
    pub tls_roots: Vec<PathBuf>,
    /// Force one protocol version.
    pub protocol: Option<Protocol>,
    /// A token, appended to the URL as `?jwt=`.
    pub jwt: Option<String>,
    /// Reconnect (with exponential backoff) when an established session is
    /// lost.
    pub reconnect: bool,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// One transport only, instead of what the URL's scheme implies.
    pub transport: Option<TransportPin>,
}

impl Connection {
    /// A connection to `url` with default flags.
    pub fn new(url: Url) -> Self {
        Connection {
            url,
            tls_disable_verify: false,
            tls_roots: Vec::new(),
            protocol: None,
            jwt: None,
            reconnect: true,
            connect_timeout: Duration::from_secs(10),
            transport: None,
        }
    }

    /// Parses a URL given on the command line, with a helpful error.
    pub fn parse_url(text: &str) -> anyhow::Result<Url> {
        let url = Url::parse(text).map_err(|err| {
            anyhow::anyhow!(
                "bad URL `{text}`: {err}; expected e.g. https://relay.example.com/, moql://host:4443/, \
                 wss://relay.example.com/ or http://localhost:4443/ (development relay)"
            )
        })?;
        match url.scheme() {
            "https" | "http" | "moql" | "moqt" | "ws" | "wss" => {}
            other => anyhow::bail!(
                "bad URL `{text}`: unsupported scheme `{other}`; use https:// (WebTransport, falling back \
                 to WebSocket), moql:// or moqt:// (raw QUIC), wss:// or ws:// (WebSocket), or http:// \
                 (development relay, pins /certificate.sha256)"
            ),
        }
        if url.host_str().is_none_or(str::is_empty) {
            anyhow::bail!("bad URL `{text}`: no host; expected scheme://host:port/path");
        }
        Ok(url)
    }

    /// The URL to dial: the given one, with `?jwt=` added if a token was given.
    pub fn dial_url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(jwt) = &self.jwt {
            let others: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != "jwt")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in others {
                query.append_pair(&k, &v);
            }
            query.append_pair("jwt", jwt);
        }
        url
    }

    /// The client endpoint these flags describe. Needs a tokio runtime.
    pub fn client(&self) -> anyhow::Result<Client> {
        let protocols = match self.protocol {
            Some(protocol) => vec![protocol.alpn().to_string()],
            None => moq_transport_compat::supported_protocols(),
        };
        let config = ClientConfig {
            tls: ClientTls {
                disable_verify: self.tls_disable_verify,
                roots: self.tls_roots.clone(),
                ..Default::default()
            },
            protocols,
            timeout: self.connect_timeout,
            ..Default::default()
        };
        Client::new(config).map_err(|err| anyhow::anyhow!("{}", explain_endpoint(&err)))
    }

    /// Runs `work` with a client endpoint, then closes the endpoint's
    /// connections and waits (briefly) until the relay has been told, so it
    /// withdraws what we published at once rather than at its idle timeout.
    pub async fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&Client) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let client = self.client()?;
        let result = work(&client).await;
        client.shutdown(CLOSE_TIMEOUT).await;
        result
    }

    /// Connects once and starts a session publishing `publish` and/or
    /// subscribing into `subscribe`.
    pub async fn connect(
        &self,
        client: &Client,
        publish: Option<OriginConsumer>,
        subscribe: Option<OriginProducer>,
    ) -> anyhow::Result<Live> {
        let url = self.dial_url();
        let dialled = self.dial(client, &url).await?;
        let config = SessionConfig {
            publish,
            subscribe,
            ..Default::default()
        };
        let (session, link, transport) = match dialled {
            Dialled::Quic(connected) => {
                let connected = *connected;
                let transport = connected.transport;
                // Raw QUIC has no request line: IETF sessions carry the URL in SETUP.
                let config = SessionConfig {
                    raw_quic_url: (transport == Transport::Quic).then(|| url.clone()),
                    ..config
                };
                let link = Link::Quic(Box::new(connected.session.clone()));
                (self.start(connected.session, config).await?, link, transport)
            }
            Dialled::WebSocket(connected) => {
                let link = Link::WebSocket(Box::new(connected.session.clone()));
                (
                    self.start(connected.session, config).await?,
                    link,
                    Transport::WebSocket,
                )
            }
        };
        if let Some(expected) = self.protocol {
            if session.version() != expected {
                anyhow::bail!(
                    "{} negotiated {:?} although --protocol {} was asked for",
                    self.url,
                    session.version(),
                    expected.name()
                );
            }
        }
        tracing::info!(url = %self.url, version = ?session.version(), %transport, "connected");
        Ok(Live {
            session,
            conn: link,
            transport,
        })
    }

    /// The MoQ handshake on a connected transport.
    async fn start<T: web_transport_trait::Session>(
        &self,
        transport: T,
        config: SessionConfig,
    ) -> anyhow::Result<Session> {
        tokio::time::timeout(
            self.connect_timeout,
            moq_transport_compat::connect(transport, config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("could not connect to {}: the MoQ handshake timed out", self.url))?
        .map_err(|err| anyhow::anyhow!("could not start a session with {}: {}", self.url, explain(&err)))
    }

    /// Opens the transport `url` and `--transport` ask for. `https://` and
    /// `http://` without a pin try WebTransport, then WebSocket too once
    /// QUIC has failed or stayed silent for [`WEBSOCKET_FALLBACK_DELAY`].
    async fn dial(&self, client: &Client, url: &Url) -> anyhow::Result<Dialled> {
        let failed = |err: &EndpointError| {
            anyhow::anyhow!("could not connect to {}: {}", self.url, explain_endpoint(err))
        };
        let web = matches!(url.scheme(), "https" | "http");
        let websocket = matches!(url.scheme(), "ws" | "wss");
        match self.transport {
            Some(TransportPin::WebSocket) => {
                return client
                    .connect_websocket(url)
                    .await
                    .map(|c| Dialled::WebSocket(Box::new(c)))
                    .map_err(|e| failed(&e));
            }
            Some(TransportPin::Quic) if web || websocket => {
                let mut raw = url.clone();
                // Not a special scheme: rebuild rather than set_scheme.
                let text = raw.as_str().replacen(url.scheme(), "moqt", 1);
                raw = Url::parse(&text).map_err(|e| anyhow::anyhow!("bad URL {text}: {e}"))?;
                if raw.port().is_none() {
                    let _ = raw.set_port(Some(if matches!(url.scheme(), "https" | "wss") {
                        443
                    } else {
                        4443
                    }));
                }
                return client
                    .connect(&raw)
                    .await
                    .map(|c| Dialled::Quic(Box::new(c)))
                    .map_err(|e| failed(&e));
            }
            Some(TransportPin::WebTransport) if websocket => {
                anyhow::bail!(
                    "--transport webtransport needs an https:// or http:// URL, not {}",
                    self.url
                )
            }
            Some(_) => {
                return client
                    .connect(url)
                    .await
                    .map(|c| Dialled::Quic(Box::new(c)))
                    .map_err(|e| failed(&e));
            }
            None if websocket => {
                return client
                    .connect_websocket(url)
                    .await
                    .map(|c| Dialled::WebSocket(Box::new(c)))
                    .map_err(|e| failed(&e));
            }
            None if !web => {
                return client
                    .connect(url)
                    .await
                    .map(|c| Dialled::Quic(Box::new(c)))
                    .map_err(|e| failed(&e));
            }
            None => {}
        }

        let quic = client.connect(url);
        tokio::pin!(quic);
        let quic_error = tokio::select! {
            result = &mut quic => match result {
                Ok(connected) => return Ok(Dialled::Quic(Box::new(connected))),
                Err(err) => Some(err),
            },
            _ = tokio::time::sleep(WEBSOCKET_FALLBACK_DELAY) => None,
        };
        match &quic_error {
            Some(err) => tracing::info!(%err, "WebTransport failed; trying WebSocket"),
            None => tracing::info!(
                "no QUIC answer within {} ms; trying WebSocket as well",
                WEBSOCKET_FALLBACK_DELAY.as_millis()
            ),
        }
        let websocket = client.connect_websocket(url);
        tokio::pin!(websocket);
        let (quic_error, websocket_error) = match quic_error {
            Some(quic_error) => match websocket.await {
                Ok(connected) => return Ok(Dialled::WebSocket(Box::new(connected))),
                Err(err) => (quic_error, err),
            },
            None => tokio::select! {
                result = &mut quic => match result {
                    Ok(connected) => return Ok(Dialled::Quic(Box::new(connected))),
                    Err(quic_error) => match websocket.await {
                        Ok(connected) => return Ok(Dialled::WebSocket(Box::new(connected))),
                        Err(err) => (quic_error, err),
                    },
                },
                result = &mut websocket => match result {
                    Ok(connected) => return Ok(Dialled::WebSocket(Box::new(connected))),
                    Err(websocket_error) => match quic.await {
                        Ok(connected) => return Ok(Dialled::Quic(Box::new(connected))),
                        Err(err) => (err, websocket_error),
                    },
                },
            },
        };
        anyhow::bail!(
            "could not connect to {}: {}; WebSocket fallback: {}",
            self.url,
            explain_endpoint(&quic_error),
            explain_endpoint(&websocket_error)
        )
    }
}

/// A transport connection before the MoQ handshake.
enum Dialled {
    /// Raw QUIC or WebTransport.
    Quic(Box<Connected>),
    /// QMux over WebSocket.
    WebSocket(Box<WebSocketConnected>),
}

/// The connection under a session, whichever transport it is.
#[derive(Clone)]
pub enum Link {
    /// Raw QUIC or WebTransport.
    Quic(Box<moq_lite::endpoint::QuicSession>),
    /// QMux over WebSocket.
    WebSocket(Box<moq_lite::endpoint::websocket::Session>),
}

impl Link {
    /// Closes the connection cleanly (code 0).
    pub fn close(&self) {
        match self {
            Link::Quic(session) => web_transport_trait::Session::close(&**session, 0, "done"),
            Link::WebSocket(session) => web_transport_trait::Session::close(&**session, 0, "done"),
        }
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        match self {
            Link::Quic(session) => session.close_reason().is_some(),
            // Its close future is ready at once when closed.
            Link::WebSocket(session) => {
                use futures::FutureExt;
                session.closed().now_or_never().is_some()
            }
        }
    }

    /// The round-trip time measured so far (QMux measures with pings; a
    /// guess of 100 ms until it has).
    pub fn rtt(&self) -> Duration {
        match self {
            Link::Quic(session) => session.rtt(),
            Link::WebSocket(session) => {
                use web_transport_trait::Stats;
                session.stats().rtt().unwrap_or(Duration::from_millis(100))
            }
        }
    }
}

/// An established session and its connection.
pub struct Live {
    /// The MoQ session.
    pub session: Session,
    /// The connection under it (for stats and close state).
    pub conn: Link,
    /// Which transport it uses.
    pub transport: Transport,
}

impl Drop for Live {
    fn drop(&mut self) {
        // A clean close (code 0), so the relay withdraws what we published
        // now; `Connection::with_client` waits for it to go out.
        self.conn.close();
    }
}

impl Live {
    /// Waits for the session to end, and says why.
    pub async fn closed(&self) -> moq_lite::Error {
        self.session.closed().await
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

/// Exponential backoff between reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            next: initial,
            initial,
            max,
        }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the initial delay (after a successful connection).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Reconnects after `backoff` until a session is up; gives up only on an
/// authorization failure (retrying would not help).
pub async fn reconnect(
    connection: &Connection,
    client: &Client,
    backoff: &mut Backoff,
    publish: impl Fn() -> Option<OriginConsumer>,
    subscribe: impl Fn() -> Option<OriginProducer>,
) -> anyhow::Result<Live> {
    loop {
        let delay = backoff.next_delay();
        tracing::warn!("reconnecting to {} in {:?}", connection.url, delay);
        tokio::time::sleep(delay).await;
        match connection.connect(client, publish(), subscribe()).await {
            Ok(live) => {
                backoff.reset();
                tracing::warn!("reconnected to {}", connection.url);
                return Ok(live);
            }
            Err(err) => {
                let text = format!("{err:#}");
                if text.contains("unauthorized") {
                    return Err(err);
                }
                tracing::warn!("{text}");
            }
        }
    }
}

/// A human explanation of an endpoint error, with a hint where one helps.
pub fn explain_endpoint(err: &EndpointError) -> String {
    let text = err.to_string();
    match err {
        EndpointError::Rejected(status) if status.as_u16() == 401 || status.as_u16() == 403 => {
            format!(
                "unauthorized ({status}): pass a token with --jwt TOKEN, or check the URL path the token grants"
            )
        }
        EndpointError::Rejected(status) if status.as_u16() == 404 => {
            format!("not found ({status}): check the URL path")
        }
        EndpointError::Timeout => {
            "the connection timed out: is the relay running and reachable over UDP? (check \
                                   the host, the port and any firewall)"
                .to_string()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_goes_into_the_query() {
        let mut connection =
            Connection::new(Connection::parse_url("https://relay.example/room?x=1&jwt=old").unwrap());
        connection.jwt = Some("a.b.c".into());
        assert_eq!(
            connection.dial_url().as_str(),
            "https://relay.example/room?x=1&jwt=a.b.c"
        );
    }

    #[test]
    fn protocols_parse() {
        use moq_lite::lite::Version;
        assert_eq!("moq-lite-02".parse::<Protocol>().unwrap().alpn(), "moql");
        assert_eq!(
            "moq-lite-04".parse::<Protocol>().unwrap(),
            Protocol::Lite(Version::Lite04)
        );
        assert_eq!("moq-transport-15".parse::<Protocol>().unwrap().alpn(), "moqt-15");
        assert_eq!("moq-transport-14".parse::<Protocol>().unwrap().alpn(), "moq-00");
        assert_eq!("moq-transport-17".parse::<Protocol>().unwrap().alpn(), "moqt-17");
        assert!("moq-transport-13".parse::<Protocol>().is_err());
    }

    #[test]
    fn bad_urls_are_explained() {
        let err = Connection::parse_url("localhost:4443").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme"), "{err}");
        assert!(Connection::parse_url("moql:///nohost").is_err());
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay().as_millis(), 100);
    }
}

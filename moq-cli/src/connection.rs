//! The global flags: where to connect and how, and the connect / reconnect
//! logic every command shares.

use std::path::PathBuf;
use std::time::Duration;

use moq_lite::SessionConfig;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls, EndpointError, Transport};

use moq_lite::model::{OriginConsumer, OriginProducer};
use moq_transport_compat::Session;
use url::Url;

use crate::error::explain;

/// How long a command that is done waits for its connection close to reach
/// the relay.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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
        }
    }

    /// Parses a URL given on the command line, with a helpful error.
    pub fn parse_url(text: &str) -> anyhow::Result<Url> {
        let url = Url::parse(text).map_err(|err| {
            anyhow::anyhow!(
                "bad URL `{text}`: {err}; expected e.g. https://relay.example.com/, moql://host:4443/ \
                 or http://localhost:4443/ (development relay)"
            )
        })?;
        match url.scheme() {
            "https" | "http" | "moql" | "moqt" => {}
            other => anyhow::bail!(
                "bad URL `{text}`: unsupported scheme `{other}`; use https:// (WebTransport), moql:// or \
                 moqt:// (raw QUIC), or http:// (development relay, pins /certificate.sha256)"
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
        let connected = client.connect(&url).await.map_err(|err| {
            anyhow::anyhow!("could not connect to {}: {}", self.url, explain_endpoint(&err))
        })?;
        let conn = connected.session.clone();
        // Raw QUIC has no request line: IETF sessions carry the URL in SETUP.
        let raw_quic_url = (connected.transport == Transport::Quic).then(|| url.clone());
        let session = tokio::time::timeout(
            self.connect_timeout,
            moq_transport_compat::connect(
                connected.session,
                SessionConfig {
                    publish,
                    subscribe,
                    raw_quic_url,
                    ..Default::default()
                },
            ),
        )
        .await
        .map_err(|_| anyhow::anyhow!("could not connect to {}: the MoQ handshake timed out", self.url))?
        .map_err(|err| anyhow::anyhow!("could not start a session with {}: {}", self.url, explain(&err)))?;
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
        tracing::info!(url = %self.url, version = ?session.version(), transport = %connected.transport, "connected");
        Ok(Live { session, conn })
    }
}

/// An established session and its connection.
pub struct Live {
    /// The moq-lite session.
    pub session: Session,
    /// The QUIC / WebTransport connection under it (for stats and close
    /// state).
    pub conn: moq_lite::endpoint::web_transport_quinn::Session,
}

impl Drop for Live {
    fn drop(&mut self) {
        // A clean close (code 0), so the relay withdraws what we published
        // now; `Connection::with_client` waits for it to go out.
        self.conn.close(0, b"done");
    }
}

impl Live {
    /// Waits for the session to end, and says why.
    pub async fn closed(&self) -> moq_lite::Error {
        self.session.closed().await
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
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

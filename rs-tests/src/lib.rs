//! Helpers for the cross-crate integration tests under `tests/`: an
//! in-process relay on loopback and clients that connect to it.

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use moq_lite::Session;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls};
use moq_lite::model::{OriginProducer, Path, Track, TrackConsumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A relay running in this process on 127.0.0.1 with free ports.
pub struct TestRelay {
    /// UDP address for QUIC / WebTransport.
    pub addr: SocketAddr,
    /// TCP address of the HTTP side.
    pub http: SocketAddr,
    /// The certificate's SHA-256, to pin.
    pub fingerprint: String,
    /// This relay's hop ID.
    pub hop_id: u64,
    server: moq_lite::endpoint::Server,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestRelay {
    /// Starts a relay on addresses another (just killed) relay used: its
    /// sockets close once its connections have drained, so binding is
    /// retried for a few seconds.
    pub async fn restart(configure: impl Fn(&mut moq_relay::Config)) -> TestRelay {
        for _ in 0..50 {
            let mut config = moq_relay::Config::default();
            configure(&mut config);
            let udp = std::net::UdpSocket::bind(config.bind);
            let tcp = std::net::TcpListener::bind(config.http_bind.parse::<SocketAddr>().expect("http_bind"));
            if udp.is_ok() && tcp.is_ok() {
                drop((udp, tcp));
                return Self::start(configure).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the old relay's ports were never released");
    }

    /// Starts a relay with `configure` applied to a loopback config.
    pub async fn start(configure: impl FnOnce(&mut moq_relay::Config)) -> TestRelay {
        // RUST_LOG=moq_lite=debug shows what the relays do; silent otherwise.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut config = moq_relay::Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            http_bind: "127.0.0.1:0".into(),
            shutdown_drain: Duration::from_secs(2),
            ..Default::default()
        };
        configure(&mut config);
        let relay = moq_relay::Relay::bind(config).await.expect("relay binds");
        let addr = relay.local_addr().unwrap();
        let http = relay.http_addr().expect("http enabled");
        let fingerprint = relay.fingerprints()[0].clone();
        let hop_id = relay.hop_id();
        let server = relay.server();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        TestRelay {
            addr,
            http,
            fingerprint,
            hop_id,
            server,
            stop: Some(stop),
            task,
        }
    }

    /// The URL other relays dial to link with this one: raw QUIC straight
    /// to its UDP port (the dialer must set `cluster_tls_disable_verify`,
    /// since test relays have self-signed certificates and, unlike a real
    /// deployment, different TCP and UDP ports, so `http://` cannot work).
    pub fn cluster_url(&self) -> String {
        format!("moql://127.0.0.1:{}/", self.addr.port())
    }

    /// Drops every connection at once and stops, without GOAWAY: a crash.
    pub async fn kill(self) {
        self.server.close();
        self.task.abort();
        let _ = self.task.await;
    }

    /// A URL for this relay with `scheme` (`moql`, `https`) and `path`.
    pub fn url(&self, scheme: &str, path: &str) -> url::Url {
        format!(
            "{scheme}://127.0.0.1:{}/{}",
            self.addr.port(),
            path.trim_start_matches('/')
        )
        .parse()
        .unwrap()
    }

    /// A client that trusts this relay's certificate.
    pub fn client(&self) -> Client {
        self.client_with(ClientConfig::default())
    }

    /// A client that trusts this relay's certificate and offers only
    /// `protocols` (ALPN / WebTransport protocols).
    pub fn client_offering(&self, protocols: &[&str]) -> Client {
        self.client_with(ClientConfig {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })
    }

    /// `config`, bound to loopback and trusting this relay's certificate.
    pub fn client_with(&self, config: ClientConfig) -> Client {
        Client::new(ClientConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: ClientTls {
                fingerprints: vec![self.fingerprint.clone()],
                system_roots: false,
                ..Default::default()
            },
            ..config
        })
        .expect("client binds")
    }

    /// Connects a session that publishes `publish` and/or subscribes into
    /// `subscribe`; the client endpoint is returned to keep it alive.
    pub async fn connect(
        &self,
        url: &url::Url,
        publish: Option<&OriginProducer>,
        subscribe: Option<&OriginProducer>,
    ) -> (Session, Client) {
        let client = self.client();
        let connected = client.connect(url).await.expect("connects");
        let session = Session::connect(
            connected.session,
            publish.map(|o| o.consume()),
            subscribe.cloned(),
        )
        .await
        .expect("session");
        (session, client)
    }

    /// A session to the relay at `scheme://.../` speaking exactly
    /// `protocol` (any version, lite or IETF); the client endpoint is
    /// returned to keep it alive.
    pub async fn connect_speaking(
        &self,
        scheme: &str,
        protocol: &str,
        config: moq_lite::SessionConfig,
    ) -> (moq_transport_compat::Session, Client) {
        let client = self.client_offering(&[protocol]);
        let connected = client.connect(&self.url(scheme, "/")).await.expect("connects");
        let session = moq_transport_compat::connect(connected.session, config)
            .await
            .expect("session");
        (session, client)
    }

    /// `GET path` on the HTTP side: (status line, body).
    pub async fn get(&self, path: &str) -> (String, Vec<u8>) {
        let mut stream = tokio::net::TcpStream::connect(self.http)
            .await
            .expect("http connects");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("http head");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, response[split + 4..].to_vec())
    }

    /// Stops the relay (GOAWAY, drain) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("relay task").expect("relay ran");
    }
}

/// Waits for `path` to be announced in `origin` and subscribes to `track`.
pub async fn subscribe(origin: &OriginProducer, path: &str, track: &str) -> TrackConsumer {
    subscribe_from(origin, path, track, None).await
}

/// [`subscribe`] from group `start` (`None`: the latest).
pub async fn subscribe_from(
    origin: &OriginProducer,
    path: &str,
    track: &str,
    start: Option<u64>,
) -> TrackConsumer {
    let mut announced = origin.consume();
    loop {
        let next = announced.announced().await.expect("origin open");
        if next.path == Path::new(path) {
            if let Some(broadcast) = next.broadcast {
                return broadcast
                    .subscribe_track_from(&Track::new(track), start)
                    .expect("subscribes");
            }
        }
    }
}

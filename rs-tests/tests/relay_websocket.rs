//! MoQ over WebSocket (QMux) on the relay's TCP port: every version we
//! speak, mixed with QUIC clients through one origin; the subprotocol
//! choosing both layers; refusals; a hostile WebSocket peer harming nobody.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::endpoint::Client;
use moq_lite::model::{OriginProducer, Track, TrackConsumer, TrackProducer};
use moq_transport_compat::protocols::VERSIONS;
use rs_tests::{TestRelay, subscribe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

/// A WebSocket session to `relay` (at `path`) offering only `protocols`.
async fn connect_ws(
    relay: &TestRelay,
    path: &str,
    protocols: &[&str],
    config: SessionConfig,
) -> (moq_transport_compat::Session, Client) {
    let client = relay.client_offering(protocols);
    let url = format!(
        "ws://127.0.0.1:{}/{}",
        relay.http.port(),
        path.trim_start_matches('/')
    );
    let connected = client
        .connect_websocket(&url.parse().unwrap())
        .await
        .expect("WebSocket connects");
    let session = moq_transport_compat::connect(connected.session, config)
        .await
        .expect("session");
    (session, client)
}

/// Writes 3 groups of 3 frames once a subscriber is there; checks that
/// `consumer` reads them all, in order.
async fn deliver(track: &mut TrackProducer, consumer: &mut TrackConsumer) {
    while track.is_unused() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let frame = |g: u64, f: u64| Bytes::from(format!("group {g} frame {f}"));
    for g in 0..3 {
        let mut group = track.append_group().unwrap();
        for f in 0..3 {
            group.write_frame(frame(g, f)).unwrap();
        }
        group.finish().unwrap();
    }
    for _ in 0..3 {
        let mut group = consumer.next_group().await.unwrap().expect("track open");
        let g = group.sequence();
        for f in 0..3 {
            assert_eq!(group.read_frame().await.unwrap().unwrap(), frame(g, f));
        }
    }
}

fn broadcast(path: &str, track: &str) -> (OriginProducer, moq_lite::model::BroadcastProducer, TrackProducer) {
    let origin = OriginProducer::new();
    let broadcast = origin.new_broadcast();
    let track = broadcast.create_track(Track::new(track));
    origin.publish(path, &broadcast.consume()).unwrap();
    (origin, broadcast, track)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_crosses_the_relay_over_websocket_both_ways() {
    tokio::time::timeout(LIMIT * 2, async {
        let relay = TestRelay::start(|_| {}).await;
        for version in VERSIONS {
            let alpn = version.alpn();
            // WebSocket publisher -> relay -> WebTransport subscriber.
            let path = format!("from-ws-{}", version.name());
            let (published, _b, mut track) = broadcast(&path, "video");
            let (session, _pc) = connect_ws(
                &relay,
                "/",
                &[alpn],
                SessionConfig {
                    publish: Some(published.consume()),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(session.version(), *version, "over WebSocket offering {alpn}");
            let received = OriginProducer::new();
            let (_s, _sc) = relay
                .connect(&relay.url("https", "/"), None, Some(&received))
                .await;
            let mut consumer = subscribe(&received, &path, "video").await;
            deliver(&mut track, &mut consumer).await;

            // WebTransport publisher -> relay -> WebSocket subscriber.
            let path = format!("to-ws-{}", version.name());
            let (published, _b2, mut track) = broadcast(&path, "audio");
            let (_p2, _pc2) = relay
                .connect(&relay.url("https", "/"), Some(&published), None)
                .await;
            let received = OriginProducer::new();
            let (session, _sc2) = connect_ws(
                &relay,
                "/",
                &[alpn],
                SessionConfig {
                    subscribe: Some(received.clone()),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(session.version(), *version);
            let mut consumer = subscribe(&received, &path, "audio").await;
            deliver(&mut track, &mut consumer).await;
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_path_is_the_session_root_and_bare_subprotocols_negotiate_in_setup() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        // Offering no MoQ protocol gives only the bare `qmux-NN` values:
        // the SETUP exchange picks the version (moq-lite-02, as over `moql`).
        let (published, _b, mut track) = broadcast("cam", "video");
        let (session, _pc) = connect_ws(
            &relay,
            "/room",
            &[],
            SessionConfig {
                publish: Some(published.consume()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            session.version(),
            moq_transport_compat::Version::Lite(moq_lite::lite::Version::Lite02),
            "the SETUP path's first choice"
        );
        let received = OriginProducer::new();
        let (_s, _c) = relay
            .connect(&relay.url("https", "/"), None, Some(&received))
            .await;
        let mut consumer = subscribe(&received, "room/cam", "video").await;
        deliver(&mut track, &mut consumer).await;
    })
    .await
    .expect("timed out");
}

/// Sends a raw upgrade request and returns the response head.
async fn raw_upgrade(relay: &TestRelay, path: &str, extra: &str) -> (String, tokio::net::TcpStream) {
    let mut stream = tokio::net::TcpStream::connect(relay.http).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).to_lowercase(), stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_its_own_preference_and_refuses_what_it_does_not_speak() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        // An offer of what we speak in an order we do not prefer: IETF
        // first, lite-04 before lite-05. We answer our own first choice.
        let (head, _s) = raw_upgrade(
            &relay,
            "/anon",
            "Sec-WebSocket-Protocol: qmux-01.moqt-17, qmux-01.moq-lite-04, qmux-00.moq-lite-05, qmux-01.moq-lite-05, qmux-01\r\n",
        )
        .await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("sec-websocket-protocol: qmux-01.moq-lite-05\r\n"), "{head}");
        // @moq/net pinned to lite-04 gets lite-04.
        let (head, _s) = raw_upgrade(&relay, "/anon", "Sec-WebSocket-Protocol: qmux-01.moq-lite-04, qmux-01\r\n").await;
        assert!(head.contains("sec-websocket-protocol: qmux-01.moq-lite-04\r\n"), "{head}");
        assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"), "{head}");

        let (head, _s) = raw_upgrade(&relay, "/anon", "Sec-WebSocket-Protocol: chat, qmux-01.moq-lite-99\r\n").await;
        assert!(head.starts_with("http/1.1 400"), "{head}");

        // The HTTP endpoints stay what they are.
        let (status, body) = relay.get("/health").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"ok\n");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_count_against_max_sessions() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|config| config.max_sessions = 1).await;
        let (_first, _c) = connect_ws(&relay, "/", &["moq-lite-04"], SessionConfig::default()).await;
        let (head, _s) = raw_upgrade(&relay, "/", "Sec-WebSocket-Protocol: qmux-01.moq-lite-04\r\n").await;
        assert!(head.starts_with("http/1.1 503"), "{head}");
        let (_, metrics) = relay.get("/metrics").await;
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(
            metrics.contains("moq_relay_sessions_by_transport_total{transport=\"websocket\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("moq_relay_sessions_refused_total 1\n"),
            "{metrics}"
        );
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_peer_sending_garbage_is_closed_and_harms_no_one() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        // A live session over WebSocket.
        let (published, _b, mut track) = broadcast("steady", "t");
        let (_p, _pc) = connect_ws(
            &relay,
            "/",
            &["moq-lite-04"],
            SessionConfig {
                publish: Some(published.consume()),
                ..Default::default()
            },
        )
        .await;
        let received = OriginProducer::new();
        let (_s, _sc) = connect_ws(
            &relay,
            "/",
            &["moq-lite-04"],
            SessionConfig {
                subscribe: Some(received.clone()),
                ..Default::default()
            },
        )
        .await;
        let mut consumer = subscribe(&received, "steady", "t").await;

        // Hostile peers: a binary message of QMux garbage; a huge message;
        // a text message; bytes that are not WebSocket frames at all.
        let hostile: [&[u8]; 4] = [
            // FIN + binary, masked, 8 bytes of 0xff.
            &[
                0x82, 0x88, 1, 2, 3, 4, 0xfe, 0xfd, 0xfc, 0xfb, 0xfe, 0xfd, 0xfc, 0xfb,
            ],
            // FIN + binary, masked, a 64-bit length of 2^40.
            &[0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            // FIN + text "hi", masked.
            &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2],
            b"GET / HTTP/1.1\r\n\r\n",
        ];
        for bytes in hostile {
            let (head, mut stream) =
                raw_upgrade(&relay, "/", "Sec-WebSocket-Protocol: qmux-01.moq-lite-04\r\n").await;
            assert!(head.starts_with("http/1.1 101"), "{head}");
            stream.write_all(bytes).await.unwrap();
            // The relay closes it: the read ends (EOF or reset) rather than hanging.
            let mut sink = Vec::new();
            // Well within the 10 s the MoQ handshake may take.
            let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink)).await;
            assert!(
                closed.is_ok(),
                "the relay kept a hostile WebSocket open after {bytes:?}"
            );
        }

        // A flood of WebSocket Pings from a peer that never reads the
        // Pongs: legal frames, so the relay keeps it, but its writes back
        // up into the peer's TCP window instead of the relay's memory, and
        // nobody else notices.
        let (head, mut flooder) =
            raw_upgrade(&relay, "/", "Sec-WebSocket-Protocol: qmux-01.moq-lite-04\r\n").await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        let ping = [0x89u8, 0x80, 0, 0, 0, 0];
        let flood: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 50_000).collect();
        let _ = tokio::time::timeout(Duration::from_secs(2), flooder.write_all(&flood)).await;

        // The honest sessions carry on.
        deliver(&mut track, &mut consumer).await;
    })
    .await
    .expect("timed out");
}

/// `wss://`: the client's TLS over TCP, here through a TLS-terminating
/// proxy in front of the relay's plain TCP port (as a deployment puts a
/// load balancer there), verified by a pinned fingerprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_goes_through_a_tls_terminating_proxy() {
    use std::sync::Arc;
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let cert = moq_lite::endpoint::generate_self_signed(&["localhost".into()]).unwrap();
        let fingerprint = moq_lite::endpoint::fingerprint_hex(&cert.chain[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(cert.chain.clone(), cert.key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let upstream = relay.http;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });

        let client = moq_lite::endpoint::Client::new(moq_lite::endpoint::ClientConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: moq_lite::endpoint::ClientTls {
                fingerprints: vec![fingerprint],
                system_roots: false,
                ..Default::default()
            },
            protocols: vec!["moq-lite-04".into()],
            ..Default::default()
        })
        .unwrap();
        let url = format!("wss://localhost:{}/", proxy.port()).parse().unwrap();
        let (published, _b, mut track) = broadcast("secure", "t");
        let connected = client.connect_websocket(&url).await.expect("wss connects");
        assert_eq!(connected.protocol.as_deref(), Some("moq-lite-04"));
        let _publisher = moq_transport_compat::connect(
            connected.session,
            SessionConfig {
                publish: Some(published.consume()),
                ..Default::default()
            },
        )
        .await
        .expect("session");
        let received = OriginProducer::new();
        let (_s, _sc) = relay
            .connect(&relay.url("https", "/"), None, Some(&received))
            .await;
        let mut consumer = subscribe(&received, "secure", "t").await;
        deliver(&mut track, &mut consumer).await;

        // A certificate that is not the pinned one is refused.
        let stranger = moq_lite::endpoint::Client::new(moq_lite::endpoint::ClientConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: moq_lite::endpoint::ClientTls {
                fingerprints: vec!["00".repeat(32)],
                system_roots: false,
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let err = stranger.connect_websocket(&url).await.unwrap_err();
        assert!(matches!(err, moq_lite::endpoint::EndpointError::Tls(_)), "{err}");
    })
    .await
    .expect("timed out");
}

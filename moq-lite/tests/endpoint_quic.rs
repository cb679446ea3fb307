//! Raw QUIC through the endpoint helpers: ALPN negotiation, the session
//! root, and certificate selection by SNI.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use moq_lite::endpoint::{
    Accepted, Client, ClientConfig, ClientTls, EndpointError, Server, ServerConfig, ServerTls, Transport,
    generate_self_signed,
};
use tokio::sync::mpsc;
use url::Url;

/// A server on 127.0.0.1 presenting `tls`.
fn server(tls: ServerTls) -> (Server, SocketAddr) {
    let server = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls,
        ..Default::default()
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

/// Run the accept loop of `server`, sending every handshake's outcome.
fn serve(server: Server) -> mpsc::UnboundedReceiver<moq_lite::endpoint::Result<Accepted>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(incoming.accept().await);
            });
        }
    });
    rx
}

fn generated() -> ServerTls {
    ServerTls {
        generate: vec!["localhost".into(), "127.0.0.1".into()],
        ..Default::default()
    }
}

fn pinned_client(fingerprints: Vec<String>, protocols: Option<Vec<String>>) -> Client {
    let mut config = ClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ClientTls {
            fingerprints,
            ..Default::default()
        },
        ..Default::default()
    };
    if let Some(protocols) = protocols {
        config.protocols = protocols;
    }
    Client::new(config).unwrap()
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<moq_lite::endpoint::Result<Accepted>>,
) -> moq_lite::endpoint::Result<Accepted> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("server handshake within 5 s")
        .expect("server still running")
}

#[tokio::test]
async fn negotiates_the_first_protocol() {
    let (server, addr) = server(generated());
    let client = pinned_client(server.fingerprints(), None);
    let mut accepted = serve(server);

    let url = Url::parse(&format!("moql://127.0.0.1:{}/room", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.transport, Transport::Quic);
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-06"));
    assert_eq!(connected.path, "/room");
    assert_eq!(connected.remote, addr);

    let accepted = next(&mut accepted).await.unwrap();
    assert_eq!(accepted.transport, Transport::Quic);
    assert_eq!(accepted.protocol.as_deref(), Some("moq-lite-06"));
    assert_eq!(accepted.path, None, "raw QUIC carries no URL");
    assert_eq!(accepted.remote, client.local_addr().unwrap());
}

#[tokio::test]
async fn moqt_scheme_and_older_protocol() {
    let (server, addr) = server(generated());
    let client = pinned_client(server.fingerprints(), Some(vec!["moq-lite-03".into()]));
    let mut accepted = serve(server);

    let url = Url::parse(&format!("moqt://127.0.0.1:{}/", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-03"));
    let accepted = next(&mut accepted).await.unwrap();
    assert_eq!(accepted.protocol.as_deref(), Some("moq-lite-03"));
}

#[tokio::test]
async fn server_preference_wins() {
    // The client prefers the older protocol; for raw QUIC the server picks.
    let (server, addr) = server(generated());
    let client = pinned_client(
        server.fingerprints(),
        Some(vec!["moq-lite-03".into(), "moq-lite-04".into()]),
    );
    let _accepted = serve(server);

    let url = Url::parse(&format!("moql://127.0.0.1:{}/", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-04"));
}

#[tokio::test]
async fn unknown_protocol_fails() {
    let (server, addr) = server(generated());
    let client = pinned_client(server.fingerprints(), Some(vec!["moq-unknown-99".into()]));
    let mut accepted = serve(server);

    let url = Url::parse(&format!("moql://127.0.0.1:{}/", addr.port())).unwrap();
    let err = client.connect(&url).await.unwrap_err();
    match &err {
        EndpointError::NoCommonProtocol { offered } => assert_eq!(offered, &["moq-unknown-99".to_string()]),
        other => panic!("expected NoCommonProtocol, got {other:?}"),
    }
    assert!(err.to_string().contains("moq-unknown-99"), "{err}");
    assert!(next(&mut accepted).await.is_err());
}

#[tokio::test]
async fn raw_quic_needs_a_protocol() {
    let (server, addr) = server(generated());
    let client = pinned_client(server.fingerprints(), Some(vec![]));
    let url = Url::parse(&format!("moql://127.0.0.1:{}/", addr.port())).unwrap();
    assert!(matches!(
        client.connect(&url).await,
        Err(EndpointError::NoProtocols)
    ));
}

#[tokio::test]
async fn unsupported_scheme_lists_the_supported_ones() {
    let client = pinned_client(Vec::new(), None);
    let err = client
        .connect(&Url::parse("wss://127.0.0.1:1/").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, EndpointError::UnsupportedScheme(ref s) if s == "wss"));
    let message = err.to_string();
    for scheme in ["https://", "moqt://", "moql://", "http://"] {
        assert!(message.contains(scheme), "{message}");
    }
}

#[tokio::test]
async fn no_certificate_is_an_error() {
    let err = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, EndpointError::NoCertificate), "{err}");
}

/// The peer's end-entity certificate of a raw quinn connection.
fn peer_cert(conn: &quinn::Connection) -> rustls::pki_types::CertificateDer<'static> {
    let chain = conn
        .peer_identity()
        .unwrap()
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .unwrap();
    chain[0].clone()
}

#[tokio::test]
async fn certificate_chosen_by_sni() {
    let a = generate_self_signed(&["a.test".into()]).unwrap();
    let b = generate_self_signed(&["*.b.test".into()]).unwrap();
    let (server, addr) = server(ServerTls {
        certificates: vec![a.clone(), b.clone()],
        ..Default::default()
    });
    assert_eq!(
        server.fingerprints(),
        vec![a.fingerprint_hex(), b.fingerprint_hex()]
    );
    let _accepted = serve(server);

    // Trust both as roots, so a certificate for the wrong name fails.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(a.end_entity().clone()).unwrap();
    roots.add(b.end_entity().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"moq-lite-04".to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));

    let client = pinned_client(Vec::new(), None);
    let endpoint = client.endpoint();

    let conn = endpoint
        .connect_with(config.clone(), addr, "a.test")
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&peer_cert(&conn), a.end_entity());
    let conn = endpoint
        .connect_with(config.clone(), addr, "x.b.test")
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&peer_cert(&conn), b.end_entity());

    // No SNI (an IP address) or an unknown name: the first certificate, which
    // then fails verification for that name.
    let err = endpoint
        .connect_with(config.clone(), addr, "c.test")
        .unwrap()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

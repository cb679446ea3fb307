//! WebTransport through the endpoint helpers: `wt-protocol` negotiation, the
//! URL path as the session root, and a working session.

use std::{net::SocketAddr, time::Duration};

use moq_lite::endpoint::{
    Accepted, Client, ClientConfig, ClientTls, EndpointError, Server, ServerConfig, ServerTls, Transport,
};
use tokio::sync::mpsc;
use url::Url;
// The generic session API, which the session code is written against; called
// by path because `web_transport_quinn::Session` has inherent methods of the
// same names.
use web_transport_trait as generic;

type Accepts = mpsc::UnboundedReceiver<moq_lite::endpoint::Result<Accepted>>;

/// A server on 127.0.0.1 with a generated certificate, running its accept
/// loop; each handshake's outcome arrives on the channel.
fn server() -> (Vec<String>, SocketAddr, Accepts) {
    let server = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTls {
            generate: vec!["localhost".into()],
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let fingerprints = server.fingerprints();

    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(incoming.accept().await);
            });
        }
    });
    (fingerprints, addr, rx)
}

fn client(fingerprints: Vec<String>, protocols: Option<Vec<String>>) -> Client {
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

async fn next(rx: &mut Accepts) -> moq_lite::endpoint::Result<Accepted> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("server handshake within 5 s")
        .expect("server still running")
}

#[tokio::test]
async fn path_protocol_and_echo() {
    let (fingerprints, addr, mut accepts) = server();
    let client = client(fingerprints, None);

    let url = Url::parse(&format!("https://127.0.0.1:{}/room/a", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.transport, Transport::WebTransport);
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-06"));
    assert_eq!(connected.path, "/room/a");

    let accepted = next(&mut accepts).await.unwrap();
    assert_eq!(accepted.transport, Transport::WebTransport);
    assert_eq!(accepted.protocol.as_deref(), Some("moq-lite-06"));
    assert_eq!(accepted.path.as_deref(), Some("/room/a"));
    assert_eq!(generic::Session::protocol(&accepted.session), Some("moq-lite-06"));

    // The server echoes one bidi stream.
    let server_session = accepted.session;
    let echo = tokio::spawn(async move {
        let (mut send, mut recv) = generic::Session::accept_bi(&server_session).await.unwrap();
        let data = generic::RecvStream::read_all(&mut recv).await.unwrap();
        generic::SendStream::write_all(&mut send, &data).await.unwrap();
        generic::SendStream::finish(&mut send).unwrap();
        // Hold the session until the client has read the echo.
        generic::Session::closed(&server_session).await;
    });

    let session = connected.session;
    let (mut send, mut recv) = generic::Session::open_bi(&session).await.unwrap();
    generic::SendStream::write_all(&mut send, b"hello moq")
        .await
        .unwrap();
    generic::SendStream::finish(&mut send).unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), generic::RecvStream::read_all(&mut recv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed[..], b"hello moq");

    generic::Session::close(&session, 0, "done");
    tokio::time::timeout(Duration::from_secs(5), echo)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn client_preference_wins() {
    // For WebTransport the server selects the first protocol the client lists.
    let (fingerprints, addr, mut accepts) = server();
    let client = client(
        fingerprints,
        Some(vec!["moq-unknown".into(), "moql".into(), "moq-lite-04".into()]),
    );

    let url = Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.protocol.as_deref(), Some("moql"));
    assert_eq!(connected.path, "/");
    let accepted = next(&mut accepts).await.unwrap();
    assert_eq!(accepted.protocol.as_deref(), Some("moql"));
    assert_eq!(accepted.path.as_deref(), Some("/"));
}

#[tokio::test]
async fn no_protocols_offered() {
    let (fingerprints, addr, mut accepts) = server();
    let client = client(fingerprints, Some(Vec::new()));

    let url = Url::parse(&format!("https://127.0.0.1:{}/room", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.protocol, None);
    let accepted = next(&mut accepts).await.unwrap();
    assert_eq!(accepted.protocol, None);
    assert_eq!(accepted.path.as_deref(), Some("/room"));
}

#[tokio::test]
async fn no_common_protocol_is_rejected() {
    let (fingerprints, addr, mut accepts) = server();
    let client = client(fingerprints, Some(vec!["moq-unknown".into()]));

    let url = Url::parse(&format!("https://127.0.0.1:{}/room", addr.port())).unwrap();
    let err = client.connect(&url).await.unwrap_err();
    match err {
        EndpointError::Rejected(status) => assert_eq!(status.as_u16(), 400),
        other => panic!("expected Rejected, got {other:?}"),
    }
    match next(&mut accepts).await.unwrap_err() {
        EndpointError::NoCommonProtocol { offered } => assert_eq!(offered, ["moq-unknown".to_string()]),
        other => panic!("expected NoCommonProtocol, got {other:?}"),
    }
}

#[tokio::test]
async fn percent_encoded_path_is_kept() {
    let (fingerprints, addr, mut accepts) = server();
    let client = client(fingerprints, None);

    let url = Url::parse(&format!("https://127.0.0.1:{}/room%20one/b", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.path, "/room%20one/b");
    let accepted = next(&mut accepts).await.unwrap();
    assert_eq!(accepted.path.as_deref(), Some("/room%20one/b"));
}

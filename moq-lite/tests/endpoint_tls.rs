//! Certificate verification through the endpoint helpers: `http://`
//! development mode (fetch and pin `/certificate.sha256`), disabled
//! verification, PEM roots, and the hints in TLS errors.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use moq_lite::endpoint::{
    Accepted, Client, ClientConfig, ClientTls, EndpointError, PemFiles, Server, ServerConfig, ServerTls,
    Transport, generate_self_signed,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};
use url::Url;

type Accepts = mpsc::UnboundedReceiver<moq_lite::endpoint::Result<Accepted>>;

/// A server on 127.0.0.1 presenting `tls`, running its accept loop.
fn server(tls: ServerTls) -> (Vec<String>, SocketAddr, Accepts) {
    let server = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls,
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

fn generated() -> ServerTls {
    ServerTls {
        generate: vec!["localhost".into()],
        ..Default::default()
    }
}

fn client(tls: ClientTls) -> Client {
    Client::new(ClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls,
        ..Default::default()
    })
    .unwrap()
}

/// Serve `body` at `GET /certificate.sha256` on TCP `port`, as a development
/// relay does; anything else gets a 404.
async fn serve_fingerprint(port: u16, body: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 512];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let response = if request.starts_with(b"GET /certificate.sha256 HTTP/1.1\r\n") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                };
                stream.write_all(response.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
}

async fn next(rx: &mut Accepts) -> moq_lite::endpoint::Result<Accepted> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("server handshake within 5 s")
        .expect("server still running")
}

fn assert_tls_hint(err: &EndpointError) {
    assert!(
        matches!(err, EndpointError::Tls(_)),
        "expected a TLS error, got {err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("--tls-disable-verify"), "{message}");
    assert!(message.contains("http://"), "{message}");
}

#[tokio::test]
async fn http_dev_mode_pins_the_served_fingerprint() {
    let (fingerprints, addr, mut accepts) = server(generated());
    serve_fingerprint(addr.port(), format!("{}\n", fingerprints[0])).await;

    // Default TLS settings: the system roots would never trust this server.
    let client = client(ClientTls::default());
    let url = Url::parse(&format!("http://127.0.0.1:{}/room", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.transport, Transport::WebTransport);
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-06"));
    assert_eq!(connected.path, "/room");

    let accepted = next(&mut accepts).await.unwrap();
    assert_eq!(accepted.transport, Transport::WebTransport);
    assert_eq!(accepted.path.as_deref(), Some("/room"));
}

#[tokio::test]
async fn http_dev_mode_rejects_a_wrong_fingerprint() {
    let (_, addr, _accepts) = server(generated());
    let other = generate_self_signed(&["localhost".into()]).unwrap();
    serve_fingerprint(addr.port(), other.fingerprint_hex()).await;

    let client = client(ClientTls::default());
    let url = Url::parse(&format!("http://127.0.0.1:{}/room", addr.port())).unwrap();
    let err = client.connect(&url).await.unwrap_err();
    assert_tls_hint(&err);
    assert!(err.to_string().contains("not pinned"), "{err}");
}

#[tokio::test]
async fn http_dev_mode_without_a_fingerprint_server() {
    let (_, addr, _accepts) = server(generated());
    // Nothing listens on TCP.
    let client = client(ClientTls::default());
    let url = Url::parse(&format!("http://127.0.0.1:{}/", addr.port())).unwrap();
    let err = client.connect(&url).await.unwrap_err();
    assert!(matches!(err, EndpointError::Fingerprint { .. }), "{err:?}");
    assert!(err.to_string().contains("/certificate.sha256"), "{err}");
}

#[tokio::test]
async fn http_dev_mode_rejects_garbage() {
    let (_, addr, _accepts) = server(generated());
    serve_fingerprint(addr.port(), "not a fingerprint".into()).await;
    let client = client(ClientTls::default());
    let url = Url::parse(&format!("http://127.0.0.1:{}/", addr.port())).unwrap();
    let err = client.connect(&url).await.unwrap_err();
    assert!(matches!(err, EndpointError::Fingerprint { .. }), "{err:?}");
}

#[tokio::test]
async fn disable_verify_accepts_an_untrusted_certificate() {
    let (_, addr, _accepts) = server(generated());
    let client = client(ClientTls {
        disable_verify: true,
        ..Default::default()
    });

    for scheme in ["https", "moql"] {
        let url = Url::parse(&format!("{scheme}://127.0.0.1:{}/room", addr.port())).unwrap();
        let connected = client.connect(&url).await.unwrap();
        assert_eq!(connected.protocol.as_deref(), Some("moq-lite-06"));
    }
}

#[tokio::test]
async fn untrusted_certificate_fails_with_a_hint() {
    let (_, addr, _accepts) = server(generated());

    let default = client(ClientTls::default());
    let no_roots = client(ClientTls {
        system_roots: false,
        ..Default::default()
    });

    for client in [default, no_roots] {
        for scheme in ["https", "moql"] {
            let url = Url::parse(&format!("{scheme}://127.0.0.1:{}/room", addr.port())).unwrap();
            let err = client.connect(&url).await.unwrap_err();
            assert_tls_hint(&err);
        }
    }
}

#[tokio::test]
async fn pinned_fingerprint_with_colons() {
    let (fingerprints, addr, _accepts) = server(generated());
    let colons = fingerprints[0]
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let client = client(ClientTls {
        fingerprints: vec![colons],
        ..Default::default()
    });
    let url = Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).unwrap();
    client.connect(&url).await.unwrap();

    let err = Client::new(ClientConfig {
        tls: ClientTls {
            fingerprints: vec!["abcd".into()],
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, EndpointError::InvalidFingerprint(_)), "{err:?}");
}

/// A unique scratch directory for PEM files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moq-endpoint-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn pem_files_on_both_sides() {
    // A certificate made elsewhere (here by rcgen directly), stored as PEM.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = scratch_dir("pem");
    let chain = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&chain, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let (_, addr, mut accepts) = server(ServerTls {
        pem: vec![PemFiles {
            chain: chain.clone(),
            key: key_path.clone(),
        }],
        ..Default::default()
    });

    // The certificate as a root: full web PKI verification, name included.
    let client = client(ClientTls {
        roots: vec![chain.clone()],
        system_roots: false,
        ..Default::default()
    });
    let url = Url::parse(&format!("moql://127.0.0.1:{}/room", addr.port())).unwrap();
    let connected = client.connect(&url).await.unwrap();
    assert_eq!(connected.protocol.as_deref(), Some("moq-lite-06"));
    assert!(next(&mut accepts).await.is_ok());

    // A missing file names itself in the error.
    let missing = dir.join("missing.pem");
    let err = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTls {
            pem: vec![PemFiles {
                chain: missing.clone(),
                key: key_path,
            }],
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, EndpointError::Pem { ref path, .. } if path == &missing),
        "{err:?}"
    );

    std::fs::remove_dir_all(&dir).ok();
}

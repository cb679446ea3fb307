//! Loopback endpoints for session tests: a server on 127.0.0.1 with a
//! generated certificate, and clients that pin it.

#![allow(dead_code)]

use moq_lite::endpoint::{Client, ClientConfig, ClientTls, Server, ServerConfig, ServerTls};

/// A server on a free loopback port with a generated certificate.
pub fn server() -> Server {
    Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTls {
            generate: vec!["localhost".into(), "127.0.0.1".into()],
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("server binds")
}

/// `config` on a free loopback port, trusting only `server`'s certificate.
pub fn client(server: &Server, config: ClientConfig) -> Client {
    Client::new(ClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ClientTls {
            fingerprints: server.fingerprints(),
            system_roots: false,
            ..Default::default()
        },
        ..config
    })
    .expect("client binds")
}

/// A client offering only `protocols` (see [`client`]).
pub fn client_offering(server: &Server, protocols: &[&str]) -> Client {
    client(
        server,
        ClientConfig {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        },
    )
}

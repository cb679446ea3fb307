//! Choosing the server certificate by the TLS server name (SNI).

use std::sync::Arc;

use rustls::{
    client::verify_server_name,
    pki_types::{DnsName, ServerName},
    server::{ClientHello, ParsedCertificate, ResolvesServerCert},
    sign::CertifiedKey,
};

/// Presents the first certificate valid for the server name the client asked
/// for (wildcards included), or the first certificate if none is, or if the
/// client sent no name (it connected to an IP address).
#[derive(Debug)]
pub(crate) struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// `keys` must not be empty.
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> Self {
        assert!(!keys.is_empty(), "at least one certificate");
        Self { keys }
    }

    fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = ServerName::DnsName(DnsName::try_from(name).ok()?.to_owned());
        self.keys.iter().find(|key| {
            key.end_entity_cert()
                .and_then(ParsedCertificate::try_from)
                .and_then(|cert| verify_server_name(&cert, &name))
                .is_ok()
        })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = hello.server_name().and_then(|name| self.find(name));
        Some(key.unwrap_or(&self.keys[0]).clone())
    }
}

//! TLS certificates: generating self-signed ones, loading PEM files, and
//! SHA-256 fingerprints.
//!
//! Browsers accept a certificate pinned by hash (WebTransport's
//! `serverCertificateHashes`) only if it is ECDSA and valid for at most 14
//! days, so that is what [`generate_self_signed`] makes. The fingerprint is
//! the SHA-256 of the end-entity certificate's DER bytes, computed with
//! rustls' ring provider.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{EndpointError, Result};

/// How long before "now" a generated certificate becomes valid, to tolerate
/// clocks that are behind.
const BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// The total validity of a generated certificate: the most browsers accept
/// for a certificate pinned by hash.
const VALIDITY: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Certificate {
    /// The chain, end-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Certificate {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Certificate {
    /// Load a chain (one or more `CERTIFICATE` blocks, end-entity first) and a
    /// private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn load(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let chain_path = chain.as_ref();
        let key_path = key.as_ref();
        let chain = load_certs(chain_path)?;
        if chain.is_empty() {
            return Err(EndpointError::Pem {
                path: chain_path.into(),
                reason: "no CERTIFICATE found".into(),
            });
        }

        let pem = std::fs::read(key_path).map_err(|err| pem_error(key_path, err))?;
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|err| pem_error(key_path, err))?
            .ok_or_else(|| EndpointError::Pem {
                path: key_path.into(),
                reason: "no PRIVATE KEY found".into(),
            })?;

        Ok(Self { chain, key })
    }

    /// The end-entity certificate (the first of the chain).
    ///
    /// # Panics
    /// If the chain is empty, which [`Self::load`] and [`generate_self_signed`]
    /// never produce.
    pub fn end_entity(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The SHA-256 of the end-entity certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(self.end_entity())
    }

    /// [`Self::fingerprint`] as lowercase hex.
    pub fn fingerprint_hex(&self) -> String {
        fingerprint_hex(self.end_entity())
    }
}

/// Read every `CERTIFICATE` block of a PEM file.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|err| pem_error(path, err))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, err))
}

fn pem_error(path: &Path, err: std::io::Error) -> EndpointError {
    EndpointError::Pem {
        path: path.into(),
        reason: err.to_string(),
    }
}

/// Generate a self-signed ECDSA P-256 certificate for `names`.
///
/// Each name becomes a subject alternative name: an IP address SAN if it
/// parses as one (`127.0.0.1`, `::1`), a DNS name SAN otherwise. No names
/// means `localhost`. The certificate is valid from a day ago for 14 days in
/// total (so 13 days from now), the most browsers accept for a certificate
/// pinned by hash: regenerate it (restart the server) within that time.
pub fn generate_self_signed(names: &[String]) -> Result<Certificate> {
    let names = match names {
        [] => vec!["localhost".to_string()],
        names => names.to_vec(),
    };

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());

    // Whole seconds, as X.509 encodes them, so the validity is exactly VALIDITY.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let not_before = UNIX_EPOCH + Duration::from_secs(now) - BACKDATE;
    params.not_before = not_before.into();
    params.not_after = (not_before + VALIDITY).into();

    let cert = params.self_signed(&key)?;
    Ok(Certificate {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// The SHA-256 of a certificate's DER bytes.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    sha256(cert.as_ref())
}

/// [`fingerprint`] as lowercase hex without separators, the form served at
/// `/certificate.sha256` and accepted by [`parse_fingerprint`].
pub fn fingerprint_hex(cert: &CertificateDer<'_>) -> String {
    fingerprint(cert).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a SHA-256 fingerprint written as 64 hex digits, either case,
/// optionally separated by colons (`AB:CD:...`) and surrounded by whitespace.
pub fn parse_fingerprint(hex: &str) -> Result<[u8; 32]> {
    let invalid = || EndpointError::InvalidFingerprint(hex.trim().to_string());
    let digits: Vec<u8> = hex
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;

    if digits.len() != 64 {
        return Err(invalid());
    }

    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Ok(out)
}

/// SHA-256 through rustls' ring provider (the hash of its TLS 1.3
/// AES-128-GCM-SHA256 suite), so no separate hashing crate is needed.
fn sha256(data: &[u8]) -> [u8; 32] {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite");
    let digest = suite.common.hash_provider.hash(data);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected =
            parse_fingerprint("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
        assert_eq!(sha256(b"abc"), expected);
    }

    #[test]
    fn parse_fingerprint_forms() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let colons = bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");

        assert_eq!(parse_fingerprint(&hex).unwrap(), bytes);
        assert_eq!(parse_fingerprint(&format!(" {colons}\n")).unwrap(), bytes);
        assert!(parse_fingerprint(&hex[2..]).is_err());
        assert!(parse_fingerprint(&format!("{}zz", &hex[2..])).is_err());
        assert!(parse_fingerprint("").is_err());
    }

    #[test]
    fn generated_fingerprint_matches_hex() {
        let cert = generate_self_signed(&["localhost".into()]).unwrap();
        assert_eq!(
            parse_fingerprint(&cert.fingerprint_hex()).unwrap(),
            cert.fingerprint()
        );
    }
}

//! Signing and verification keys: HS256, ES256 and EdDSA (Ed25519).
//!
//! The file format is a single JWK (RFC 7517) JSON object, because it is the
//! one format that carries the algorithm and the key material for all three
//! kinds. Private keys carry `d` (EC, OKP) or `k` (oct); a public key file is
//! the same object without them, and can only verify.
//!
//! ```json
//! {"kty":"oct","alg":"HS256","k":"<base64url secret, at least 32 bytes>"}
//! {"kty":"EC","alg":"ES256","crv":"P-256","x":"..","y":"..","d":".."}
//! {"kty":"OKP","alg":"EdDSA","crv":"Ed25519","x":"..","d":".."}
//! ```
//!
//! PEM is accepted when loading ES256 and EdDSA keys: PKCS#8 `PRIVATE KEY`
//! (what `openssl genpkey` writes), SEC1 `EC PRIVATE KEY` (what
//! `openssl ecparam -genkey` writes) and SPKI `PUBLIC KEY`, read with
//! `rustls-pki-types` (PEM) and RustCrypto's `pkcs8`, `sec1` and `spki`
//! (DER). Keys are always saved as JWK.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{DecodingKey, EncodingKey};
use pkcs8::der::Decode;
use pkcs8::der::asn1::OctetStringRef;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use rustls_pki_types::pem::{self, SectionKind};
use serde::{Deserialize, Serialize};

/// base64url as JWK and JWT use it: no padding written, padding tolerated.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The shortest HS256 secret accepted: RFC 7518 §3.2 asks for at least the
/// hash size (256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// The largest key file [`Key::load`] reads.
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// A token signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret: whoever can verify can also sign.
    HS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// The JOSE name (`HS256`, `ES256`, `EdDSA`), as in a token's header.
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn jwt(&self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    /// The JOSE name, case-insensitively; `Ed25519` is accepted for EdDSA.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hs256" => Ok(Algorithm::HS256),
            "es256" => Ok(Algorithm::ES256),
            "eddsa" | "ed25519" => Ok(Algorithm::EdDSA),
            _ => Err(KeyError::Unsupported(format!("algorithm {s:?}"))),
        }
    }
}

/// Why a key could not be generated, loaded, saved or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("key file: {0}")]
    Io(#[from] std::io::Error),
    /// The key file is larger than [`MAX_KEY_FILE_LEN`].
    #[error("key file larger than {MAX_KEY_FILE_LEN} bytes")]
    TooLarge,
    /// Not a JWK or PEM document we can read.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// A well-formed key of a kind this relay does not support.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// The key material is inconsistent or rejected by the crypto library.
    #[error("invalid key: {0}")]
    Invalid(String),
    /// An HS256 secret shorter than [`MIN_SECRET_LEN`].
    #[error("HS256 secret is {0} bytes; at least {MIN_SECRET_LEN} are required")]
    WeakSecret(usize),
    /// Signing needs the private part, and this is a public key.
    #[error("{0} public key cannot sign")]
    PublicOnly(Algorithm),
    /// HS256 has no public part to export.
    #[error("HS256 keys have no public part")]
    NoPublicPart,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

#[derive(Clone)]
enum Material {
    /// The shared HS256 secret.
    Secret(Vec<u8>),
    /// P-256: the uncompressed public point (`04 || x || y`) and the scalar.
    Ec {
        public: Vec<u8>,
        private: Option<Vec<u8>>,
    },
    /// Ed25519: the public key and the 32-byte seed.
    Ed {
        public: Vec<u8>,
        private: Option<Vec<u8>>,
    },
}

/// A key that verifies tokens and, when it holds the private part, signs them.
///
/// Cheap enough to clone (the material is a few dozen bytes). `Debug` never
/// prints secret material.
#[derive(Clone)]
pub struct Key {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("private", &self.can_sign())
            .finish()
    }
}

impl Key {
    /// A fresh random key: a 32-byte secret for HS256, a new key pair for
    /// ES256 and EdDSA, all from the system's secure random generator.
    pub fn generate(alg: Algorithm) -> Result<Key, KeyError> {
        let rng = SystemRandom::new();
        let material = match alg {
            Algorithm::HS256 => {
                let mut secret = vec![0u8; MIN_SECRET_LEN];
                rng.fill(&mut secret).map_err(|_| KeyError::Rng)?;
                Material::Secret(secret)
            }
            Algorithm::ES256 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Rng)?;
                ec_from_pkcs8(pkcs8.as_ref())?
            }
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Rng)?;
                ed_from_pkcs8(pkcs8.as_ref())?
            }
        };
        Key::new(alg, None, material)
    }

    /// An HS256 key from a raw shared secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Key, KeyError> {
        Key::new(Algorithm::HS256, None, Material::Secret(secret.to_vec()))
    }

    /// Reads a key file: a JWK object, or PEM for ES256/EdDSA keys.
    pub fn load(path: &std::path::Path) -> Result<Key, KeyError> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let mut text = String::new();
        file.take(MAX_KEY_FILE_LEN + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(KeyError::TooLarge);
        }
        Key::parse(&text)
    }

    /// Parses a key: a JWK object if the text starts with `{`, else PEM.
    pub fn parse(text: &str) -> Result<Key, KeyError> {
        let text = text.trim_start();
        if text.starts_with('{') {
            Key::from_jwk(text)
        } else if text.starts_with("-----BEGIN") {
            Key::from_pem(text)
        } else {
            Err(KeyError::Malformed(
                "neither a JWK (JSON) nor a PEM document".into(),
            ))
        }
    }

    /// Writes the key as a JWK file, private parts included. On Unix a file
    /// holding a private key or secret is created readable by its owner only.
    pub fn save(&self, path: &std::path::Path) -> Result<(), KeyError> {
        let mut text = self.to_jwk();
        text.push('\n');
        write_file(path, text.as_bytes(), self.can_sign())?;
        Ok(())
    }

    /// Parses a JWK object (RFC 7517). `alg` may be left out; it follows from
    /// `kty`/`crv`. Unknown members are ignored.
    pub fn from_jwk(json: &str) -> Result<Key, KeyError> {
        let jwk: Jwk = serde_json::from_str(json).map_err(|e| KeyError::Malformed(format!("JWK: {e}")))?;
        let (alg, material) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("oct", _) => {
                let k = b64_member(&jwk.k, "k")?.ok_or_else(|| missing("k"))?;
                (Algorithm::HS256, Material::Secret(k))
            }
            ("EC", Some("P-256")) => {
                let x = b64_member(&jwk.x, "x")?.ok_or_else(|| missing("x"))?;
                let y = b64_member(&jwk.y, "y")?.ok_or_else(|| missing("y"))?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::Invalid("P-256 coordinates must be 32 bytes".into()));
                }
                let mut public = Vec::with_capacity(65);
                public.push(0x04);
                public.extend_from_slice(&x);
                public.extend_from_slice(&y);
                let private = b64_member(&jwk.d, "d")?;
                (Algorithm::ES256, Material::Ec { public, private })
            }
            ("OKP", Some("Ed25519")) => {
                let public = b64_member(&jwk.x, "x")?.ok_or_else(|| missing("x"))?;
                let private = b64_member(&jwk.d, "d")?;
                (Algorithm::EdDSA, Material::Ed { public, private })
            }
            (kty, crv) => {
                return Err(KeyError::Unsupported(format!("kty {kty:?} with crv {crv:?}")));
            }
        };
        if let Some(name) = &jwk.alg {
            let named: Algorithm = name.parse()?;
            if named != alg {
                return Err(KeyError::Invalid(format!(
                    "alg {name:?} does not match kty {:?}",
                    jwk.kty
                )));
            }
        }
        Key::new(alg, jwk.kid, material)
    }

    /// The key as a JWK object, private parts included.
    pub fn to_jwk(&self) -> String {
        let mut jwk = Jwk {
            kty: String::new(),
            alg: Some(self.alg.as_str().to_string()),
            kid: self.kid.clone(),
            crv: None,
            x: None,
            y: None,
            d: None,
            k: None,
        };
        let enc = |b: &[u8]| Some(B64.encode(b));
        match &self.material {
            Material::Secret(k) => {
                jwk.kty = "oct".into();
                jwk.k = enc(k);
            }
            Material::Ec { public, private } => {
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = enc(&public[1..33]);
                jwk.y = enc(&public[33..65]);
                jwk.d = private.as_deref().and_then(enc);
            }
            Material::Ed { public, private } => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = enc(public);
                jwk.d = private.as_deref().and_then(enc);
            }
        }
        serde_json::to_string(&jwk).expect("a JWK of strings always serialises")
    }

    /// Parses a PEM document: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or
    /// SPKI `PUBLIC KEY`, for P-256 or Ed25519. Only the first block is read.
    pub fn from_pem(text: &str) -> Result<Key, KeyError> {
        let (kind, der) = pem_decode(text)?;
        let (alg, material) = match kind {
            SectionKind::PrivateKey => pkcs8_private(&der)?,
            SectionKind::EcPrivateKey => (Algorithm::ES256, sec1_private(&der)?),
            SectionKind::PublicKey => spki_public(&der)?,
            other => return Err(KeyError::Unsupported(format!("PEM block {other:?}"))),
        };
        Key::new(alg, None, material)
    }

    /// The public half of an ES256 or EdDSA key, which can verify but not sign:
    /// what to hand to relays that only check tokens.
    pub fn to_public(&self) -> Result<Key, KeyError> {
        let material = match &self.material {
            Material::Secret(_) => return Err(KeyError::NoPublicPart),
            Material::Ec { public, .. } => Material::Ec {
                public: public.clone(),
                private: None,
            },
            Material::Ed { public, .. } => Material::Ed {
                public: public.clone(),
                private: None,
            },
        };
        Key::new(self.alg, self.kid.clone(), material)
    }

    /// This key with a key id, written to the JWK and to tokens' `kid` header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Key {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs and verifies with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key holds a secret or private part, and so can sign.
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    pub(crate) fn encoding(&self) -> Result<&EncodingKey, KeyError> {
        self.encoding.as_ref().ok_or(KeyError::PublicOnly(self.alg))
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Checks the material and builds the jsonwebtoken keys.
    fn new(alg: Algorithm, kid: Option<String>, material: Material) -> Result<Key, KeyError> {
        let (encoding, decoding) = match &material {
            Material::Secret(secret) => {
                if secret.len() < MIN_SECRET_LEN {
                    return Err(KeyError::WeakSecret(secret.len()));
                }
                (
                    Some(EncodingKey::from_secret(secret)),
                    DecodingKey::from_secret(secret),
                )
            }
            Material::Ec { public, private } => {
                if public.len() != 65 || public[0] != 0x04 {
                    return Err(KeyError::Invalid(
                        "P-256 public key must be an uncompressed point".into(),
                    ));
                }
                let encoding = match private {
                    None => None,
                    Some(d) => {
                        if d.len() != 32 {
                            return Err(KeyError::Invalid("P-256 private key must be 32 bytes".into()));
                        }
                        let pkcs8 = [EC_PKCS8_PREFIX, d, EC_PKCS8_MIDDLE, public].concat();
                        // ring checks that the scalar and the point belong together.
                        EcdsaKeyPair::from_pkcs8(
                            &ECDSA_P256_SHA256_FIXED_SIGNING,
                            &pkcs8,
                            &SystemRandom::new(),
                        )
                        .map_err(|e| KeyError::Invalid(format!("P-256 key pair: {e}")))?;
                        Some(EncodingKey::from_ec_der(&pkcs8))
                    }
                };
                (encoding, DecodingKey::from_ec_der(public))
            }
            Material::Ed { public, private } => {
                if public.len() != 32 {
                    return Err(KeyError::Invalid("Ed25519 public key must be 32 bytes".into()));
                }
                let encoding = match private {
                    None => None,
                    Some(seed) => {
                        if seed.len() != 32 {
                            return Err(KeyError::Invalid("Ed25519 private key must be 32 bytes".into()));
                        }
                        let pkcs8 = [ED_PKCS8_PREFIX, seed, ED_PKCS8_MIDDLE, public].concat();
                        // from_pkcs8 (v2) checks that the seed and public key match.
                        Ed25519KeyPair::from_pkcs8(&pkcs8)
                            .map_err(|e| KeyError::Invalid(format!("Ed25519 key pair: {e}")))?;
                        Some(EncodingKey::from_ed_der(&pkcs8))
                    }
                };
                (encoding, DecodingKey::from_ed_der(public))
            }
        };
        Ok(Key {
            alg,
            kid,
            material,
            encoding,
            decoding,
        })
    }
}

/// Writes `bytes` to a new or truncated file, owner-only on Unix if `private`.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[derive(Serialize, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
}

fn missing(member: &str) -> KeyError {
    KeyError::Malformed(format!("JWK has no {member:?}"))
}

fn b64_member(value: &Option<String>, member: &str) -> Result<Option<Vec<u8>>, KeyError> {
    value
        .as_deref()
        .map(|v| {
            B64.decode(v)
                .map_err(|e| KeyError::Malformed(format!("JWK {member:?}: {e}")))
        })
        .transpose()
}

// PKCS#8 documents in exactly the shape ring generates (and accepts): P-256
// v1 with the public key inside the ECPrivateKey, Ed25519 v2.
const EC_PKCS8_PREFIX: &[u8] = &[
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01,
    0x04, 0x20,
];
const EC_PKCS8_MIDDLE: &[u8] = &[0xa1, 0x44, 0x03, 0x42, 0x00];
const ED_PKCS8_PREFIX: &[u8] = &[
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED_PKCS8_MIDDLE: &[u8] = &[0x81, 0x21, 0x00];

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn ec_from_pkcs8(pkcs8: &[u8]) -> Result<Material, KeyError> {
    match pkcs8_private(pkcs8)? {
        (Algorithm::ES256, material) => Ok(material),
        _ => Err(KeyError::Invalid("generated key is not P-256".into())),
    }
}

fn ed_from_pkcs8(pkcs8: &[u8]) -> Result<Material, KeyError> {
    match pkcs8_private(pkcs8)? {
        (Algorithm::EdDSA, material) => Ok(material),
        _ => Err(KeyError::Invalid("generated key is not Ed25519".into())),
    }
}

/// A DER document the key crates refused.
fn malformed(err: impl fmt::Display) -> KeyError {
    KeyError::Malformed(format!("bad DER: {err}"))
}

/// PKCS#8 `PrivateKeyInfo` (v1 or v2) for P-256 or Ed25519.
fn pkcs8_private(der: &[u8]) -> Result<(Algorithm, Material), KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(malformed)?;
    let oid = info.algorithm.oid;
    if oid.as_bytes() == OID_EC_PUBLIC_KEY {
        p256(info.algorithm.parameters_oid().map_err(malformed)?.as_bytes())?;
        Ok((Algorithm::ES256, sec1_private(info.private_key.as_bytes())?))
    } else if oid.as_bytes() == OID_ED25519 {
        // RFC 8410: the private key is an OCTET STRING holding the seed.
        let seed = <&OctetStringRef>::from_der(info.private_key.as_bytes()).map_err(malformed)?;
        let seed = seed.as_bytes();
        if seed.len() != 32 {
            return Err(KeyError::Invalid("Ed25519 private key must be 32 bytes".into()));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| KeyError::Invalid(format!("Ed25519 seed: {e}")))?;
        Ok((
            Algorithm::EdDSA,
            Material::Ed {
                public: pair.public_key().as_ref().to_vec(),
                private: Some(seed.to_vec()),
            },
        ))
    } else {
        Err(KeyError::Unsupported(
            "private key algorithm other than P-256 or Ed25519".into(),
        ))
    }
}

/// SEC1 `ECPrivateKey`; the public key must be present.
fn sec1_private(der: &[u8]) -> Result<Material, KeyError> {
    let key = sec1::EcPrivateKey::try_from(der).map_err(malformed)?;
    if let Some(params) = &key.parameters {
        let curve = params
            .named_curve()
            .ok_or_else(|| KeyError::Unsupported("EC parameters other than a named curve".into()))?;
        p256(curve.as_bytes())?;
    }
    let public = key
        .public_key
        .ok_or_else(|| KeyError::Unsupported("EC private key without its public key".into()))?;
    Ok(Material::Ec {
        public: public.to_vec(),
        private: Some(key.private_key.to_vec()),
    })
}

/// SPKI `SubjectPublicKeyInfo` for P-256 or Ed25519.
fn spki_public(der: &[u8]) -> Result<(Algorithm, Material), KeyError> {
    let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(malformed)?;
    let public = info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::Malformed("BIT STRING with unused bits".into()))?
        .to_vec();
    let oid = info.algorithm.oid;
    if oid.as_bytes() == OID_EC_PUBLIC_KEY {
        p256(info.algorithm.parameters_oid().map_err(malformed)?.as_bytes())?;
        Ok((
            Algorithm::ES256,
            Material::Ec {
                public,
                private: None,
            },
        ))
    } else if oid.as_bytes() == OID_ED25519 {
        Ok((
            Algorithm::EdDSA,
            Material::Ed {
                public,
                private: None,
            },
        ))
    } else {
        Err(KeyError::Unsupported(
            "public key algorithm other than P-256 or Ed25519".into(),
        ))
    }
}

/// Checks that an EC curve OID is P-256.
fn p256(curve: &[u8]) -> Result<(), KeyError> {
    match curve {
        OID_P256 => Ok(()),
        _ => Err(KeyError::Unsupported("EC curve other than P-256".into())),
    }
}

/// The kind and the decoded body of the first PEM section in `text`.
fn pem_decode(text: &str) -> Result<(SectionKind, Vec<u8>), KeyError> {
    match pem::from_buf(&mut text.as_bytes()) {
        Ok(Some(section)) => Ok(section),
        Ok(None) => Err(KeyError::Malformed(
            "PEM: no key (encrypted keys are not supported)".into(),
        )),
        Err(err) => Err(KeyError::Malformed(format!("PEM: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_what_ring_generates() {
        let rng = SystemRandom::new();
        let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = ec.as_ref();
        assert_eq!(ec.len(), EC_PKCS8_PREFIX.len() + 32 + EC_PKCS8_MIDDLE.len() + 65);
        assert!(ec.starts_with(EC_PKCS8_PREFIX));
        assert_eq!(
            &ec[EC_PKCS8_PREFIX.len() + 32..][..EC_PKCS8_MIDDLE.len()],
            EC_PKCS8_MIDDLE
        );

        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = ed.as_ref();
        assert_eq!(ed.len(), ED_PKCS8_PREFIX.len() + 32 + ED_PKCS8_MIDDLE.len() + 32);
        assert!(ed.starts_with(ED_PKCS8_PREFIX));
        assert_eq!(
            &ed[ED_PKCS8_PREFIX.len() + 32..][..ED_PKCS8_MIDDLE.len()],
            ED_PKCS8_MIDDLE
        );
    }

    #[test]
    fn jwk_round_trip() {
        for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA] {
            let key = Key::generate(alg).unwrap().with_kid("k1");
            let again = Key::from_jwk(&key.to_jwk()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.kid(), Some("k1"));
            assert!(again.can_sign());
            assert_eq!(again.to_jwk(), key.to_jwk());
        }
    }

    #[test]
    fn public_part() {
        assert!(matches!(
            Key::generate(Algorithm::HS256).unwrap().to_public(),
            Err(KeyError::NoPublicPart)
        ));
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let public = Key::generate(alg).unwrap().to_public().unwrap();
            assert!(!public.can_sign());
            assert!(!public.to_jwk().contains("\"d\""));
            assert!(!Key::from_jwk(&public.to_jwk()).unwrap().can_sign());
        }
    }

    #[test]
    fn mismatched_private_key_refused() {
        let a = Key::generate(Algorithm::ES256).unwrap();
        let b = Key::generate(Algorithm::ES256).unwrap();
        let a: serde_json::Value = serde_json::from_str(&a.to_jwk()).unwrap();
        let mut b: serde_json::Value = serde_json::from_str(&b.to_jwk()).unwrap();
        b["d"] = a["d"].clone();
        assert!(matches!(Key::from_jwk(&b.to_string()), Err(KeyError::Invalid(_))));

        let a = Key::generate(Algorithm::EdDSA).unwrap();
        let b = Key::generate(Algorithm::EdDSA).unwrap();
        let a: serde_json::Value = serde_json::from_str(&a.to_jwk()).unwrap();
        let mut b: serde_json::Value = serde_json::from_str(&b.to_jwk()).unwrap();
        b["d"] = a["d"].clone();
        assert!(matches!(Key::from_jwk(&b.to_string()), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn bad_jwks_refused() {
        assert!(matches!(Key::from_jwk("{}"), Err(KeyError::Malformed(_))));
        assert!(matches!(
            Key::from_jwk(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
            Err(KeyError::Unsupported(_))
        ));
        assert!(matches!(
            Key::from_jwk(r#"{"kty":"oct","k":"c2hvcnQ"}"#),
            Err(KeyError::WeakSecret(5))
        ));
        let hs = Key::generate(Algorithm::HS256)
            .unwrap()
            .to_jwk()
            .replace("HS256", "ES256");
        assert!(matches!(Key::from_jwk(&hs), Err(KeyError::Invalid(_))));
        assert!(matches!(Key::parse("hello"), Err(KeyError::Malformed(_))));
    }

    #[test]
    fn truncated_documents_are_refused() {
        let rng = SystemRandom::new();
        let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        assert!(pkcs8_private(ec.as_ref()).is_ok());
        for n in 0..ec.as_ref().len() {
            assert!(pkcs8_private(&ec.as_ref()[..n]).is_err(), "{n} bytes");
            assert!(spki_public(&ec.as_ref()[..n]).is_err(), "{n} bytes");
        }
    }

    #[test]
    fn algorithm_names() {
        assert_eq!("es256".parse::<Algorithm>().unwrap(), Algorithm::ES256);
        assert_eq!("Ed25519".parse::<Algorithm>().unwrap(), Algorithm::EdDSA);
        assert_eq!("HS256".parse::<Algorithm>().unwrap(), Algorithm::HS256);
        assert!("none".parse::<Algorithm>().is_err());
        assert!("RS256".parse::<Algorithm>().is_err());
    }
}

//! Token auth: who may publish and subscribe where.
//!
//! A client connects to `https://relay/<path>?jwt=<token>`. The URL path is
//! the session's root; the token is a JWT (RFC 7519) signed with the relay's
//! key, whose claims say which prefixes under that root the holder may
//! publish (`put`) and subscribe (`get`) under. [`Authorizer::verify`] turns
//! the two into an [`Access`], from which the relay builds the session's
//! origins:
//!
//! ```text
//! let publish = origin.consume().with_root(access.root.clone())?.scope(&access.get);
//! let subscribe = origin.with_root(access.root.clone())?.scope(&access.put);
//! ```
//!
//! # Claims
//!
//! ```json
//! {
//!   "root": "room/42",
//!   "put": ["alice"],
//!   "get": [""],
//!   "exp": 1767225600,
//!   "iat": 1767222000
//! }
//! ```
//!
//! This token lets its holder publish under `room/42/alice` and subscribe to
//! everything under `room/42`, until `exp`. `put` and `get` are lists of
//! prefixes relative to `root` (a single string is accepted too); `""` means
//! everything under `root`, and a missing or empty list grants nothing in
//! that direction. `exp` (seconds since the Unix epoch) is optional but
//! enforced when present; `iat` is informational. Unknown claims are ignored.
//! See [`Claims`].
//!
//! # Decisions
//!
//! * **Root.** The URL path must be the token's `root` or lie under it, on
//!   segment boundaries: a token for `room` works at `/room` and at
//!   `/room/alice` (a narrower view: the grants are re-expressed relative to
//!   the URL path, and those that do not reach under it are dropped), never
//!   at `/roomba` or `/`. A URL under the root where the token grants nothing
//!   is refused ([`AuthError::NoAccess`]).
//! * **Paths.** The root, every prefix and the URL path go through
//!   [`Path::parse`], which refuses `.`/`..` and empty segments and overlong
//!   paths instead of normalising them away. Normalising would let
//!   `room/../admin` or `room//x` mean something other than what the token's
//!   issuer (or a log reader) sees; refusing keeps "what was signed" and
//!   "what is granted" the same string. The URL path is used as given: the
//!   caller decides about percent-decoding, and whatever it passes is checked.
//! * **Anonymous access.** Without a token, a session gets both `put` and
//!   `get` under the `public` prefixes of [`AuthConfig`] and nothing else
//!   (`--auth-public`: "anonymous access only under these prefixes"). A
//!   public prefix above the URL path grants everything under it; one below
//!   it grants that prefix. An empty `?jwt=` counts as no token.
//! * **Tokens and public prefixes.** A token that is present must be valid:
//!   a bad token is refused, not downgraded to anonymous access, so mistakes
//!   are loud. A valid token's grants are added to the public ones.
//! * **Open relay.** With no key configured everything is allowed (the URL
//!   path must still parse) and tokens are ignored; [`AuthConfig::is_open`]
//!   lets the relay warn about it.
//! * **Algorithms.** The key decides the algorithm: a token whose header
//!   names another one (`none` included) is refused before its signature is
//!   looked at. `aud`, `iss`, `sub` and `nbf` are not checked.
//! * **Keys.** A single JWK file carries the algorithm and the material for
//!   HS256, ES256 and EdDSA alike; see [`Key`]. A relay that only verifies
//!   should be given the public half of an ES256/EdDSA key
//!   ([`Key::to_public`]); HS256 secrets sign as well as verify.
//! * **Errors.** [`AuthError`] says what went wrong for logs; on the wire
//!   every variant is [`moq_lite::Error::Unauthorized`] (code 6), so a client
//!   learns nothing about why.

mod claims;
mod key;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Header, Validation};
use moq_lite::model::{Path, PathError};
use serde::Deserialize;

pub use claims::{ClaimError, Claims};
pub use key::{Algorithm, Key, KeyError, MAX_KEY_FILE_LEN, MIN_SECRET_LEN};

/// The longest token, in bytes, that is looked at. Longer ones are refused
/// before any decoding, which bounds the work (and the number of prefixes)
/// a client can make the relay do.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// How the relay authorizes sessions.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// The key that verifies tokens. `None`: the relay is open.
    pub key: Option<Key>,
    /// Prefixes (absolute) where anonymous sessions may publish and subscribe.
    pub public: Vec<Path>,
}

/// Why an [`AuthConfig`] could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key file could not be read.
    #[error("auth key {path:?}: {error}")]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What was wrong with it.
        error: KeyError,
    },
    /// A public prefix that [`Path::parse`] refused.
    #[error("public prefix {prefix:?}: {error}")]
    Public {
        /// The refused prefix.
        prefix: String,
        /// Why.
        error: PathError,
    },
}

impl AuthConfig {
    /// An open relay: no key, everything allowed.
    pub fn open() -> Self {
        AuthConfig::default()
    }

    /// The config from the relay's `--auth-key` file and `--auth-public` prefixes.
    pub fn load(key_file: Option<&std::path::Path>, public: &[String]) -> Result<Self, ConfigError> {
        let key = key_file
            .map(|path| {
                Key::load(path).map_err(|error| ConfigError::Key {
                    path: path.to_path_buf(),
                    error,
                })
            })
            .transpose()?;
        let public = public
            .iter()
            .map(|prefix| {
                Path::parse(prefix).map_err(|error| ConfigError::Public {
                    prefix: prefix.clone(),
                    error,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AuthConfig { key, public })
    }

    /// Whether there is no key, so that anyone may do anything.
    pub fn is_open(&self) -> bool {
        self.key.is_none()
    }
}

/// What a session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The session's root (its URL path): paths on the wire are relative to it.
    pub root: Path,
    /// Prefixes, relative to `root`, it may publish under; minimal (none is
    /// under another) and sorted. Empty: it may not publish.
    pub put: Vec<Path>,
    /// Prefixes, relative to `root`, it may subscribe under; like `put`.
    pub get: Vec<Path>,
    /// When the token expires; the relay should end the session then.
    /// `None` for anonymous access, an open relay, or a token without `exp`.
    pub expires: Option<SystemTime>,
}

impl Access {
    /// Everything under `root`, forever.
    pub fn full(root: Path) -> Self {
        Access {
            root,
            put: vec![Path::root()],
            get: vec![Path::root()],
            expires: None,
        }
    }

    /// Whether `path` (relative to the root) may be published.
    pub fn can_put(&self, path: &Path) -> bool {
        self.put.iter().any(|p| path.has_prefix(p))
    }

    /// Whether `path` (relative to the root) may be subscribed to.
    pub fn can_get(&self, path: &Path) -> bool {
        self.get.iter().any(|p| path.has_prefix(p))
    }
}

/// Why a session was refused. Every variant goes on the wire as
/// [`moq_lite::Error::Unauthorized`]; see [`AuthError::to_moq`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, and the URL path is not under a public prefix.
    #[error("a token is required for {path:?}")]
    MissingToken {
        /// The URL path.
        path: Path,
    },
    /// The token is longer than [`MAX_TOKEN_LEN`].
    #[error("token is {0} bytes, more than {MAX_TOKEN_LEN}")]
    TokenTooLong(usize),
    /// Not a JWT, or its header or claims are not what they should be.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names another algorithm than the relay's key (or `none`).
    #[error("token algorithm {found:?}, but the key is {expected}")]
    WrongAlgorithm {
        /// The key's algorithm.
        expected: Algorithm,
        /// What the token's header says (cut short if long).
        found: String,
    },
    /// The signature does not verify: another key, or a tampered token.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is not after the time of the check.
    #[error("token expired at {exp} (unix seconds)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
    },
    /// A root or prefix in the claims that [`Path::parse`] refused.
    #[error(transparent)]
    InvalidClaim(#[from] ClaimError),
    /// The URL path was refused by [`Path::parse`].
    #[error("invalid URL path: {0}")]
    InvalidPath(PathError),
    /// The URL path is not the token's root nor under it.
    #[error("URL path {path:?} is outside the token's root {root:?}")]
    WrongRoot {
        /// The token's root.
        root: Path,
        /// The URL path.
        path: Path,
    },
    /// The token is valid here but grants nothing under the URL path.
    #[error("token grants nothing under {path:?}")]
    NoAccess {
        /// The URL path.
        path: Path,
    },
}

impl AuthError {
    /// The error for the wire: always [`moq_lite::Error::Unauthorized`] (code 6).
    pub fn to_moq(&self) -> moq_lite::Error {
        moq_lite::Error::Unauthorized
    }
}

impl From<AuthError> for moq_lite::Error {
    fn from(err: AuthError) -> Self {
        err.to_moq()
    }
}

/// Decides what each session may do. Built once from an [`AuthConfig`].
#[derive(Debug, Clone)]
pub struct Authorizer {
    config: AuthConfig,
    validation: Option<Validation>,
}

impl Authorizer {
    /// An authorizer for `config`.
    pub fn new(config: AuthConfig) -> Self {
        let validation = config.key.as_ref().map(|key| validation(key.algorithm()));
        Authorizer { config, validation }
    }

    /// Whether there is no key, so that anyone may do anything.
    pub fn is_open(&self) -> bool {
        self.config.is_open()
    }

    /// The config this authorizer was built from.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// What a session at `url_path` holding `token` (from `?jwt=`) may do at `now`.
    ///
    /// Never panics, whatever the inputs; see the [module docs](self) for the rules.
    pub fn verify(&self, url_path: &str, token: Option<&str>, now: SystemTime) -> Result<Access, AuthError> {
        let path = Path::parse(url_path).map_err(AuthError::InvalidPath)?;
        let (Some(key), Some(validation)) = (&self.config.key, &self.validation) else {
            return Ok(Access::full(path));
        };

        let mut put = narrow(&self.config.public, &path);
        let mut get = put.clone();
        let mut expires = None;

        match token.filter(|t| !t.is_empty()) {
            None if put.is_empty() => return Err(AuthError::MissingToken { path }),
            None => {}
            Some(token) => {
                let claims = decode(key, validation, token, now)?;
                let parsed = claims.parse()?;
                if !path.has_prefix(&parsed.root) {
                    return Err(AuthError::WrongRoot {
                        root: parsed.root,
                        path,
                    });
                }
                let absolute = |prefixes: &[Path]| -> Vec<Path> {
                    prefixes.iter().map(|p| parsed.root.join(p)).collect()
                };
                let token_put = narrow(&absolute(&parsed.put), &path);
                let token_get = narrow(&absolute(&parsed.get), &path);
                if token_put.is_empty() && token_get.is_empty() {
                    return Err(AuthError::NoAccess { path });
                }
                token_put.into_iter().for_each(|p| add_prefix(&mut put, p));
                token_get.into_iter().for_each(|p| add_prefix(&mut get, p));
                put.sort();
                get.sort();
                // An `exp` too far out for SystemTime never expires in practice.
                expires = claims
                    .exp
                    .and_then(|exp| UNIX_EPOCH.checked_add(Duration::from_secs(exp)));
            }
        }

        Ok(Access {
            root: path,
            put,
            get,
            expires,
        })
    }

    /// Checks a token's signature, algorithm, expiry and paths, whatever its
    /// root: what `moq-relay token verify` prints. Needs a key.
    pub fn verify_claims(&self, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
        let (Some(key), Some(validation)) = (&self.config.key, &self.validation) else {
            return Err(AuthError::Malformed("no key to verify with".into()));
        };
        let claims = decode(key, validation, token, now)?;
        claims.validate()?;
        Ok(claims)
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    // `exp` is optional, and checked against the caller's `now` in `decode`.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// Signature, algorithm and expiry; the paths are left to the caller.
fn decode(key: &Key, validation: &Validation, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TokenTooLong(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not three dot-separated parts".into()));
    };

    // Look at the algorithm first, so that `none` or a swapped algorithm gets
    // a clear error (jsonwebtoken refuses them too).
    #[derive(Deserialize)]
    struct RawHeader {
        alg: String,
    }
    let header = key::B64
        .decode(header)
        .map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
    let header: RawHeader =
        serde_json::from_slice(&header).map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
    if header.alg != key.algorithm().as_str() {
        return Err(AuthError::WrongAlgorithm {
            expected: key.algorithm(),
            found: header.alg.chars().take(32).collect(),
        });
    }

    let data = jsonwebtoken::decode::<Claims>(token, key.decoding(), validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AuthError::WrongAlgorithm {
                expected: key.algorithm(),
                found: header.alg.chars().take(32).collect(),
            },
            _ => AuthError::Malformed(e.to_string()),
        }
    })?;

    let claims = data.claims;
    if let Some(exp) = claims.exp {
        let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if exp <= now {
            return Err(AuthError::Expired { exp });
        }
    }
    Ok(claims)
}

/// `prefixes` (absolute) as seen from `root`: those under it relative to it,
/// and any above it as the whole of it; minimal and sorted.
fn narrow(prefixes: &[Path], root: &Path) -> Vec<Path> {
    let mut out = Vec::new();
    for prefix in prefixes {
        let relative = match prefix.strip_prefix(root) {
            Some(rest) => rest,
            None if root.has_prefix(prefix) => Path::root(),
            None => continue,
        };
        add_prefix(&mut out, relative);
    }
    out.sort();
    out
}

/// Adds `prefix` unless it is already covered; drops what it covers.
fn add_prefix(set: &mut Vec<Path>, prefix: Path) {
    if set.iter().any(|have| prefix.has_prefix(have)) {
        return;
    }
    set.retain(|have| !have.has_prefix(&prefix));
    set.push(prefix);
}

/// Why [`sign`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key cannot sign (a public key).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A path in the claims would be refused by every relay.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The JWT library failed.
    #[error("signing failed: {0}")]
    Jwt(String),
}

/// Signs `claims` with `key` into a compact JWT. The header names the key's
/// algorithm (and its `kid`, if it has one). Claims whose paths
/// [`Path::parse`] refuses are not signed.
pub fn sign(key: &Key, claims: &Claims) -> Result<String, SignError> {
    claims.validate()?;
    let mut header = Header::new(key.algorithm().jwt());
    header.kid = key.kid().map(str::to_string);
    jsonwebtoken::encode(&header, claims, key.encoding()?).map_err(|e| SignError::Jwt(e.to_string()))
}

/// Why a `moq-relay token` subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Generating, loading or saving a key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Signing.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Verifying.
    #[error(transparent)]
    Verify(#[from] AuthError),
}

/// `moq-relay token generate`: a new key for `alg` saved as a JWK file at
/// `out` (owner-only on Unix), and, for ES256/EdDSA, its public half at
/// `public_out` if given. Returns the key.
pub fn generate_key_file(
    alg: Algorithm,
    out: &std::path::Path,
    public_out: Option<&std::path::Path>,
) -> Result<Key, TokenError> {
    let key = Key::generate(alg)?;
    // Fail before writing anything if the public half cannot be had (HS256).
    let public = public_out
        .map(|path| key.to_public().map(|public| (path, public)))
        .transpose()?;
    key.save(out)?;
    if let Some((path, public)) = public {
        public.save(path)?;
    }
    Ok(key)
}

/// `moq-relay token sign`: a token from the key file `key_file` for `root`,
/// granting `put` and `get` (relative to `root`), issued at `now` and expiring
/// `expires_in` later (never, if `None`).
pub fn sign_token(
    key_file: &std::path::Path,
    root: &str,
    put: &[String],
    get: &[String],
    expires_in: Option<Duration>,
    now: SystemTime,
) -> Result<String, TokenError> {
    let key = Key::load(key_file)?;
    let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = Claims {
        root: root.to_string(),
        put: put.to_vec(),
        get: get.to_vec(),
        exp: expires_in.map(|d| now.saturating_add(d.as_secs())),
        iat: Some(now),
    };
    Ok(sign(&key, &claims)?)
}

/// `moq-relay token verify`: the claims of `token` if it verifies with the
/// key file `key_file` at `now` (signature, algorithm, expiry, paths).
pub fn verify_token(key_file: &std::path::Path, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
    let key = Key::load(key_file)?;
    let authorizer = Authorizer::new(AuthConfig {
        key: Some(key),
        public: Vec::new(),
    });
    Ok(authorizer.verify_claims(token.trim(), now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<Path> {
        list.iter().map(Path::new).collect()
    }

    #[test]
    fn narrowing() {
        let prefixes = paths(&["a/b", "a/c/d", "x"]);
        assert_eq!(narrow(&prefixes, &Path::new("a")), paths(&["b", "c/d"]));
        assert_eq!(narrow(&prefixes, &Path::new("a/b/z")), paths(&[""]));
        assert_eq!(narrow(&prefixes, &Path::new("ab")), paths(&[]));
        assert_eq!(narrow(&prefixes, &Path::root()), paths(&["a/b", "a/c/d", "x"]));
        assert_eq!(narrow(&paths(&["a/b", "a"]), &Path::root()), paths(&["a"]));
        assert_eq!(narrow(&paths(&["a", "a/b"]), &Path::root()), paths(&["a"]));
    }

    #[test]
    fn errors_are_unauthorized_on_the_wire() {
        let errors = [
            AuthError::MissingToken { path: Path::root() },
            AuthError::TokenTooLong(1),
            AuthError::Malformed(String::new()),
            AuthError::BadSignature,
            AuthError::Expired { exp: 0 },
            AuthError::InvalidPath(PathError::EmptySegment),
            AuthError::NoAccess { path: Path::root() },
        ];
        for err in errors {
            assert_eq!(err.to_moq(), moq_lite::Error::Unauthorized);
            assert_eq!(moq_lite::Error::from(err).code(), 6);
        }
    }
}

//! Token checks: [`Authorizer::verify`] on arbitrary URL paths and tokens,
//! and on arbitrary claims correctly signed with the relay's key.
//!
//! Properties: no panic; whatever is granted is the URL path as
//! [`Path::parse`] sees it, and lies within what the (valid) token claims or
//! the public prefixes grant; nothing is granted to a bad signature.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::model::Path;
use moq_relay::auth::{AuthConfig, AuthError, Authorizer, Claims, Key};

/// The fixed HS256 secret of the fuzzed relay (at least 32 bytes).
pub const SECRET: &[u8; 32] = b"fuzzing-secret-0123456789abcdef!";
/// The fixed clock of the fuzzed relay.
pub const NOW: u64 = 1_700_000_000;
/// The relay's public prefix.
pub const PUBLIC: &str = "demo";

fn authorizer() -> &'static Authorizer {
    static AUTH: OnceLock<Authorizer> = OnceLock::new();
    AUTH.get_or_init(|| {
        Authorizer::new(AuthConfig {
            key: Some(Key::from_secret(SECRET).expect("valid secret")),
            public: vec![Path::new(PUBLIC)],
        })
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// Signs arbitrary claims JSON with [`SECRET`], as a token issuer would.
pub fn sign_json(payload: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64.encode(payload);
    let signing_input = format!("{header}.{body}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64.encode(tag.as_ref()))
}

/// Checks what `verify` granted against what the claims (if any) allow.
fn check_access(url_path: &str, claims: Option<&Claims>, result: Result<moq_relay::Access, AuthError>) {
    let Ok(access) = result else { return };
    let root = Path::parse(url_path).expect("granted access at a path that does not parse");
    assert_eq!(access.root, root, "the session root is not the URL path");
    let public = Path::new(PUBLIC);
    for (what, prefixes, granted) in [
        ("put", claims.map(|c| &c.put), &access.put),
        ("get", claims.map(|c| &c.get), &access.get),
    ] {
        let mut sorted = granted.clone();
        sorted.sort();
        assert_eq!(&sorted, granted, "{what} prefixes are not sorted");
        for p in granted {
            assert!(
                p.segments().all(|s| s != ".." && s != "."),
                "{what} grant {p:?} has a relative segment"
            );
            let absolute = root.join(p);
            let by_public = absolute.has_prefix(&public);
            let by_token = claims.is_some_and(|c| {
                let token_root = Path::parse(&c.root).expect("a granted token's root parses");
                prefixes.unwrap().iter().any(|claimed| {
                    let claimed = token_root.join(&Path::parse(claimed).expect("a granted claim parses"));
                    absolute.has_prefix(&claimed)
                })
            });
            assert!(
                by_public || by_token,
                "{what} grant {absolute:?} is neither public nor claimed: {claims:?}"
            );
        }
    }
    if access.expires.is_some() {
        let exp = claims.and_then(|c| c.exp).expect("an expiry without exp");
        assert!(exp > NOW, "an expired token was accepted");
    }
}

/// `data` is a mode byte, then `url path \n rest`.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (url_path, token) = text.split_once('\n').unwrap_or((&text, ""));
    let auth = authorizer();
    match mode % 4 {
        // An arbitrary token: never a grant beyond the public prefixes.
        0 => {
            let result = auth.verify(url_path, Some(token), now());
            check_access(url_path, None, result);
        }
        // Arbitrary claims, correctly signed.
        1 => {
            let signed = sign_json(token.as_bytes());
            let claims = serde_json::from_str::<Claims>(token).ok();
            let result = auth.verify(url_path, Some(&signed), now());
            if result
                .as_ref()
                .is_ok_and(|a| !a.put.is_empty() || !a.get.is_empty())
            {
                // Anything beyond the public prefixes needs claims that parse.
                check_access(url_path, claims.as_ref(), result);
            }
            let _ = auth.verify_claims(&signed, now());
        }
        // A signed token whose signature was then tampered with.
        2 => {
            let mut signed = sign_json(token.as_bytes()).into_bytes();
            let last = signed.len() - 2;
            signed[last] = if signed[last] == b'A' { b'B' } else { b'A' };
            let signed = String::from_utf8(signed).unwrap();
            match auth.verify(url_path, Some(&signed), now()) {
                Ok(access) => panic!("a tampered token was accepted: {access:?}"),
                Err(_) => {}
            }
        }
        // Key files.
        _ => {
            let _ = Key::parse(&text);
        }
    }
}

/// Inputs for mutation (and a fuzz corpus).
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let claims = [
        r#"{"root":"room","put":["alice"],"get":[""],"exp":1800000000}"#,
        r#"{"root":"a","put":"","get":""}"#,
        r#"{"root":"","get":["a"]}"#,
        r#"{"root":"room/../admin","put":[""]}"#,
    ];
    for (path, c) in ["/room", "/a", "/ab", "/room/alice"].iter().zip(claims) {
        out.push([&[1u8][..], path.as_bytes(), b"\n", c.as_bytes()].concat());
        out.push([&[2u8][..], path.as_bytes(), b"\n", c.as_bytes()].concat());
    }
    out.push(b"\x00/demo\n".to_vec());
    out.push(b"\x00/room\neyJhbGciOiJub25lIn0.eyJyb290IjoiIiwicHV0IjoiIn0.".to_vec());
    out.push(b"\x03{\"kty\":\"oct\",\"k\":\"AAAA\"}".to_vec());
    out
}

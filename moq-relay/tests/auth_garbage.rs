//! Garbage in, an error out: tokens and key files that must never panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use moq_relay::auth::{Algorithm, AuthConfig, AuthError, Authorizer, Claims, Key, MAX_TOKEN_LEN, sign};

/// xorshift64*: deterministic noise without a dev-dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn authorizers() -> Vec<(Key, Authorizer)> {
    [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA]
        .into_iter()
        .map(|alg| {
            let key = Key::generate(alg).unwrap();
            let auth = Authorizer::new(AuthConfig {
                key: Some(key.clone()),
                public: vec!["demo".into()],
            });
            (key, auth)
        })
        .collect()
}

#[test]
fn random_tokens_are_refused() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, auth) in authorizers() {
        for _ in 0..2000 {
            let len = rng.below(400);
            let bytes = rng.bytes(len);
            let token = String::from_utf8_lossy(&bytes);
            assert!(auth.verify("/room", Some(&token), now()).is_err());
            // Three base64 parts of noise.
            let token = format!(
                "{}.{}.{}",
                B64.encode(rng.bytes(len % 50)),
                B64.encode(rng.bytes(len)),
                B64.encode(rng.bytes(64))
            );
            assert!(auth.verify("/room", Some(&token), now()).is_err());
        }
    }
}

#[test]
fn mutated_tokens_never_panic() {
    let mut rng = Rng(42);
    for (key, auth) in authorizers() {
        let mut claims = Claims::new("room");
        claims.put = vec!["".into()];
        claims.get = vec!["".into()];
        let token = sign(&key, &claims).unwrap();
        for _ in 0..3000 {
            let mut bytes = token.clone().into_bytes();
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[i] = rng.next() as u8,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, b"._-=A/+\0"[rng.below(8)]),
                }
            }
            let mutated = String::from_utf8_lossy(&bytes);
            if mutated != token {
                // A mutation can only leave an equivalent token (e.g. base64 tail bits) valid.
                let _ = auth.verify("/room", Some(&mutated), now());
            }
        }
    }
}

#[test]
fn huge_tokens_refused_before_decoding() {
    for (key, auth) in authorizers() {
        let mut claims = Claims::new("room");
        claims.put = (0..2000).map(|i| format!("p{i}")).collect();
        let token = sign(&key, &claims).unwrap();
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(
            auth.verify("/room", Some(&token), now()),
            Err(AuthError::TokenTooLong(token.len()))
        );
        for len in [MAX_TOKEN_LEN + 1, 1 << 20, 16 << 20] {
            let token = "a".repeat(len);
            assert_eq!(
                auth.verify("/room", Some(&token), now()),
                Err(AuthError::TokenTooLong(len))
            );
        }
        // Just under the cap: looked at, and refused for what it is.
        let token = "a".repeat(MAX_TOKEN_LEN);
        assert!(matches!(
            auth.verify("/room", Some(&token), now()),
            Err(AuthError::Malformed(_))
        ));
    }
}

#[test]
fn odd_headers_and_payloads() {
    let (key, auth) = authorizers().remove(0);
    let headers = [
        "",
        "{}",
        "null",
        "[]",
        r#"{"alg":1}"#,
        r#"{"alg":"HS256","crit":["x"]}"#,
        &format!(r#"{{"alg":"{}"}}"#, "x".repeat(5000)),
    ];
    for header in headers {
        let token = format!(
            "{}.{}.{}",
            B64.encode(header),
            B64.encode("{}"),
            B64.encode("sig")
        );
        assert!(auth.verify("/", Some(&token), now()).is_err(), "{header}");
    }
    for url in ["", "/", "//", "/a//", &"/x".repeat(5000), "/\u{0}", "/é/🙂"] {
        let _ = auth.verify(url, None, now());
        let _ = auth.verify(url, Some("a.b.c"), now());
    }
    // Arbitrary, validly signed payloads: refused or accepted, never a panic.
    let secret = {
        let jwk: serde_json::Value = serde_json::from_str(&key.to_jwk()).unwrap();
        B64.decode(jwk["k"].as_str().unwrap()).unwrap()
    };
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    for payload in [
        "",
        "null",
        "[]",
        r#"{"root":1}"#,
        r#"{"root":"a","exp":1.5}"#,
        r#"{"root":"a","exp":"soon"}"#,
        r#"{"root":"a","exp":18446744073709551615,"put":""}"#,
        r#"{"root":"a","put":[null]}"#,
        r#"{"root":"a","nbf":99999999999,"aud":"x","put":""}"#,
    ] {
        let message = format!("{}.{}", B64.encode(r#"{"alg":"HS256"}"#), B64.encode(payload));
        let sig = B64.encode(ring::hmac::sign(&hmac, message.as_bytes()));
        let _ = auth.verify("/a", Some(&format!("{message}.{sig}")), now());
    }
}

#[test]
fn garbage_keys_refused() {
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = rng.below(300);
        let text = String::from_utf8_lossy(&rng.bytes(len)).into_owned();
        assert!(Key::parse(&text).is_err());
        assert!(Key::parse(&format!("{{{text}")).is_err());
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(rng.bytes(len))
        );
        let _ = Key::parse(&pem);
        let pem = pem.replace("PRIVATE", "PUBLIC");
        let _ = Key::parse(&pem);
    }
}

//! The auth matrix: which tokens open which sessions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use moq_lite::model::Path;
use moq_relay::auth::{
    Access, Algorithm, AuthConfig, AuthError, Authorizer, Claims, Key, KeyError, SignError, sign,
};

const ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA];

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn now_secs() -> u64 {
    now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn paths(list: &[&str]) -> Vec<Path> {
    list.iter().map(Path::new).collect()
}

fn authorizer(key: &Key, public: &[&str]) -> Authorizer {
    Authorizer::new(AuthConfig {
        key: Some(key.clone()),
        public: paths(public),
    })
}

fn claims(root: &str, put: &[&str], get: &[&str]) -> Claims {
    Claims {
        root: root.into(),
        put: put.iter().map(|s| s.to_string()).collect(),
        get: get.iter().map(|s| s.to_string()).collect(),
        exp: Some(now_secs() + 3600),
        iat: Some(now_secs()),
    }
}

#[test]
fn valid_tokens_accepted_for_every_algorithm() {
    for alg in ALGORITHMS {
        let key = Key::generate(alg).unwrap();
        let token = sign(&key, &claims("room", &["alice"], &[""])).unwrap();
        let access = authorizer(&key, &[])
            .verify("/room", Some(&token), now())
            .unwrap();
        assert_eq!(
            access,
            Access {
                root: Path::new("room"),
                put: paths(&["alice"]),
                get: paths(&[""]),
                expires: Some(UNIX_EPOCH + Duration::from_secs(now_secs() + 3600)),
            },
            "{alg}"
        );
        // A public-only key verifies what its private half signed.
        if alg != Algorithm::HS256 {
            let public = key.to_public().unwrap();
            assert!(
                authorizer(&public, &[])
                    .verify("/room", Some(&token), now())
                    .is_ok()
            );
            assert!(matches!(
                sign(&public, &claims("room", &[""], &[""])),
                Err(SignError::Key(KeyError::PublicOnly(_)))
            ));
        }
    }
}

#[test]
fn expiry_enforced_when_present() {
    let key = Key::generate(Algorithm::ES256).unwrap();
    let auth = authorizer(&key, &[]);
    for (exp, ok) in [
        (now_secs() - 1, false),
        (now_secs(), false),
        (now_secs() + 1, true),
    ] {
        let mut c = claims("", &[""], &[""]);
        c.exp = Some(exp);
        let result = auth.verify("/", Some(&sign(&key, &c).unwrap()), now());
        if ok {
            assert_eq!(
                result.unwrap().expires,
                Some(UNIX_EPOCH + Duration::from_secs(exp))
            );
        } else {
            assert_eq!(result.unwrap_err(), AuthError::Expired { exp });
        }
    }

    // No `exp`: never expires.
    let mut c = claims("", &[""], &[""]);
    c.exp = None;
    let access = auth.verify("/", Some(&sign(&key, &c).unwrap()), now()).unwrap();
    assert_eq!(access.expires, None);

    // An `exp` beyond what SystemTime holds does not panic.
    c.exp = Some(u64::MAX);
    assert!(auth.verify("/", Some(&sign(&key, &c).unwrap()), now()).is_ok());
}

#[test]
fn other_key_refused() {
    for alg in ALGORITHMS {
        let key = Key::generate(alg).unwrap();
        let other = Key::generate(alg).unwrap();
        let token = sign(&other, &claims("room", &[""], &[""])).unwrap();
        assert_eq!(
            authorizer(&key, &[]).verify("/room", Some(&token), now()),
            Err(AuthError::BadSignature),
            "{alg}"
        );
    }
}

#[test]
fn other_algorithm_refused() {
    let es = Key::generate(Algorithm::ES256).unwrap();
    let ed = Key::generate(Algorithm::EdDSA).unwrap();
    let token = sign(&ed, &claims("room", &[""], &[""])).unwrap();
    assert!(matches!(
        authorizer(&es, &[]).verify("/room", Some(&token), now()),
        Err(AuthError::WrongAlgorithm { expected: Algorithm::ES256, found }) if found == "EdDSA"
    ));

    // The classic confusion: an HS256 token whose secret is the relay's public key.
    let public_jwk = es.to_public().unwrap().to_jwk();
    let forged_key = Key::from_secret(public_jwk.as_bytes()).unwrap();
    let token = sign(&forged_key, &claims("", &[""], &[""])).unwrap();
    assert!(matches!(
        authorizer(&es, &[]).verify("/", Some(&token), now()),
        Err(AuthError::WrongAlgorithm { .. })
    ));
}

fn part(json: &str) -> String {
    B64.encode(json)
}

#[test]
fn tampered_payload_refused() {
    for alg in ALGORITHMS {
        let key = Key::generate(alg).unwrap();
        let token = sign(&key, &claims("room", &[], &["alice"])).unwrap();
        let pieces: Vec<&str> = token.split('.').collect();
        let payload = part(r#"{"root":"","put":[""],"get":[""]}"#);
        let forged = format!("{}.{}.{}", pieces[0], payload, pieces[2]);
        assert_eq!(
            authorizer(&key, &[]).verify("/", Some(&forged), now()),
            Err(AuthError::BadSignature),
            "{alg}"
        );

        // A flipped signature byte.
        let mut sig = B64.decode(pieces[2]).unwrap();
        sig[0] ^= 1;
        let forged = format!("{}.{}.{}", pieces[0], pieces[1], B64.encode(sig));
        assert_eq!(
            authorizer(&key, &[]).verify("/room", Some(&forged), now()),
            Err(AuthError::BadSignature)
        );

        // No signature at all.
        let forged = format!("{}.{}.", pieces[0], pieces[1]);
        assert!(
            authorizer(&key, &[])
                .verify("/room", Some(&forged), now())
                .is_err()
        );
    }
}

#[test]
fn alg_none_refused() {
    let payload = part(r#"{"root":"","put":[""],"get":[""]}"#);
    for alg in ALGORITHMS {
        let key = Key::generate(alg).unwrap();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"NONE"}"#,
        ] {
            let token = format!("{}.{}.", part(header), payload);
            assert!(matches!(
                authorizer(&key, &[]).verify("/", Some(&token), now()),
                Err(AuthError::WrongAlgorithm { .. })
            ));
        }
    }
}

#[test]
fn root_semantics() {
    let key = Key::generate(Algorithm::HS256).unwrap();
    let auth = authorizer(&key, &[]);
    let token = sign(&key, &claims("a", &[""], &[""])).unwrap();

    // Never a sibling that merely shares a string prefix, nor a parent.
    for url in ["/ab", "/", "/b/a", "/abc/d"] {
        assert!(
            matches!(
                auth.verify(url, Some(&token), now()),
                Err(AuthError::WrongRoot { .. })
            ),
            "{url}"
        );
    }
    // The root itself, with or without slashes.
    for url in ["/a", "a", "/a/"] {
        let access = auth.verify(url, Some(&token), now()).unwrap();
        assert_eq!(access.root, Path::new("a"));
    }
    // A sub-root: a narrower view of the same grants.
    let access = auth.verify("/a/b", Some(&token), now()).unwrap();
    assert_eq!(access.root, Path::new("a/b"));
    assert_eq!(access.put, paths(&[""]));
    assert_eq!(access.get, paths(&[""]));

    // URL paths with tricks are refused, not normalised.
    for url in ["/a/../b", "/a//b", "/a/./b", "/.."] {
        assert!(
            matches!(
                auth.verify(url, Some(&token), now()),
                Err(AuthError::InvalidPath(_))
            ),
            "{url}"
        );
    }
}

#[test]
fn put_and_get_prefixes() {
    let key = Key::generate(Algorithm::EdDSA).unwrap();
    let auth = authorizer(&key, &[]);
    let token = sign(&key, &claims("room", &["alice", "bob/cam"], &["", "alice"])).unwrap();

    let access = auth.verify("/room", Some(&token), now()).unwrap();
    assert_eq!(access.put, paths(&["alice", "bob/cam"]));
    assert_eq!(access.get, paths(&[""])); // "alice" is covered by ""
    assert!(access.can_put(&Path::new("alice/video")));
    assert!(!access.can_put(&Path::new("alicex")));
    assert!(!access.can_put(&Path::new("bob")));
    assert!(access.can_get(&Path::new("anything")));

    // Seen from a sub-root, prefixes are relative to it; those elsewhere go.
    let access = auth.verify("/room/bob", Some(&token), now()).unwrap();
    assert_eq!(access.put, paths(&["cam"]));
    assert_eq!(access.get, paths(&[""]));
    let access = auth.verify("/room/alice/hd", Some(&token), now()).unwrap();
    assert_eq!(access.put, paths(&[""]));

    // Subscribe-only.
    let token = sign(&key, &claims("room", &[], &["carol"])).unwrap();
    let access = auth.verify("/room", Some(&token), now()).unwrap();
    assert!(access.put.is_empty());
    assert_eq!(access.get, paths(&["carol"]));

    // Nothing under the URL path: refused.
    assert!(matches!(
        auth.verify("/room/dave", Some(&token), now()),
        Err(AuthError::NoAccess { .. })
    ));
    let token = sign(&key, &claims("room", &[], &[])).unwrap();
    assert!(matches!(
        auth.verify("/room", Some(&token), now()),
        Err(AuthError::NoAccess { .. })
    ));
}

#[test]
fn bad_paths_in_claims() {
    let key = Key::generate(Algorithm::HS256).unwrap();
    // `sign` refuses them...
    assert!(matches!(
        sign(&key, &claims("a/../b", &[""], &[""])),
        Err(SignError::Claim(_))
    ));
    // ...and so does `verify`, for a token from another signer.
    for claims in [
        r#"{"root":"a/../b","put":[""]}"#,
        r#"{"root":"a","put":["x//y"]}"#,
        r#"{"root":"a","get":["."]}"#,
    ] {
        let header = part(r#"{"alg":"HS256","typ":"JWT"}"#);
        let message = format!("{header}.{}", part(claims));
        let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret_of(&key));
        let sig = B64.encode(ring::hmac::sign(&secret, message.as_bytes()));
        let token = format!("{message}.{sig}");
        assert!(
            matches!(
                authorizer(&key, &[]).verify("/a", Some(&token), now()),
                Err(AuthError::InvalidClaim(_))
            ),
            "{claims}"
        );
    }
}

fn secret_of(key: &Key) -> Vec<u8> {
    let jwk: serde_json::Value = serde_json::from_str(&key.to_jwk()).unwrap();
    B64.decode(jwk["k"].as_str().unwrap()).unwrap()
}

#[test]
fn anonymous_access() {
    let key = Key::generate(Algorithm::ES256).unwrap();
    let auth = authorizer(&key, &["demo", "open/room"]);

    // Inside a public prefix: put and get.
    let access = auth.verify("/demo", None, now()).unwrap();
    assert_eq!(access, Access::full(Path::new("demo")));
    let access = auth.verify("/demo/x", Some(""), now()).unwrap();
    assert_eq!(access, Access::full(Path::new("demo/x")));

    // Above public prefixes: just those.
    let access = auth.verify("/", None, now()).unwrap();
    assert_eq!(access.put, paths(&["demo", "open/room"]));
    assert_eq!(access.get, paths(&["demo", "open/room"]));
    let access = auth.verify("/open", None, now()).unwrap();
    assert_eq!(access.get, paths(&["room"]));

    // Outside: refused.
    for url in ["/demox", "/private", "/open/other"] {
        assert!(
            matches!(auth.verify(url, None, now()), Err(AuthError::MissingToken { .. })),
            "{url}"
        );
    }

    // With no public prefixes, a token is always needed.
    assert!(matches!(
        authorizer(&key, &[]).verify("/demo", None, now()),
        Err(AuthError::MissingToken { .. })
    ));
}

#[test]
fn tokens_and_public_prefixes() {
    let key = Key::generate(Algorithm::ES256).unwrap();
    let auth = authorizer(&key, &["demo"]);

    // A valid token adds to the public grants.
    let token = sign(&key, &claims("", &["alice"], &[])).unwrap();
    let access = auth.verify("/", Some(&token), now()).unwrap();
    assert_eq!(access.put, paths(&["alice", "demo"]));
    assert_eq!(access.get, paths(&["demo"]));

    // A bad token is refused even where anonymous access would do.
    let other = Key::generate(Algorithm::ES256).unwrap();
    let token = sign(&other, &claims("", &[""], &[""])).unwrap();
    assert_eq!(
        auth.verify("/demo", Some(&token), now()),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn open_relay_allows_everything() {
    let auth = Authorizer::new(AuthConfig::open());
    assert!(auth.is_open());
    assert!(AuthConfig::default().is_open());
    for url in ["/", "/a", "/a/b/c"] {
        for token in [None, Some("garbage"), Some("")] {
            let access = auth.verify(url, token, now()).unwrap();
            assert_eq!(access, Access::full(Path::new(url)));
        }
    }
    // The URL path is still checked.
    assert!(matches!(
        auth.verify("/a/../b", None, now()),
        Err(AuthError::InvalidPath(_))
    ));

    let key = Key::generate(Algorithm::HS256).unwrap();
    assert!(!authorizer(&key, &[]).is_open());
}

#[test]
fn every_error_is_unauthorized_on_the_wire() {
    let key = Key::generate(Algorithm::HS256).unwrap();
    let auth = authorizer(&key, &[]);
    let errors = [
        auth.verify("/", None, now()),
        auth.verify("/", Some("x.y.z"), now()),
        auth.verify("/", Some(&"a".repeat(100_000)), now()),
    ];
    for err in errors {
        let err = err.unwrap_err();
        assert_eq!(err.to_moq(), moq_lite::Error::Unauthorized);
        assert_eq!(moq_lite::Error::from(err).code(), 6);
    }
}

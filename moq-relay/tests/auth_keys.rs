//! Keys through files: generate, save, load, sign, verify; and PEM from openssl.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::model::Path;
use moq_relay::auth::{
    Algorithm, AuthConfig, AuthError, Authorizer, ConfigError, Key, KeyError, SignError, TokenError,
    generate_key_file, sign_token, verify_token,
};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("moq-relay-auth-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn generate_save_load_sign_verify() {
    let dir = TempDir::new("round-trip");
    for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key_file = dir.path(&format!("{alg}.jwk"));
        let public_file = dir.path(&format!("{alg}.pub.jwk"));
        let public_out = (alg != Algorithm::HS256).then_some(public_file.as_path());
        let key = generate_key_file(alg, &key_file, public_out).unwrap();
        assert_eq!(key.algorithm(), alg);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{alg} private key file is readable by others");
        }

        let loaded = Key::load(&key_file).unwrap();
        assert_eq!(loaded.to_jwk(), key.to_jwk());

        let token = sign_token(
            &key_file,
            "room",
            &strings(&["alice"]),
            &strings(&[""]),
            Some(Duration::from_secs(60)),
            now(),
        )
        .unwrap();

        let claims = verify_token(&key_file, &token, now()).unwrap();
        assert_eq!(claims.root, "room");
        assert_eq!(claims.put, strings(&["alice"]));
        assert_eq!(claims.get, strings(&[""]));
        assert_eq!(claims.iat, Some(1_700_000_000));
        assert_eq!(claims.exp, Some(1_700_000_060));

        // Expired a minute later.
        assert!(matches!(
            verify_token(&key_file, &token, now() + Duration::from_secs(60)),
            Err(TokenError::Verify(AuthError::Expired { .. }))
        ));

        // The relay side: AuthConfig::load with the (public) key file.
        let verify_file = public_out.unwrap_or(&key_file);
        let config = AuthConfig::load(Some(verify_file), &strings(&["demo"])).unwrap();
        assert!(!config.is_open());
        assert_eq!(config.public, vec![Path::new("demo")]);
        let access = Authorizer::new(config)
            .verify("/room", Some(&token), now())
            .unwrap();
        assert_eq!(access.put, vec![Path::new("alice")]);

        if let Some(public_file) = public_out {
            let public = Key::load(public_file).unwrap();
            assert!(!public.can_sign());
            assert!(matches!(
                sign_token(public_file, "room", &[], &strings(&[""]), None, now()),
                Err(TokenError::Sign(SignError::Key(KeyError::PublicOnly(_))))
            ));
        }
    }

    // HS256 has no public half: nothing is written.
    let out = dir.path("hs.jwk");
    assert!(matches!(
        generate_key_file(Algorithm::HS256, &out, Some(&dir.path("hs.pub.jwk"))),
        Err(TokenError::Key(KeyError::NoPublicPart))
    ));
    assert!(!out.exists());
}

#[test]
fn config_errors() {
    let dir = TempDir::new("config");
    assert!(AuthConfig::load(None, &[]).unwrap().is_open());
    assert!(matches!(
        AuthConfig::load(Some(&dir.path("missing.jwk")), &[]),
        Err(ConfigError::Key {
            error: KeyError::Io(_),
            ..
        })
    ));
    assert!(matches!(
        AuthConfig::load(None, &strings(&["a/../b"])),
        Err(ConfigError::Public { .. })
    ));

    let big = dir.path("big.jwk");
    std::fs::write(&big, vec![b' '; 100_000]).unwrap();
    assert!(matches!(Key::load(&big), Err(KeyError::TooLarge)));

    let garbage = dir.path("garbage.jwk");
    std::fs::write(&garbage, b"\x00\xff not a key").unwrap();
    assert!(Key::load(&garbage).is_err());
}

// Made with openssl 3:
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
//   openssl pkey -in ec.pem -pubout
//   openssl ecparam -name prime256v1 -genkey -noout
//   openssl genpkey -algorithm ed25519 -out ed.pem
//   openssl pkey -in ed.pem -pubout
const EC_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoAKmcww5halLDXeT
yXj5AxzFf9c9GX7DgC+3gPYqUL6hRANCAAQ7ftV0DZ8pP3x4IQ7p6uIO8CdTrWez
2rnbQJyZ6wmrCHYnBfav22JjxePCcMIt4Jir0afmCdYKtscCrcKfs67j
-----END PRIVATE KEY-----
";
const EC_SPKI: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEO37VdA2fKT98eCEO6eriDvAnU61n
s9q520CcmesJqwh2JwX2r9tiY8XjwnDCLeCYq9Gn5gnWCrbHAq3Cn7Ou4w==
-----END PUBLIC KEY-----
";
const EC_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIDwaEDhCZKR8MXEgLmKZ01szYw/HSpvODpCtGkDBEeYqoAoGCCqGSM49
AwEHoUQDQgAEuio95J8p8gNvs+2U2YtpOPEgLV4sCC6k0021pmPNUgGhLDh/oRNk
YRIenRcI766ehu2Zz0b3d4oMJz3qREvp/A==
-----END EC PRIVATE KEY-----
";
const ED_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOsXrMcWmWfHgvO5Byng3S5P5WeJIIJH8pKpSf0X22XI
-----END PRIVATE KEY-----
";
const ED_SPKI: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJ6Lf5eKPo6iDXUDE4kGyHWheqTzC3tFOLXw/CnxsBAE=
-----END PUBLIC KEY-----
";

#[test]
fn pem_keys_from_openssl() {
    let dir = TempDir::new("pem");
    for (name, private, public, alg) in [
        ("ec", EC_PKCS8, Some(EC_SPKI), Algorithm::ES256),
        ("sec1", EC_SEC1, None, Algorithm::ES256),
        ("ed", ED_PKCS8, Some(ED_SPKI), Algorithm::EdDSA),
    ] {
        let private_file = dir.path(&format!("{name}.pem"));
        std::fs::write(&private_file, private).unwrap();
        let key = Key::load(&private_file).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert!(key.can_sign());

        let token = sign_token(&private_file, "", &strings(&[""]), &[], None, now()).unwrap();
        assert!(verify_token(&private_file, &token, now()).is_ok());

        // The PEM public key is the private key's public half.
        if let Some(public) = public {
            let public_file = dir.path(&format!("{name}.pub.pem"));
            std::fs::write(&public_file, public).unwrap();
            let public_key = Key::load(&public_file).unwrap();
            assert!(!public_key.can_sign());
            assert_eq!(public_key.to_jwk(), key.to_public().unwrap().to_jwk());
            assert!(verify_token(&public_file, &token, now()).is_ok());
        }

        // Converting to JWK keeps the key.
        let jwk_file = dir.path(&format!("{name}.jwk"));
        key.save(&jwk_file).unwrap();
        assert!(verify_token(&jwk_file, &token, now()).is_ok());
    }

    assert!(matches!(
        Key::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(KeyError::Unsupported(_))
    ));
    assert!(matches!(
        Key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n"),
        Err(KeyError::Malformed(_))
    ));
    assert!(Key::from_pem("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n").is_err());
}

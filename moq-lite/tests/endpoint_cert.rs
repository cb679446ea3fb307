//! The generated self-signed certificate: ECDSA P-256, at most 14 days of
//! validity (what browsers accept for `serverCertificateHashes`), and the
//! requested names as SANs. Checked with rustls' webpki and a small DER walk.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::endpoint::{
    Certificate, fingerprint, fingerprint_hex, generate_self_signed, parse_fingerprint,
};
use rustls::{
    RootCertStore,
    client::{verify_server_cert_signed_by_trust_anchor, verify_server_name},
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::ParsedCertificate,
};

const DAY: u64 = 24 * 60 * 60;

fn generate() -> Certificate {
    generate_self_signed(&[
        "localhost".into(),
        "relay.test".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ])
    .unwrap()
}

/// One DER element: (tag, contents, rest).
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let bytes = (n & 0x7f) as usize;
            let len = der[2..2 + bytes]
                .iter()
                .fold(0usize, |acc, b| acc << 8 | *b as usize);
            (len, 2 + bytes)
        }
    };
    (tag, &der[header..header + len], &der[header + len..])
}

/// Seconds since the epoch of a UTCTime (0x17) or GeneralizedTime (0x18).
fn time(tag: u8, value: &[u8]) -> u64 {
    let s = std::str::from_utf8(value).unwrap();
    assert!(s.ends_with('Z'), "{s}");
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s[..2].parse().unwrap();
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 => (s[..4].parse().unwrap(), &s[4..]),
        _ => panic!("not a time: {tag:#x}"),
    };
    let num = |i: usize| -> i64 { rest[i..i + 2].parse().unwrap() };
    let (month, day, hour, min, sec) = (num(0), num(2), num(4), num(6), num(8));

    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + hour * 3600 + min * 60 + sec) as u64
}

/// (notBefore, notAfter) of a certificate, in seconds since the epoch.
fn validity(cert: &CertificateDer<'_>) -> (u64, u64) {
    let (_, certificate, _) = tlv(cert);
    let (_, tbs, _) = tlv(certificate);
    let mut rest = tbs;
    if rest[0] == 0xa0 {
        rest = tlv(rest).2; // version
    }
    rest = tlv(rest).2; // serial
    rest = tlv(rest).2; // signature algorithm
    rest = tlv(rest).2; // issuer
    let (tag, validity, _) = tlv(rest);
    assert_eq!(tag, 0x30);
    let (tag_before, before, rest) = tlv(validity);
    let (tag_after, after, _) = tlv(rest);
    (time(tag_before, before), time(tag_after, after))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn validity_is_at_most_fourteen_days_and_current() {
    let cert = generate();
    let (not_before, not_after) = validity(cert.end_entity());
    assert!(not_after - not_before <= 14 * DAY, "{} s", not_after - not_before);
    let now = now();
    assert!(not_before + DAY / 2 < now, "backdated for clock skew");
    assert!(now + 12 * DAY < not_after, "usable for most of two weeks");
}

#[test]
fn webpki_accepts_it_now_and_not_after_fourteen_days() {
    let cert = generate();
    let parsed = ParsedCertificate::try_from(cert.end_entity()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.end_entity().clone()).unwrap();
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;

    let at = |secs: u64| UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let verify = |secs| verify_server_cert_signed_by_trust_anchor(&parsed, &roots, &[], at(secs), algorithms);

    verify(now()).unwrap();
    let err = verify(now() + 14 * DAY).unwrap_err();
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
    let err = verify(now() - 2 * DAY).unwrap_err();
    assert!(format!("{err:?}").contains("NotValidYet"), "{err:?}");
}

#[test]
fn names_are_subject_alternative_names() {
    let cert = generate();
    let parsed = ParsedCertificate::try_from(cert.end_entity()).unwrap();
    for name in ["localhost", "relay.test", "127.0.0.1", "::1"] {
        let server_name = ServerName::try_from(name).unwrap();
        verify_server_name(&parsed, &server_name).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    for name in ["example.com", "127.0.0.2"] {
        let server_name = ServerName::try_from(name).unwrap();
        assert!(verify_server_name(&parsed, &server_name).is_err(), "{name}");
    }
}

#[test]
fn no_names_means_localhost() {
    let cert = generate_self_signed(&[]).unwrap();
    let parsed = ParsedCertificate::try_from(cert.end_entity()).unwrap();
    verify_server_name(&parsed, &ServerName::try_from("localhost").unwrap()).unwrap();
}

#[test]
fn key_is_ecdsa_p256() {
    let cert = generate();
    // id-ecPublicKey and prime256v1 in the public key, ecdsa-with-SHA256 as
    // the signature algorithm.
    let contains = |needle: &[u8]| cert.end_entity().windows(needle.len()).any(|w| w == needle);
    assert!(contains(&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
    assert!(contains(&[
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
    ]));
    assert!(contains(&[
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
    ]));

    // The private key loads as ECDSA and matches the certificate.
    rustls::crypto::ring::sign::any_ecdsa_type(&cert.key).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(cert.chain.clone(), cert.key.clone_key(), &provider)
        .unwrap()
        .keys_match()
        .unwrap();
}

#[test]
fn fingerprints() {
    let cert = generate();
    let hex = fingerprint_hex(cert.end_entity());
    assert_eq!(hex.len(), 64);
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(parse_fingerprint(&hex).unwrap(), fingerprint(cert.end_entity()));
    assert_eq!(cert.fingerprint_hex(), hex);
    // Each certificate is fresh.
    assert_ne!(generate().fingerprint(), cert.fingerprint());
}

//! The protocol list: every version we speak, most preferred first, with
//! the token that selects it (TLS ALPN, WebTransport protocol), its code in
//! SETUP where it has one, and the name people type (`--protocol
//! moq-transport-16`). Relay, CLI and bench ask here, and so does
//! negotiation ([`crate::accept`] / [`crate::connect`]): a new version is
//! added here and in its codec, nowhere else.

use std::str::FromStr;

use moq_lite::lite::Version as LiteVersion;

use crate::Draft;
use crate::dispatch::Version;

/// Every version we speak, in the order a client offers them: moq-lite
/// first (the newest first), then the IETF drafts (the newest first).
/// moq-lite-01 is reachable through the SETUP path only (it shares `moql`
/// with -02, which the SETUP exchange prefers).
pub const VERSIONS: &[Version] = &[
    Version::Lite(LiteVersion::Lite06),
    Version::Lite(LiteVersion::Lite05),
    Version::Lite(LiteVersion::Lite04),
    Version::Lite(LiteVersion::Lite03),
    Version::Lite(LiteVersion::Lite02),
    Version::Ietf(Draft::D22),
    Version::Ietf(Draft::D21),
    Version::Ietf(Draft::D20),
    Version::Ietf(Draft::D19),
    Version::Ietf(Draft::D18),
    Version::Ietf(Draft::D17),
    Version::Ietf(Draft::D16),
    Version::Ietf(Draft::D15),
    Version::Ietf(Draft::D14),
];

impl Version {
    /// The ALPN token / WebTransport protocol that selects this version
    /// (`moql` for the versions chosen in SETUP).
    pub const fn alpn(self) -> &'static str {
        match self {
            Version::Lite(v) => v.alpn(),
            Version::Ietf(d) => d.alpn(),
        }
    }

    /// The version code in CLIENT_SETUP / SERVER_SETUP, for the versions
    /// negotiated there.
    pub fn setup_code(self) -> Option<u32> {
        match self {
            Version::Lite(v) => (v.alpn() == moq_lite::lite::SETUP_ALPN).then(|| v.code()),
            Version::Ietf(d) => d.setup_code(),
        }
    }

    /// The name people use: `moq-lite-04`, `moq-transport-16`.
    pub fn name(self) -> String {
        match self {
            Version::Lite(v) => v.to_string(),
            Version::Ietf(d) => format!("moq-transport-{}", d.number()),
        }
    }
}

/// The versions chosen inside SETUP (ALPN `moql` or no protocol), in the
/// order a client offers them: moq-lite's SETUP versions, then each draft
/// with a SETUP version code (draft-14).
pub fn setup_versions() -> Vec<Version> {
    let lite = moq_lite::lite::SETUP_VERSIONS.into_iter().map(Version::Lite);
    let ietf = Draft::ALL
        .into_iter()
        .rev()
        .filter(|d| d.setup_code().is_some())
        .map(Version::Ietf);
    lite.chain(ietf).collect()
}

/// The server's choice on the SETUP path: the first code of the client's
/// CLIENT_SETUP (its preference) that [`setup_versions`] has.
pub fn pick_setup(offered: &[u32]) -> Option<Version> {
    let ours = setup_versions();
    offered
        .iter()
        .find_map(|&code| ours.iter().copied().find(|v| v.setup_code() == Some(code)))
}

/// The tokens of [`VERSIONS`], each once, in order: what a client offers
/// (`ClientConfig::protocols`) and a server accepts.
pub fn alpns() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for version in VERSIONS {
        if !out.contains(&version.alpn()) {
            out.push(version.alpn());
        }
    }
    out
}

/// Why a protocol name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol `{0}`; expected one of: {names}", names = names().join(", "))]
pub struct UnknownProtocol(pub String);

/// The names [`Version::from_str`] accepts, one per version of [`VERSIONS`].
pub fn names() -> Vec<String> {
    VERSIONS.iter().map(|v| v.name()).collect()
}

impl FromStr for Version {
    type Err = UnknownProtocol;

    /// A version by name (`moq-lite-04`, `moq-transport-16`), short name
    /// (`lite-04`, `moqt-16`) or token (`moql` for moq-lite-02, `moq-00` for
    /// draft-14); case does not matter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        VERSIONS
            .iter()
            .copied()
            .find(|v| {
                let name = v.name();
                let short = match v {
                    Version::Lite(_) => name.trim_start_matches("moq-").to_string(),
                    Version::Ietf(d) => format!("moqt-{}", d.number()),
                };
                wanted == name || wanted == short || wanted == v.alpn()
            })
            .ok_or_else(|| UnknownProtocol(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_are_the_published_list() {
        assert_eq!(alpns(), crate::ALL_PROTOCOLS);
        let ietf: Vec<_> = VERSIONS
            .iter()
            .filter(|v| matches!(v, Version::Ietf(_)))
            .map(|v| v.alpn())
            .collect();
        assert_eq!(ietf, crate::IETF_PROTOCOLS);
    }

    #[test]
    fn the_setup_path() {
        let lite02 = LiteVersion::Lite02.code();
        let lite01 = LiteVersion::Lite01.code();
        let d14 = 0xff00_000e;
        assert_eq!(
            setup_versions(),
            [
                Version::Lite(LiteVersion::Lite02),
                Version::Lite(LiteVersion::Lite01),
                Version::Ietf(Draft::D14)
            ]
        );
        // The client's order decides; unknown codes are skipped.
        assert_eq!(
            pick_setup(&[0x1234, d14, lite02]),
            Some(Version::Ietf(Draft::D14))
        );
        assert_eq!(
            pick_setup(&[lite01, d14]),
            Some(Version::Lite(LiteVersion::Lite01))
        );
        // Versions chosen by ALPN are not offered in SETUP.
        assert_eq!(pick_setup(&[LiteVersion::Lite04.code(), 0xff00_0010]), None);
        assert_eq!(pick_setup(&[]), None);
    }

    #[test]
    fn names_round_trip() {
        for version in VERSIONS {
            assert_eq!(version.name().parse::<Version>(), Ok(*version));
            assert_eq!(version.name().to_uppercase().parse::<Version>(), Ok(*version));
        }
        assert_eq!("lite-03".parse(), Ok(Version::Lite(LiteVersion::Lite03)));
        assert_eq!("moql".parse(), Ok(Version::Lite(LiteVersion::Lite02)));
        assert_eq!("moqt-17".parse(), Ok(Version::Ietf(Draft::D17)));
        assert_eq!("moq-00".parse(), Ok(Version::Ietf(Draft::D14)));
        let err = "moq-transport-99".parse::<Version>().unwrap_err();
        assert!(err.to_string().contains("moq-transport-16"), "{err}");
    }
}

//! The relay's configuration: flags, `MOQ_RELAY_*` environment variables and
//! an optional TOML file, in that order of precedence.
//!
//! Every field has a flag (`moq-relay --help` lists them), an environment
//! variable, and a TOML key of the same name with `_` for `-`:
//!
//! ```toml
//! bind = "[::]:4443"
//! http_bind = "[::]:4443"
//! tls_generate = ["localhost"]
//! cache_max_age = "10s"
//! auth_public = ["demo"]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;

/// How to run the relay.
#[derive(Parser, Deserialize, Debug, Clone, PartialEq)]
#[command(
    name = "moq-relay",
    version,
    about = "A Media over QUIC relay (moq-lite and IETF moq-transport)",
    after_help = "Versions, in order of preference: moq-lite-06, moq-lite-05, moq-lite-04, moq-lite-03, moq-lite-02 \
                  and -01 (SETUP), moq-transport-22, -21, -20, -19, -18, -17, -16, -15, -14; over raw QUIC, \
                  WebTransport and WebSocket (QMux)."
)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Optional TOML file with any of these settings; flags and environment win.
    #[arg(value_name = "CONFIG.toml")]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,

    /// UDP address for raw QUIC and WebTransport.
    #[arg(long, env = "MOQ_RELAY_BIND", default_value = "[::]:4443")]
    pub bind: SocketAddr,

    /// TLS certificate chain (PEM); repeat with --tls-key for several names.
    #[arg(long = "tls-cert", env = "MOQ_RELAY_TLS_CERT", value_delimiter = ',')]
    pub tls_cert: Vec<PathBuf>,

    /// TLS private key (PEM) for the --tls-cert at the same position.
    #[arg(long = "tls-key", env = "MOQ_RELAY_TLS_KEY", value_delimiter = ',')]
    pub tls_key: Vec<PathBuf>,

    /// Host names / IPs for a generated self-signed certificate (ECDSA,
    /// valid 14 days, accepted by browsers by hash). Used when no
    /// --tls-cert is given; defaults to localhost.
    #[arg(long = "tls-generate", env = "MOQ_RELAY_TLS_GENERATE", value_delimiter = ',')]
    pub tls_generate: Vec<String>,

    /// TCP address of the HTTP side (certificate hash, health, metrics,
    /// announced, fetch); an empty value disables it.
    #[arg(long = "http-bind", env = "MOQ_RELAY_HTTP_BIND", default_value = "[::]:4443")]
    pub http_bind: String,

    /// How long a group is kept once a newer one exists (e.g. 10s, 500ms).
    #[arg(long = "cache-max-age", env = "MOQ_RELAY_CACHE_MAX_AGE", default_value = "10s", value_parser = parse_duration)]
    #[serde(deserialize_with = "deserialize_duration")]
    pub cache_max_age: Duration,

    /// Payload bytes kept per track.
    #[arg(long = "cache-max-bytes", env = "MOQ_RELAY_CACHE_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_max_bytes: u64,

    /// Payload bytes one group may hold.
    #[arg(long = "cache-group-bytes", env = "MOQ_RELAY_CACHE_GROUP_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub cache_group_bytes: u64,

    /// Frames one group may hold.
    #[arg(long = "cache-group-frames", env = "MOQ_RELAY_CACHE_GROUP_FRAMES", default_value_t = 64 * 1024)]
    pub cache_group_frames: u64,

    /// QUIC idle timeout: a silent peer is dropped after this long.
    #[arg(long = "quic-idle-timeout", env = "MOQ_RELAY_QUIC_IDLE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    #[serde(deserialize_with = "deserialize_duration")]
    pub quic_idle_timeout: Duration,

    /// QUIC keep-alive interval.
    #[arg(long = "quic-keep-alive", env = "MOQ_RELAY_QUIC_KEEP_ALIVE", default_value = "4s", value_parser = parse_duration)]
    #[serde(deserialize_with = "deserialize_duration")]
    pub quic_keep_alive: Duration,

    /// Concurrent bidirectional streams a peer may open (subscriptions,
    /// announce interests, fetches), at most: a connection is granted 8
    /// (or this, if lower) at first, doubled as it uses them.
    #[arg(
        long = "quic-max-bidi-streams",
        env = "MOQ_RELAY_QUIC_MAX_BIDI_STREAMS",
        default_value_t = 128
    )]
    pub quic_max_bidi_streams: u32,

    /// Concurrent unidirectional streams a peer may open (groups in flight),
    /// at most: a connection is granted 8 (or this, if lower) at first,
    /// doubled as it uses them.
    #[arg(
        long = "quic-max-uni-streams",
        env = "MOQ_RELAY_QUIC_MAX_UNI_STREAMS",
        default_value_t = 256
    )]
    pub quic_max_uni_streams: u32,

    /// Concurrent sessions; more are refused at the handshake.
    #[arg(
        long = "max-sessions",
        env = "MOQ_RELAY_MAX_SESSIONS",
        default_value_t = 10_000
    )]
    pub max_sessions: usize,

    /// Broadcasts one session may announce at once; past it, that session's
    /// announcements are refused (its broadcasts end), others are unaffected.
    #[arg(long = "max-announced", env = "MOQ_RELAY_MAX_ANNOUNCED", default_value_t = moq_lite::DEFAULT_MAX_ANNOUNCED)]
    pub max_announced: usize,

    /// Key that verifies `?jwt=` tokens (a JWK file). Without it the relay
    /// is open to everyone.
    #[arg(long = "auth-key", env = "MOQ_RELAY_AUTH_KEY")]
    pub auth_key: Option<PathBuf>,

    /// Prefixes anyone may publish and subscribe under without a token.
    #[arg(long = "auth-public", env = "MOQ_RELAY_AUTH_PUBLIC", value_delimiter = ',')]
    pub auth_public: Vec<String>,

    /// Another relay to link with (repeatable): this relay dials it and keeps
    /// the link up; broadcasts then flow both ways across the cluster. A
    /// `?cost=N` on the URL prices the link (moq-lite-06): routes are chosen
    /// by total cost first, then by hop count; unpriced links cost 1.
    #[arg(
        long = "cluster-connect",
        env = "MOQ_RELAY_CLUSTER_CONNECT",
        value_delimiter = ','
    )]
    pub cluster_connect: Vec<String>,

    /// File holding the JWT (full rights: root "", put and get "") presented
    /// to the relays this one dials.
    #[arg(long = "cluster-token", env = "MOQ_RELAY_CLUSTER_TOKEN")]
    pub cluster_token: Option<PathBuf>,

    /// Accept any certificate from cluster peers (development only).
    #[arg(
        long = "cluster-tls-disable-verify",
        env = "MOQ_RELAY_CLUSTER_TLS_DISABLE_VERIFY"
    )]
    #[serde(default)]
    pub cluster_tls_disable_verify: bool,

    /// This relay's hop ID in the cluster, in [1, 2^53); random by default.
    #[arg(long = "hop-id", env = "MOQ_RELAY_HOP_ID")]
    pub hop_id: Option<u64>,

    /// How long shutdown waits for sessions to leave after GOAWAY.
    #[arg(long = "shutdown-drain", env = "MOQ_RELAY_SHUTDOWN_DRAIN", default_value = "5s", value_parser = parse_duration)]
    #[serde(deserialize_with = "deserialize_duration")]
    pub shutdown_drain: Duration,

    /// Log filter (tracing syntax, e.g. `info` or `moq_lite=debug`);
    /// RUST_LOG wins when set.
    #[arg(long = "log-level", env = "MOQ_RELAY_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["moq-relay"])
    }
}

impl Config {
    /// Reads the configuration the way the binary does: flags and
    /// environment over the TOML file named by the first positional argument.
    pub fn load<I, T>(args: I) -> anyhow::Result<Config>
    where
        I: IntoIterator<Item = T> + Clone,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Config::command().try_get_matches_from(args)?;
        let cli = Config::from_arg_matches(&matches)?;
        let Some(path) = cli.config_file.clone() else {
            return Ok(cli);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid {}: {e}", path.display()))?;
        // Only flags and variables actually given override the file, not
        // clap's defaults (the file's own defaults are the same values).
        let given = |id: &str| {
            matches
                .value_source(id)
                .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue)
        };
        macro_rules! take {
            ($($field:ident),* $(,)?) => {
                $(if given(stringify!($field)) {
                    config.$field = cli.$field.clone();
                })*
            };
        }
        take!(
            bind,
            tls_cert,
            tls_key,
            tls_generate,
            http_bind,
            cache_max_age,
            cache_max_bytes,
            cache_group_bytes,
            cache_group_frames,
            quic_idle_timeout,
            quic_keep_alive,
            quic_max_bidi_streams,
            quic_max_uni_streams,
            max_sessions,
            max_announced,
            auth_key,
            auth_public,
            cluster_connect,
            cluster_token,
            cluster_tls_disable_verify,
            hop_id,
            shutdown_drain,
            log_level,
        );
        config.config_file = Some(path);
        Ok(config)
    }

    /// The cache bounds for every track the relay holds.
    pub fn cache(&self) -> moq_lite::model::CacheConfig {
        moq_lite::model::CacheConfig {
            max_age: self.cache_max_age,
            max_bytes: self.cache_max_bytes,
            max_group_bytes: self.cache_group_bytes,
            max_group_frames: self.cache_group_frames,
        }
    }
}

/// Parses `10s`, `500ms`, `250us`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("invalid duration `{text}`"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "us" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in `{text}` (use us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration `{text}`"))
}

fn deserialize_duration<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_version() {
        use clap::CommandFactory;
        let help = Config::command().render_long_help().to_string();
        for version in moq_transport_compat::protocols::VERSIONS {
            let name = version.name();
            let short = name.trim_start_matches("moq-transport");
            assert!(
                help.contains(&name) || help.contains(short),
                "{name} missing from --help"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_start_a_working_relay() {
        let config = Config::default();
        assert_eq!(config.bind, "[::]:4443".parse().unwrap());
        assert_eq!(config.http_bind, "[::]:4443");
        assert!(config.tls_cert.is_empty());
        assert!(config.auth_key.is_none());
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("moq-relay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:5000\"\ncache_max_age = \"3s\"\nauth_public = [\"demo\"]\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let config = Config::load(["moq-relay", file, "--bind", "127.0.0.1:6000"]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(config.cache_max_age, Duration::from_secs(3));
        assert_eq!(config.auth_public, vec!["demo".to_string()]);

        std::fs::write(dir.join("bad.toml"), "bnd = 1\n").unwrap();
        let bad = dir.join("bad.toml");
        assert!(Config::load(["moq-relay", bad.to_str().unwrap()]).is_err());
    }
}

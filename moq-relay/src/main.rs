//! The `moq-relay` binary: parse the configuration, start logging, run.
//!
//! `moq-relay token generate|sign|verify` manages auth keys and tokens
//! instead of running the relay.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use moq_relay::auth::{self, Algorithm};
use tracing_subscriber::EnvFilter;

/// `moq-relay token ...`: keys and tokens for relay operators.
#[derive(Parser, Debug)]
#[command(name = "moq-relay token", about = "Create keys and tokens for moq-relay auth")]
struct TokenCli {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Generate a key (JWK file) for --auth-key and token signing.
    Generate {
        /// HS256, ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        algorithm: Algorithm,
        /// Where to write the (private) key.
        #[arg(long)]
        out: PathBuf,
        /// Also write the public half here (ES256 / EdDSA), for relays that
        /// only verify.
        #[arg(long)]
        public_out: Option<PathBuf>,
    },
    /// Sign a token granting publish (--put) and subscribe (--get) under a root.
    Sign {
        /// The private key (JWK or PEM).
        #[arg(long)]
        key: PathBuf,
        /// The URL path the token is for (sessions at it or below it).
        #[arg(long, default_value = "")]
        root: String,
        /// Prefixes (relative to root) the holder may publish under; "" = all.
        #[arg(long)]
        put: Vec<String>,
        /// Prefixes (relative to root) the holder may subscribe under; "" = all.
        #[arg(long)]
        get: Vec<String>,
        /// Lifetime, e.g. 3600s or 24h; none = never expires.
        #[arg(long, value_parser = moq_relay::parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// Check a token and print its claims.
    Verify {
        /// The key (JWK or PEM; the public half is enough).
        #[arg(long)]
        key: PathBuf,
        /// The token.
        token: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "token") {
        return token(TokenCli::parse_from(args.iter().skip(1)));
    }
    let config = match moq_relay::Config::load(args) {
        Ok(config) => config,
        // --help, --version and usage errors print the clap way.
        Err(err) => match err.downcast::<clap::Error>() {
            Ok(clap) => clap.exit(),
            Err(err) => return Err(err),
        },
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    moq_relay::run(config).await
}

fn token(cli: TokenCli) -> anyhow::Result<()> {
    match cli.command {
        TokenCommand::Generate {
            algorithm,
            out,
            public_out,
        } => {
            auth::generate_key_file(algorithm, &out, public_out.as_deref())?;
            eprintln!("wrote {algorithm} key to {}", out.display());
        }
        TokenCommand::Sign {
            key,
            root,
            put,
            get,
            expires,
        } => {
            let token = auth::sign_token(&key, &root, &put, &get, expires, SystemTime::now())?;
            println!("{token}");
        }
        TokenCommand::Verify { key, token } => {
            let claims = auth::verify_token(&key, &token, SystemTime::now())?;
            println!("{claims:#?}");
        }
    }
    Ok(())
}

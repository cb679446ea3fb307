//! moq-relay: a Media over QUIC relay.
//!
//! Clients publish broadcasts into it and subscribe to them through it, over
//! raw QUIC or WebTransport on one UDP port. One origin is shared by every
//! session; each track is fetched from its publisher once however many
//! subscribers it has, and its recent groups are cached so that late joiners
//! start at once and slow subscribers never slow the others.
//!
//! [`run`] is what the `moq-relay` binary does; tests and embedders use
//! [`Relay`] to bind first (port 0) and learn the addresses.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let config = moq_relay::Config::default();
//! let relay = moq_relay::Relay::bind(config).await?;
//! println!("QUIC on {}", relay.local_addr()?);
//! relay.run(std::future::pending()).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod auth;
mod cluster;
mod config;
mod http;
mod metrics;
mod relay;

pub use auth::Access;
pub use cluster::random_hop_id;
pub use config::{Config, parse_duration};
pub use metrics::Metrics;
pub use relay::Relay;

/// Runs a relay with `config` until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let relay = Relay::bind(config).await?;
    relay.run(shutdown_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

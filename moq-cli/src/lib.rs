//! The library behind the `moq` command.
//!
//! Each command is a function that moves stdin/stdout to and from the
//! moq-lite model over a session: [`publish::publish`],
//! [`subscribe::subscribe`], [`announced::announced`], [`clock::publish`]
//! and [`clock::subscribe`]. [`Connection`] holds the URL and the global
//! flags (TLS, protocol, token, reconnect). `src/main.rs` is only argument
//! parsing on top.

#![warn(missing_docs)]

pub mod announced;
pub mod clock;
pub mod connection;
pub mod error;
pub mod format;
pub mod publish;
pub mod stats;
pub mod subscribe;

pub use announced::announced;
pub use connection::{Backoff, Connection, Protocol, TransportPin};
pub use format::Format;
pub use publish::{PublishOptions, TrackSpec, publish};
pub use subscribe::{Start, SubscribeOptions, subscribe};

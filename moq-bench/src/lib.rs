//! moq-bench: load generator and benchmarks for moq-lite and moq-relay.
//!
//! - [`load`]: many publishing and subscribing connections against a relay,
//!   with end-to-end latency, loss and throughput ([`stats`]), and the
//!   relay's CPU and memory ([`procfs`]).
//! - [`baseline`]: the same fan-out over raw QUIC, the physical limit.
//! - [`standard`]: the standard report behind `just bench`.
//! - [`knobs`]: flags, ranges and TOML presets; [`cli`]: the binary.
//!
//! The criterion micro-benchmarks of the model live in `benches/`.

#![warn(missing_docs)]

pub mod baseline;
pub mod cli;
pub mod hist;
pub mod knobs;
pub mod load;
mod plot;
pub mod procfs;
pub mod standard;
pub mod stats;

pub use cli::LocalRelay;
pub use knobs::{Knobs, Scenario};
pub use load::{Options, Target};
pub use stats::Summary;

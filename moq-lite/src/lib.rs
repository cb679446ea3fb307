//! moq-lite: Media over QUIC for real-time live media.
//!
//! The crate is layered: [`model`] is the data model and its cache (no I/O);
//! the wire codec and sessions build on it. Applications publish into and
//! read from the model; sessions carry it across the network.

pub mod coding;
pub mod endpoint;
mod error;
pub mod lite;
pub mod model;
mod session;

pub use session::{DEFAULT_MAX_ANNOUNCED, Session, SessionConfig, SessionStats, StatsSnapshot};

pub use error::{Error, Result};

/// Re-exported so applications use the same `Bytes` as the model.
pub use bytes;

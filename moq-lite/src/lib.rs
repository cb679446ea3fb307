//! moq-lite: Media over QUIC for real-time live media.
//!
//! The crate is layered: [`model`] is the data model and its cache (no I/O);
//! [`coding`] (protocol-neutral primitives) and [`lite`] (the moq-lite
//! messages) are the pure wire codec; [`delivery`] is the pure policy every
//! protocol uses to send groups (priorities, in-flight bound); [`Session`]
//! carries the model over a QUIC or WebTransport connection made with
//! [`endpoint`], its publisher and subscriber halves driving the codec over
//! [`stream`]'s message reader and writer (which other protocol families on
//! the model can use too).
//! Applications publish into and read from the model; sessions do the rest.
//!
//! Dependencies point one way: `coding` imports nothing else of the crate
//! but its error type, `lite` imports `coding` and `model`, and only the
//! session imports them all.
//!
//! ```no_run
//! use moq_lite::endpoint::{Client, ClientConfig};
//! use moq_lite::model::{OriginProducer, Track};
//! use moq_lite::Session;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Subscribe to everything a relay offers, then read one track.
//! let client = Client::new(ClientConfig::default())?;
//! let connected = client.connect(&"https://relay.example:4443/room".parse()?).await?;
//! let origin = OriginProducer::new();
//! let _session = Session::connect(connected.session, None, origin.clone()).await?;
//!
//! let mut announced = origin.consume();
//! while let Some(announcement) = announced.announced().await {
//!     let Some(broadcast) = announcement.broadcast else { continue };
//!     let mut track = broadcast.subscribe_track(&Track::new("chat"))?;
//!     while let Some(mut group) = track.next_group().await? {
//!         while let Some(frame) = group.read_frame().await? {
//!             println!("{}: {}", announcement.path, String::from_utf8_lossy(&frame));
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod coding;
pub mod delivery;
pub mod endpoint;
mod error;
pub mod lite;
pub mod model;
mod session;

pub use session::stream;
pub use session::{
    Codes, DEFAULT_MAX_ANNOUNCED, Session, SessionConfig, SessionStats, SharedTransport, StatsSnapshot,
    read_setup,
};

pub use error::{Error, Result};

/// Re-exported so applications use the same `Bytes` as the model.
pub use bytes;

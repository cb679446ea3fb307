//! The moq-lite-05+ Setup streams: ours out, the peer's in.
//!
//! Each endpoint opens one unidirectional Setup stream, writes one SETUP and
//! finishes it. A server reads the client's before the session starts (its
//! Path is the session root on raw QUIC, and the reference server does the
//! same, so a client must send it at once); a client reads the server's
//! whenever it comes, as one more unidirectional stream. What the peer said
//! is kept in a [`PeerSetup`] the halves read (its hop ID stands in for an
//! Exclude Hop of 0).

use std::sync::{Arc, OnceLock};

use web_transport_trait::Session as Transport;

use super::stream::{Reader, StreamError, Writer, transport_error};
use crate::Error;
use crate::lite::{DataStream, HopId, Message, Role, Setup, StreamType, Version};

/// The peer's SETUP, once it arrived.
#[derive(Clone, Default, Debug)]
pub(crate) struct PeerSetup(Arc<OnceLock<Setup>>);

impl PeerSetup {
    /// Already known (a server read it before the session started).
    pub fn known(setup: Setup) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(setup);
        PeerSetup(Arc::new(cell))
    }

    /// Records the peer's SETUP; a second one is a protocol violation
    /// (shipped notes, section 4).
    pub fn set(&self, setup: Setup) -> Result<(), Error> {
        self.0.set(setup).map_err(|_| Error::ProtocolViolation)
    }

    /// The peer's hop ID, if it sent one.
    pub fn hop(&self) -> Option<HopId> {
        self.0.get().and_then(|s| s.hop)
    }

    /// The price the peer declared for pulling over this link, if it did.
    pub fn cost(&self) -> Option<u64> {
        self.0.get().and_then(|s| s.cost)
    }
}

/// What we say in our SETUP.
pub(crate) struct OurSetup {
    pub hop: Option<HopId>,
    /// Client only: the session root (and query) over raw QUIC.
    pub path: Option<String>,
    /// Client only: the directions we wired.
    pub role: Role,
    /// Client only: the price of pulling over this link.
    pub cost: Option<u64>,
}

/// Opens our Setup stream, writes SETUP and finishes it.
pub(crate) async fn send_setup<T: Transport>(
    transport: &T,
    version: Version,
    ours: OurSetup,
) -> Result<(), Error> {
    let send = transport.open_uni().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let setup = Setup {
        // We answer Probe streams with the congestion controller's estimates.
        probe: Some(1),
        path: ours.path,
        role: ours.role,
        cost: ours.cost,
        hop: ours.hop,
    };
    writer
        .encode(|b| {
            DataStream::Setup.encode(version, b)?;
            setup.encode(version, b)
        })
        .await
        .map_err(|e| e.error().clone())?;
    writer.finish().map_err(|e| e.error().clone())
}

/// Server side, before the session: accepts unidirectional streams until the
/// client's Setup stream, and returns its SETUP. Streams of another type
/// before it are refused (stop-sending), as the shipped server does.
pub async fn read_setup<T: Transport>(transport: &T, version: Version) -> Result<Setup, Error> {
    loop {
        let recv = transport.accept_uni().await.map_err(transport_error)?;
        let mut reader = Reader::new(recv);
        let kind = reader
            .decode_required(|b| DataStream::decode(b, version))
            .await
            .map_err(|e| e.error().clone())?;
        if kind != StreamType::Known(DataStream::Setup) {
            reader.stop(Error::UnexpectedStream.code());
            continue;
        }
        return read_setup_message(&mut reader, version)
            .await
            .map_err(|e| e.error().clone());
    }
}

/// Reads the SETUP on a Setup stream whose type was read.
pub(crate) async fn read_setup_message<R: web_transport_trait::RecvStream>(
    reader: &mut Reader<R>,
    version: Version,
) -> Result<Setup, StreamError> {
    reader.decode_required(|b| Setup::decode(b, version)).await
}

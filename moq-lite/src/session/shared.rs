//! One transport handle per session, shared: [`SharedTransport`].
//!
//! A session's halves, its run loop and each stream task hold a clone of the
//! transport. `web_transport_quinn::Session` is several hundred bytes and a
//! QMux session as large, so those clones were most of an idle session's
//! task memory; behind one `Arc`, each is a pointer. Both protocol families
//! start their sessions through it.

use std::sync::Arc;

use bytes::Bytes;
use web_transport_trait::Session as Transport;

/// A transport behind an `Arc`: the same session, cheap to clone. The
/// transport closes when the last clone goes, as it would unwrapped.
#[derive(Debug)]
pub struct SharedTransport<T>(Arc<T>);

impl<T> SharedTransport<T> {
    /// Shares `transport`.
    pub fn new(transport: T) -> Self {
        SharedTransport(Arc::new(transport))
    }
}

impl<T> Clone for SharedTransport<T> {
    fn clone(&self) -> Self {
        SharedTransport(self.0.clone())
    }
}

impl<T: Transport> Transport for SharedTransport<T> {
    type SendStream = T::SendStream;
    type RecvStream = T::RecvStream;
    type Error = T::Error;

    async fn accept_uni(&self) -> Result<Self::RecvStream, Self::Error> {
        self.0.accept_uni().await
    }

    async fn accept_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        self.0.accept_bi().await
    }

    async fn open_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        self.0.open_bi().await
    }

    async fn open_uni(&self) -> Result<Self::SendStream, Self::Error> {
        self.0.open_uni().await
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), Self::Error> {
        self.0.send_datagram(payload)
    }

    async fn recv_datagram(&self) -> Result<Bytes, Self::Error> {
        self.0.recv_datagram().await
    }

    fn max_datagram_size(&self) -> usize {
        self.0.max_datagram_size()
    }

    fn protocol(&self) -> Option<&str> {
        self.0.protocol()
    }

    fn close(&self, code: u32, reason: &str) {
        self.0.close(code, reason)
    }

    async fn closed(&self) -> Self::Error {
        self.0.closed().await
    }

    fn stats(&self) -> impl web_transport_trait::Stats {
        self.0.stats()
    }
}

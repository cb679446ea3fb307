//! The sessions the endpoints hand out: [`QuicSession`].
//!
//! A `web_transport_quinn::Session` whose peer's concurrent-stream limits
//! start small and grow with use ([`StreamLimit`] decides, this file counts
//! the streams and tells quinn). Both protocol families (moq-lite and the
//! IETF drafts) run over it unchanged: it is the same
//! `web_transport_trait::Session`, only its accepted streams carry a
//! handle that counts them closed when dropped.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes};
use web_transport_quinn::quinn::{self, VarInt};
use web_transport_trait::MaybeSend;

use super::QuicConfig;
use super::stream_limit::StreamLimit;

/// A raw QUIC or WebTransport session whose peer may open more streams at
/// once as it needs them, up to [`QuicConfig`]'s maximums (see
/// [`StreamLimit`] for the rule).
///
/// It dereferences to the `web_transport_quinn::Session` (and so to the
/// `quinn::Connection`) for statistics, the request, and the like.
#[derive(Clone)]
pub struct QuicSession {
    inner: web_transport_quinn::Session,
    limits: Arc<Limits>,
}

impl QuicSession {
    /// Wraps a session whose connection was made with `quic`'s
    /// [`QuicConfig::transport_config`], so that quinn's limits are the
    /// initial ones counted from here.
    pub(crate) fn new(inner: web_transport_quinn::Session, quic: &QuicConfig) -> Self {
        let conn = (*inner).clone();
        let limits = Arc::new(Limits {
            conn,
            dirs: Mutex::new([
                StreamLimit::new(quic.initial_bidi_streams.into(), quic.max_bidi_streams.into()),
                StreamLimit::new(quic.initial_uni_streams.into(), quic.max_uni_streams.into()),
            ]),
        });
        Self { inner, limits }
    }

    /// The session without the limit growth: streams accepted from it from
    /// now on are not counted, so the limits stay where they are.
    pub fn into_inner(self) -> web_transport_quinn::Session {
        self.inner
    }

    /// The concurrent bidirectional and unidirectional stream limits the
    /// peer has now, for tests and diagnostics.
    pub fn stream_limits(&self) -> (u64, u64) {
        let dirs = self.limits.lock();
        (dirs[Dir::Bi as usize].limit(), dirs[Dir::Uni as usize].limit())
    }
}

impl Deref for QuicSession {
    type Target = web_transport_quinn::Session;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::fmt::Debug for QuicSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[derive(Clone, Copy, Debug)]
enum Dir {
    Bi = 0,
    Uni = 1,
}

/// The counts of one connection, shared by its session clones and the
/// streams it accepted.
struct Limits {
    conn: quinn::Connection,
    /// Indexed by [`Dir`].
    dirs: Mutex<[StreamLimit; 2]>,
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, [StreamLimit; 2]> {
        // The counts stay consistent whatever panicked while holding them.
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a stream the peer opened, raising its limit if it is time;
    /// the handle that counts it closed when its last half drops.
    fn opened(self: &Arc<Self>, dir: Dir) -> Arc<Held> {
        let mut dirs = self.lock();
        if let Some(limit) = dirs[dir as usize].opened() {
            // Told quinn under the lock, so that two raises cannot reach it
            // in the wrong order (quinn would lower the limit again).
            let count = VarInt::from_u64(limit).unwrap_or(VarInt::MAX);
            match dir {
                Dir::Bi => self.conn.set_max_concurrent_bi_streams(count),
                Dir::Uni => self.conn.set_max_concurrent_uni_streams(count),
            }
            tracing::trace!(?dir, limit, "raised the peer's stream limit");
        }
        Arc::new(Held {
            limits: self.clone(),
            dir,
        })
    }
}

/// One stream the peer opened, counted open until dropped (by both halves
/// of a bidirectional stream, which share it).
struct Held {
    limits: Arc<Limits>,
    dir: Dir,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.limits.lock()[self.dir as usize].closed();
    }
}

impl web_transport_trait::Session for QuicSession {
    type SendStream = QuicSendStream;
    type RecvStream = QuicRecvStream;
    type Error = web_transport_quinn::SessionError;

    async fn accept_uni(&self) -> Result<Self::RecvStream, Self::Error> {
        let recv = self.inner.accept_uni().await?;
        let held = self.limits.opened(Dir::Uni);
        Ok(QuicRecvStream::new(recv, Some(held)))
    }

    async fn accept_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        let (send, recv) = self.inner.accept_bi().await?;
        let held = self.limits.opened(Dir::Bi);
        Ok((
            QuicSendStream::new(send, Some(held.clone())),
            QuicRecvStream::new(recv, Some(held)),
        ))
    }

    async fn open_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        let (send, recv) = self.inner.open_bi().await?;
        Ok((QuicSendStream::new(send, None), QuicRecvStream::new(recv, None)))
    }

    async fn open_uni(&self) -> Result<Self::SendStream, Self::Error> {
        let send = self.inner.open_uni().await?;
        Ok(QuicSendStream::new(send, None))
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), Self::Error> {
        web_transport_trait::Session::send_datagram(&self.inner, payload)
    }

    async fn recv_datagram(&self) -> Result<Bytes, Self::Error> {
        web_transport_trait::Session::recv_datagram(&self.inner).await
    }

    fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size()
    }

    fn protocol(&self) -> Option<&str> {
        self.inner.protocol()
    }

    fn close(&self, code: u32, reason: &str) {
        web_transport_trait::Session::close(&self.inner, code, reason)
    }

    async fn closed(&self) -> Self::Error {
        self.inner.closed().await
    }

    #[allow(refining_impl_trait)]
    fn stats(&self) -> web_transport_quinn::SessionStats {
        self.inner.stats()
    }
}

/// A [`QuicSession`] send stream: the quinn one, and for a stream the
/// peer opened, its count.
pub struct QuicSendStream {
    inner: web_transport_quinn::SendStream,
    _held: Option<Arc<Held>>,
}

impl QuicSendStream {
    fn new(inner: web_transport_quinn::SendStream, held: Option<Arc<Held>>) -> Self {
        Self { inner, _held: held }
    }
}

// The quinn stream, for what the trait does not cover (`stopped`, ids).
impl Deref for QuicSendStream {
    type Target = web_transport_quinn::SendStream;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for QuicSendStream {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl std::fmt::Debug for QuicSendStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A [`QuicSession`] receive stream: the quinn one, and for a stream the
/// peer opened, its count.
pub struct QuicRecvStream {
    inner: web_transport_quinn::RecvStream,
    _held: Option<Arc<Held>>,
}

impl QuicRecvStream {
    fn new(inner: web_transport_quinn::RecvStream, held: Option<Arc<Held>>) -> Self {
        Self { inner, _held: held }
    }
}

impl Deref for QuicRecvStream {
    type Target = web_transport_quinn::RecvStream;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for QuicRecvStream {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl std::fmt::Debug for QuicRecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

// Every method forwards, the defaulted ones too, so that the quinn streams'
// own implementations (zero-copy chunks, cancel-safe writes) stay in use.
impl web_transport_trait::SendStream for QuicSendStream {
    type Error = web_transport_quinn::WriteError;

    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        web_transport_trait::SendStream::write(&mut self.inner, buf).await
    }

    async fn write_buf<B: Buf + MaybeSend>(&mut self, buf: &mut B) -> Result<usize, Self::Error> {
        web_transport_trait::SendStream::write_buf(&mut self.inner, buf).await
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), Self::Error> {
        web_transport_trait::SendStream::write_chunk(&mut self.inner, chunk).await
    }

    async fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        web_transport_trait::SendStream::write_all(&mut self.inner, buf).await
    }

    async fn write_all_buf<B: Buf + MaybeSend>(&mut self, buf: &mut B) -> Result<(), Self::Error> {
        web_transport_trait::SendStream::write_all_buf(&mut self.inner, buf).await
    }

    fn set_priority(&mut self, order: i32) {
        web_transport_trait::SendStream::set_priority(&mut self.inner, order)
    }

    fn finish(&mut self) -> Result<(), Self::Error> {
        web_transport_trait::SendStream::finish(&mut self.inner)
    }

    fn reset(&mut self, code: u32) {
        web_transport_trait::SendStream::reset(&mut self.inner, code)
    }

    async fn closed(&mut self) -> Result<(), Self::Error> {
        web_transport_trait::SendStream::closed(&mut self.inner).await
    }
}

impl web_transport_trait::RecvStream for QuicRecvStream {
    type Error = web_transport_quinn::ReadError;

    async fn read(&mut self, dst: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        web_transport_trait::RecvStream::read(&mut self.inner, dst).await
    }

    async fn read_buf<B: BufMut + MaybeSend>(&mut self, buf: &mut B) -> Result<Option<usize>, Self::Error> {
        web_transport_trait::RecvStream::read_buf(&mut self.inner, buf).await
    }

    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Self::Error> {
        web_transport_trait::RecvStream::read_chunk(&mut self.inner, max).await
    }

    fn stop(&mut self, code: u32) {
        web_transport_trait::RecvStream::stop(&mut self.inner, code)
    }

    async fn closed(&mut self) -> Result<(), Self::Error> {
        web_transport_trait::RecvStream::closed(&mut self.inner).await
    }

    async fn read_all(&mut self) -> Result<Bytes, Self::Error> {
        web_transport_trait::RecvStream::read_all(&mut self.inner).await
    }

    async fn read_all_buf<B: BufMut + MaybeSend>(&mut self, buf: &mut B) -> Result<usize, Self::Error> {
        web_transport_trait::RecvStream::read_all_buf(&mut self.inner, buf).await
    }
}

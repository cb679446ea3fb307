//! One transport handle per session, shared: [`SharedTransport`].
//!
//! A session's halves, its run loop and each stream task hold a clone of the
//! transport. `web_transport_quinn::Session` is several hundred bytes and a
//! QMux session as large, so those clones were most of an idle session's
//! task memory; behind one `Arc`, each is a pointer. It is also where error
//! codes cross the wire ([`Codes`]): every reset, stop and close going out,
//! and every one coming in, is translated here, so the session code only
//! knows [`crate::Error`].

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use web_transport_trait::{MaybeSend, RecvStream, SendStream, Session as Transport};

use super::codes::Codes;

/// A transport behind an `Arc`: the same session, cheap to clone, speaking
/// the error codes of [`Codes`]. The transport closes when the last clone
/// goes, as it would unwrapped.
#[derive(Debug)]
pub struct SharedTransport<T> {
    inner: Arc<T>,
    codes: Codes,
}

impl<T> SharedTransport<T> {
    /// Shares `transport`, whose codes are [`Error::code`](crate::Error::code)'s.
    pub fn new(transport: T) -> Self {
        Self::with_codes(transport, Codes::Table)
    }

    /// Shares `transport`, translating error codes to and from `codes`.
    pub fn with_codes(transport: T, codes: Codes) -> Self {
        SharedTransport {
            inner: Arc::new(transport),
            codes,
        }
    }
}

impl<T> Clone for SharedTransport<T> {
    fn clone(&self) -> Self {
        SharedTransport {
            inner: self.inner.clone(),
            codes: self.codes,
        }
    }
}

impl<T: Transport> Transport for SharedTransport<T> {
    type SendStream = CodedSend<T::SendStream>;
    type RecvStream = CodedRecv<T::RecvStream>;
    type Error = CodedError<T::Error>;

    async fn accept_uni(&self) -> Result<Self::RecvStream, Self::Error> {
        let recv = self.inner.accept_uni().await.map_err(|e| self.error(e))?;
        Ok(CodedRecv::new(recv, self.codes))
    }

    async fn accept_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        let (send, recv) = self.inner.accept_bi().await.map_err(|e| self.error(e))?;
        Ok((CodedSend::new(send, self.codes), CodedRecv::new(recv, self.codes)))
    }

    async fn open_bi(&self) -> Result<(Self::SendStream, Self::RecvStream), Self::Error> {
        let (send, recv) = self.inner.open_bi().await.map_err(|e| self.error(e))?;
        Ok((CodedSend::new(send, self.codes), CodedRecv::new(recv, self.codes)))
    }

    async fn open_uni(&self) -> Result<Self::SendStream, Self::Error> {
        let send = self.inner.open_uni().await.map_err(|e| self.error(e))?;
        Ok(CodedSend::new(send, self.codes))
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), Self::Error> {
        self.inner.send_datagram(payload).map_err(|e| self.error(e))
    }

    async fn recv_datagram(&self) -> Result<Bytes, Self::Error> {
        self.inner.recv_datagram().await.map_err(|e| self.error(e))
    }

    fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size()
    }

    fn protocol(&self) -> Option<&str> {
        self.inner.protocol()
    }

    fn close(&self, code: u32, reason: &str) {
        self.inner.close(self.codes.session_out(code), reason)
    }

    async fn closed(&self) -> Self::Error {
        self.error(self.inner.closed().await)
    }

    fn stats(&self) -> impl web_transport_trait::Stats {
        self.inner.stats()
    }
}

impl<T> SharedTransport<T> {
    fn error<E>(&self, inner: E) -> CodedError<E> {
        CodedError {
            inner,
            codes: self.codes,
        }
    }
}

/// A transport error whose codes read as [`crate::Error::code`]s.
#[derive(Debug, Clone)]
pub struct CodedError<E> {
    inner: E,
    codes: Codes,
}

impl<E: std::fmt::Display> std::fmt::Display for CodedError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CodedError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

impl<E: web_transport_trait::Error> web_transport_trait::Error for CodedError<E> {
    fn session_error(&self) -> Option<(u32, String)> {
        let (code, reason) = self.inner.session_error()?;
        Some((self.codes.session_in(code), reason))
    }

    fn stream_error(&self) -> Option<u32> {
        self.inner.stream_error().map(|code| self.codes.stream_in(code))
    }
}

/// A send stream whose reset codes are translated (see [`Codes`]).
#[derive(Debug)]
pub struct CodedSend<S> {
    inner: S,
    codes: Codes,
}

impl<S> CodedSend<S> {
    fn new(inner: S, codes: Codes) -> Self {
        CodedSend { inner, codes }
    }

    fn error<E>(&self, inner: E) -> CodedError<E> {
        CodedError {
            inner,
            codes: self.codes,
        }
    }
}

impl<S: SendStream> SendStream for CodedSend<S> {
    type Error = CodedError<S::Error>;

    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let result = self.inner.write(buf).await;
        result.map_err(|e| self.error(e))
    }

    async fn write_buf<B: Buf + MaybeSend>(&mut self, buf: &mut B) -> Result<usize, Self::Error> {
        let result = self.inner.write_buf(buf).await;
        result.map_err(|e| self.error(e))
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), Self::Error> {
        let result = self.inner.write_chunk(chunk).await;
        result.map_err(|e| self.error(e))
    }

    async fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        let result = self.inner.write_all(buf).await;
        result.map_err(|e| self.error(e))
    }

    async fn write_all_buf<B: Buf + MaybeSend>(&mut self, buf: &mut B) -> Result<(), Self::Error> {
        let result = self.inner.write_all_buf(buf).await;
        result.map_err(|e| self.error(e))
    }

    fn set_priority(&mut self, order: i32) {
        self.inner.set_priority(order)
    }

    fn finish(&mut self) -> Result<(), Self::Error> {
        let result = self.inner.finish();
        result.map_err(|e| self.error(e))
    }

    fn reset(&mut self, code: u32) {
        self.inner.reset(self.codes.stream_out(code))
    }

    async fn closed(&mut self) -> Result<(), Self::Error> {
        let result = self.inner.closed().await;
        result.map_err(|e| self.error(e))
    }
}

/// A receive stream whose stop codes are translated (see [`Codes`]).
#[derive(Debug)]
pub struct CodedRecv<R> {
    inner: R,
    codes: Codes,
}

impl<R> CodedRecv<R> {
    fn new(inner: R, codes: Codes) -> Self {
        CodedRecv { inner, codes }
    }

    fn error<E>(&self, inner: E) -> CodedError<E> {
        CodedError {
            inner,
            codes: self.codes,
        }
    }
}

impl<R: RecvStream> RecvStream for CodedRecv<R> {
    type Error = CodedError<R::Error>;

    async fn read(&mut self, dst: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        let result = self.inner.read(dst).await;
        result.map_err(|e| self.error(e))
    }

    async fn read_buf<B: BufMut + MaybeSend>(&mut self, buf: &mut B) -> Result<Option<usize>, Self::Error> {
        let result = self.inner.read_buf(buf).await;
        result.map_err(|e| self.error(e))
    }

    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Self::Error> {
        let result = self.inner.read_chunk(max).await;
        result.map_err(|e| self.error(e))
    }

    fn stop(&mut self, code: u32) {
        self.inner.stop(self.codes.stream_out(code))
    }

    async fn closed(&mut self) -> Result<(), Self::Error> {
        let result = self.inner.closed().await;
        result.map_err(|e| self.error(e))
    }

    async fn read_all(&mut self) -> Result<Bytes, Self::Error> {
        let result = self.inner.read_all().await;
        result.map_err(|e| self.error(e))
    }

    async fn read_all_buf<B: BufMut + MaybeSend>(&mut self, buf: &mut B) -> Result<usize, Self::Error> {
        let result = self.inner.read_all_buf(buf).await;
        result.map_err(|e| self.error(e))
    }
}

//! Message-level reading and writing on one stream (the approach of
//! moq-lite's `session::stream`, with [`Bytes`]-based decoders, since the
//! object readers of this crate take `&mut Bytes`).

use bytes::{Buf, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};
use web_transport_trait::{RecvStream, SendStream};

use super::error::{SessionError, transport_error};

/// How much a read asks for at a time.
const READ_SIZE: usize = 64 * 1024;

/// The most bytes buffered while waiting for one message (a 16 MiB object
/// payload plus its header).
const MAX_BUFFERED: usize = crate::data::MAX_OBJECT_PAYLOAD + 1024;

/// Why a stream's work ended early.
#[derive(Debug, Clone)]
pub enum StreamError {
    /// Only this stream is over (reset, stopped, connection gone, model refusal).
    Closed(moq_lite::Error),
    /// The peer broke the protocol: the session must close.
    Protocol(SessionError),
}

impl From<DecodeError> for StreamError {
    fn from(err: DecodeError) -> Self {
        StreamError::Protocol(SessionError::protocol(format!("decode: {err}")))
    }
}

impl From<EncodeError> for StreamError {
    fn from(err: EncodeError) -> Self {
        StreamError::Closed(err.into())
    }
}

impl From<moq_lite::Error> for StreamError {
    fn from(err: moq_lite::Error) -> Self {
        StreamError::Closed(err)
    }
}

/// Reads messages from a receive stream.
pub struct Reader<R: RecvStream> {
    stream: R,
    buf: BytesMut,
}

impl<R: RecvStream> Reader<R> {
    /// A reader with nothing buffered.
    pub fn new(stream: R) -> Self {
        Reader {
            stream,
            buf: BytesMut::new(),
        }
    }

    async fn fill(&mut self) -> Result<bool, StreamError> {
        if self.buf.len() > MAX_BUFFERED {
            return Err(StreamError::Protocol(SessionError::protocol("message too large")));
        }
        let chunk = self.stream.read_chunk(READ_SIZE).await;
        match chunk.map_err(|e| StreamError::Closed(transport_error(e)))? {
            Some(chunk) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The next value `decode` reads from the buffered bytes (retried with
    /// more bytes on [`DecodeError::Short`]); `None` at a clean end of stream.
    pub async fn decode<T>(
        &mut self,
        mut decode: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, StreamError> {
        loop {
            if !self.buf.is_empty() {
                let frozen = std::mem::take(&mut self.buf).freeze();
                let mut cursor = frozen.clone();
                match decode(&mut cursor) {
                    Ok(value) => {
                        drop(frozen);
                        self.buf = BytesMut::from(cursor);
                        return Ok(Some(value));
                    }
                    Err(DecodeError::Short) => {
                        drop(cursor);
                        self.buf = BytesMut::from(frozen);
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(StreamError::Protocol(SessionError::protocol(
                        "stream ended mid-message",
                    ))),
                };
            }
        }
    }

    /// Like [`decode`](Self::decode), but the end of the stream is an error.
    pub async fn decode_required<T>(
        &mut self,
        decode: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<T, StreamError> {
        self.decode(decode)
            .await?
            .ok_or_else(|| StreamError::Protocol(SessionError::protocol("stream ended early")))
    }

    /// Reads exactly one message framed as `Type (one byte) Length (16) Body`
    /// without reading past it: for the SETUP path, whose stream may be handed
    /// to moq-lite afterwards. Returns the whole message.
    pub async fn read_setup_message(&mut self) -> Result<Bytes, StreamError> {
        self.read_exact(3).await?;
        let len = u16::from_be_bytes([self.buf[1], self.buf[2]]) as usize;
        self.read_exact(3 + len).await?;
        Ok(self.buf.split_to(3 + len).freeze())
    }

    async fn read_exact(&mut self, n: usize) -> Result<(), StreamError> {
        while self.buf.len() < n {
            let chunk = self.stream.read_chunk(n - self.buf.len()).await;
            match chunk.map_err(|e| StreamError::Closed(transport_error(e)))? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => {
                    return Err(StreamError::Protocol(SessionError::protocol(
                        "stream ended early",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether bytes are buffered beyond what was decoded.
    pub fn has_buffered(&self) -> bool {
        self.buf.has_remaining()
    }

    /// Asks the peer to stop sending.
    pub fn stop(&mut self, code: u32) {
        self.stream.stop(code);
    }

    /// The stream, for handing over (nothing may be buffered).
    pub fn into_inner(self) -> R {
        self.stream
    }
}

/// Writes messages to a send stream; resets it if dropped unfinished.
pub struct Writer<S: SendStream> {
    stream: Option<S>,
    buf: BytesMut,
}

impl<S: SendStream> Writer<S> {
    /// A writer over `stream`.
    pub fn new(stream: S) -> Self {
        Writer {
            stream: Some(stream),
            buf: BytesMut::new(),
        }
    }

    /// Encodes with `encode` and writes the bytes.
    pub async fn encode(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), StreamError> {
        self.buf.clear();
        encode(&mut self.buf)?;
        let stream = self
            .stream
            .as_mut()
            .ok_or(StreamError::Closed(moq_lite::Error::Closed))?;
        let written = stream.write_all_buf(&mut self.buf).await;
        written.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Sets the send priority (higher first).
    pub fn set_priority(&mut self, priority: i32) {
        if let Some(s) = self.stream.as_mut() {
            s.set_priority(priority);
        }
    }

    /// Ends the stream cleanly.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        match self.stream.as_mut() {
            Some(s) => {
                let done = s.finish().map_err(|e| StreamError::Closed(transport_error(e)));
                self.stream = None;
                done
            }
            None => Ok(()),
        }
    }

    /// Ends the stream cleanly, then waits until the peer has every byte.
    /// Until then the writer still owns the stream, so dropping it (an
    /// aborted task) resets it; and the caller holds what it is sending
    /// (a group consumer) until it has really arrived, so a publisher that
    /// waits for its subscriptions to end never closes with data in flight.
    pub async fn finish_acked(&mut self) -> Result<(), StreamError> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        s.finish().map_err(|e| StreamError::Closed(transport_error(e)))?;
        let acked = s.closed().await;
        self.stream = None;
        acked.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Ends the stream abruptly with `code`.
    pub fn reset(&mut self, code: u32) {
        if let Some(mut s) = self.stream.take() {
            s.reset(code);
        }
    }

    /// Resolves once the peer asked us to stop sending (STOP_SENDING) or the
    /// stream is gone; never while we still own an open stream otherwise.
    pub async fn closed(&mut self) {
        match self.stream.as_mut() {
            Some(s) => {
                let _ = s.closed().await;
            }
            None => std::future::pending().await,
        }
    }

    /// The stream, for handing over.
    pub fn into_inner(mut self) -> Option<S> {
        self.stream.take()
    }
}

impl<S: SendStream> Drop for Writer<S> {
    fn drop(&mut self) {
        if let Some(mut s) = self.stream.take() {
            // Stream reset code 0x1: CANCELLED (every draft).
            s.reset(0x1);
        }
    }
}

//! Message-level reading and writing on one QUIC / WebTransport stream.
//!
//! [`Reader`] buffers what arrives and hands out whole messages through the
//! pure decoders (a message split across reads waits for the rest; one over
//! the size limit fails before it is buffered). [`Writer`] encodes into a
//! reused buffer and, unlike a bare quinn stream, resets the stream when
//! dropped unfinished: a cancelled task must never look like a complete group.

use bytes::{Buf, Bytes, BytesMut};
use web_transport_trait::{RecvStream, SendStream};

use crate::Error;
use crate::coding::{DecodeError, EncodeError, MAX_MESSAGE_SIZE, try_decode};

/// How much a read asks for at a time. Control messages and frame headers
/// are small, and payloads bypass this buffer (`read_chunk` hands quinn's
/// own chunks over), so a small reservation keeps idle streams cheap: every
/// stream waiting for its next message holds one.
const READ_SIZE: usize = 1024;

/// The error a transport failure becomes: a peer's stream reset or session
/// close carries its code (so an unauthorized session reads as
/// [`Error::Unauthorized`]); anything else means the connection is gone.
pub(crate) fn transport_error<E: web_transport_trait::Error>(err: E) -> Error {
    if let Some(code) = err.stream_error() {
        return Error::from_code(code.into());
    }
    match err.session_error() {
        Some((code, _)) => Error::from_code(code.into()),
        None => Error::Transport,
    }
}

/// Why a stream's transaction ended early.
///
/// Stream handlers return this, so `?` works on reads and writes alike; the
/// session closes only on [`StreamError::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The stream is over for a reason that concerns only it: the peer reset
    /// or stopped it, the connection went away, or the model refused what it
    /// carried. The session goes on.
    Closed(Error),
    /// The peer's bytes broke the protocol: the session must close.
    Protocol(Error),
}

impl StreamError {
    /// The error, whichever way the stream ended.
    pub fn error(&self) -> &Error {
        match self {
            StreamError::Closed(err) | StreamError::Protocol(err) => err,
        }
    }
}

impl From<DecodeError> for StreamError {
    fn from(err: DecodeError) -> Self {
        StreamError::Protocol(err.into())
    }
}

/// A message we could not encode: our problem, so only the stream ends.
impl From<EncodeError> for StreamError {
    fn from(err: EncodeError) -> Self {
        StreamError::Closed(err.into())
    }
}

/// A model error (a refused group, an aborted track) ends just the stream.
impl From<Error> for StreamError {
    fn from(err: Error) -> Self {
        StreamError::Closed(err)
    }
}

/// Reads messages (and raw payload bytes) from a receive stream.
pub(crate) struct Reader<R: RecvStream> {
    stream: R,
    buf: BytesMut,
}

impl<R: RecvStream> Reader<R> {
    pub fn new(stream: R) -> Self {
        Reader {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Reads more bytes; `false` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, StreamError> {
        self.buf.reserve(READ_SIZE);
        let read = self.stream.read_buf(&mut self.buf).await;
        match read.map_err(|e| StreamError::Closed(transport_error(e)))? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// The next value decoded by `decode`; `None` if the stream ended
    /// cleanly before its first byte. A stream that ends mid-message is a
    /// decode error.
    pub async fn decode<T>(
        &mut self,
        decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, StreamError> {
        loop {
            if !self.buf.is_empty() {
                if let Some((value, used)) = try_decode(&self.buf, &decode)? {
                    self.buf.advance(used);
                    return Ok(Some(value));
                }
                // The framing rejects oversized lengths early; this bounds
                // decoders that have no length prefix.
                if self.buf.len() > MAX_MESSAGE_SIZE {
                    return Err(StreamError::Protocol(Error::Bounds));
                }
            }
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(StreamError::Protocol(Error::Decode)),
                };
            }
        }
    }

    /// Like [`decode`](Self::decode), but the end of the stream is an error.
    pub async fn decode_required<T>(
        &mut self,
        decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, StreamError> {
        self.decode(decode)
            .await?
            .ok_or(StreamError::Protocol(Error::Decode))
    }

    /// Up to `max` payload bytes, buffered ones first; `None` at the end.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        if !self.buf.is_empty() {
            let n = max.min(self.buf.len());
            return Ok(Some(self.buf.split_to(n).freeze()));
        }
        let read = self.stream.read_chunk(max).await;
        read.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Waits for the end of the stream; bytes after the last message are a
    /// protocol violation.
    pub async fn finished(&mut self) -> Result<(), StreamError> {
        if !self.buf.is_empty() || self.fill().await? {
            return Err(StreamError::Protocol(Error::ProtocolViolation));
        }
        Ok(())
    }

    /// Asks the peer to stop sending, with `err`'s code.
    pub fn stop(&mut self, err: &Error) {
        self.stream.stop(err.code());
    }
}

/// Writes messages and payloads to a send stream; resets it if dropped
/// before [`finish`](Self::finish).
pub(crate) struct Writer<S: SendStream> {
    stream: S,
    buf: BytesMut,
    done: bool,
}

impl<S: SendStream> Writer<S> {
    pub fn new(stream: S) -> Self {
        Writer {
            stream,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Encodes with `encode` and writes the bytes.
    pub async fn encode(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), StreamError> {
        self.buf.clear();
        encode(&mut self.buf)?;
        let written = self.stream.write_all_buf(&mut self.buf).await;
        written.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Writes a payload chunk without copying it.
    pub async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        let written = self.stream.write_chunk(chunk).await;
        written.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Sets the stream's send priority (higher is sent first).
    pub fn set_priority(&mut self, priority: i32) {
        self.stream.set_priority(priority);
    }

    /// Ends the stream cleanly (FIN).
    pub fn finish(&mut self) -> Result<(), StreamError> {
        self.done = true;
        self.stream
            .finish()
            .map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Ends the stream cleanly (FIN), then waits until the peer has every
    /// byte. Until then the stream can still be reset, and dropping this
    /// writer (an aborted task) does reset it: data queued behind congestion
    /// can be abandoned when it goes stale.
    pub async fn finish_acked(&mut self) -> Result<(), StreamError> {
        self.stream
            .finish()
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        let acked = self.stream.closed().await;
        self.done = true;
        acked.map_err(|e| StreamError::Closed(transport_error(e)))
    }

    /// Ends the stream abruptly with `err`'s code.
    pub fn reset(&mut self, err: &Error) {
        self.done = true;
        self.stream.reset(err.code());
    }
}

impl<S: SendStream> Drop for Writer<S> {
    fn drop(&mut self) {
        if !self.done {
            self.stream.reset(Error::Cancel.code());
        }
    }
}

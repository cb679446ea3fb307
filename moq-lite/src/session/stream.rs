//! Message-level reading and writing on one QUIC / WebTransport stream, for
//! every protocol family that carries this crate's model.
//!
//! [`Reader`] buffers what arrives and hands out whole messages through a
//! pure decoder (a message split across reads waits for the rest; one past
//! the reader's limit fails before more is buffered). [`Writer`] encodes into
//! a reused buffer and, unlike a bare quinn stream, resets the stream when
//! dropped unfinished: a cancelled task must never look like a complete group.
//!
//! Both are generic over the message codec (a decoder is any function of a
//! [`Bytes`] cursor, an encoder any function filling a [`BytesMut`]) and over
//! the protocol's errors ([`Protocol`]): moq-lite's [`Error`] is the default;
//! another family (IETF moq-transport) brings its own session error and its
//! own reading of stream and session codes, and gets the same buffering,
//! limits and reset-on-drop.

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use web_transport_trait::{RecvStream, SendStream};

use crate::Error;
use crate::coding::{DecodeError, EncodeError, MAX_MESSAGE_SIZE};

/// How much a read asks for at a time while no message is in progress.
/// Control messages and frame headers are small, and payloads can bypass
/// the buffer ([`Reader::read_chunk`] hands the transport's own chunks
/// over), so a small read copies little.
const READ_SIZE: usize = 1024;

/// The most a read asks for: a message larger than [`READ_SIZE`] is read in
/// steps as large as what it already buffered, up to this.
const MAX_READ_SIZE: usize = 64 * 1024;

/// How a protocol family reads the failures of its streams.
///
/// Implemented by the error that closes a session of that protocol:
/// moq-lite's [`Error`], or another family's session error.
pub trait Protocol: Sized {
    /// The code a [`Writer`] dropped before finishing resets its stream with.
    const CANCEL_CODE: u32;

    /// What a transport failure (a reset or stopped stream, a closed
    /// session) means, in this protocol's codes. It ends only the stream
    /// ([`StreamError::Closed`]).
    fn transport_error<E: web_transport_trait::Error>(err: E) -> Error;

    /// The error that closes the session when a [`Reader`] finds the peer's
    /// bytes broken.
    fn violation(violation: Violation) -> Self;
}

/// How the peer's bytes on a stream broke the protocol, as a [`Reader`]
/// finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The decoder refused the bytes.
    Decode(DecodeError),
    /// More than the reader's limit is buffered without a whole message.
    TooLarge,
    /// The stream ended in the middle of a message, or before one that had
    /// to come.
    Truncated,
    /// Bytes followed the last message of a stream that had to end.
    Trailing,
}

/// moq-lite: codes are [`Error::code`]s both ways.
impl Protocol for Error {
    const CANCEL_CODE: u32 = 0;

    /// A peer's stream reset or session close carries its code (so an
    /// unauthorized session reads as [`Error::Unauthorized`]); anything else
    /// means the connection is gone.
    fn transport_error<E: web_transport_trait::Error>(err: E) -> Error {
        if let Some(code) = err.stream_error() {
            return Error::from_code(code.into());
        }
        match err.session_error() {
            Some((code, _)) => Error::from_code(code.into()),
            None => Error::Transport,
        }
    }

    fn violation(violation: Violation) -> Self {
        match violation {
            Violation::Decode(err) => err.into(),
            Violation::TooLarge => Error::Bounds,
            Violation::Truncated => Error::Decode,
            Violation::Trailing => Error::ProtocolViolation,
        }
    }
}

/// The error a transport failure becomes in a moq-lite session (see
/// [`Protocol::transport_error`]).
pub(crate) fn transport_error<E: web_transport_trait::Error>(err: E) -> Error {
    <Error as Protocol>::transport_error(err)
}

/// Why a stream's transaction ended early.
///
/// Stream handlers return this, so `?` works on reads and writes alike; the
/// session closes only on [`StreamError::Protocol`]. `P` is the protocol's
/// session-closing error (see [`Protocol`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError<P = Error> {
    /// The stream is over for a reason that concerns only it: the peer reset
    /// or stopped it, the connection went away, or the model refused what it
    /// carried. The session goes on.
    Closed(Error),
    /// The peer's bytes broke the protocol: the session must close.
    Protocol(P),
}

impl<P> StreamError<P> {
    /// The error that ended only this stream, if that is how it ended.
    pub fn closed(&self) -> Option<&Error> {
        match self {
            StreamError::Closed(err) => Some(err),
            StreamError::Protocol(_) => None,
        }
    }
}

impl StreamError {
    /// The error, whichever way the stream ended.
    pub fn error(&self) -> &Error {
        match self {
            StreamError::Closed(err) | StreamError::Protocol(err) => err,
        }
    }
}

/// Bytes the decoder refused: the peer broke the protocol.
impl<P: Protocol> From<DecodeError> for StreamError<P> {
    fn from(err: DecodeError) -> Self {
        StreamError::Protocol(P::violation(Violation::Decode(err)))
    }
}

/// A message we could not encode: our problem, so only the stream ends.
impl<P> From<EncodeError> for StreamError<P> {
    fn from(err: EncodeError) -> Self {
        StreamError::Closed(err.into())
    }
}

/// A model error (a refused group, an aborted track) ends just the stream.
impl<P> From<Error> for StreamError<P> {
    fn from(err: Error) -> Self {
        StreamError::Closed(err)
    }
}

/// Reads messages (and raw payload bytes) from a receive stream.
pub struct Reader<R: RecvStream, P: Protocol = Error> {
    stream: R,
    buf: BytesMut,
    /// The most buffered while waiting for one message.
    max_buffered: usize,
    protocol: PhantomData<fn() -> P>,
}

impl<R: RecvStream, P: Protocol> Reader<R, P> {
    /// A reader with nothing buffered, whose messages may be up to
    /// [`MAX_MESSAGE_SIZE`] bytes.
    pub fn new(stream: R) -> Self {
        Reader {
            stream,
            buf: BytesMut::new(),
            max_buffered: MAX_MESSAGE_SIZE,
            protocol: PhantomData,
        }
    }

    /// Sets how much may be buffered while waiting for one message; past
    /// it the peer broke the protocol ([`Violation::TooLarge`]). For
    /// protocols whose decoded messages include payloads.
    pub fn with_max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }

    /// Reads more bytes; `false` at the end of the stream. A message already
    /// larger than [`READ_SIZE`] is read in steps as large as what is
    /// buffered (at most [`MAX_READ_SIZE`]).
    ///
    /// With nothing buffered, the reader holds no buffer while it waits: it
    /// takes the transport's next chunk (at most [`READ_SIZE`]) and copies
    /// it into one of its size. Most streams wait between messages for most
    /// of their lives (an Announce stream for the whole session), and a
    /// reserved buffer each was 1 KiB of every idle session.
    async fn fill(&mut self) -> Result<bool, StreamError<P>> {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
            let read = self.stream.read_chunk(READ_SIZE).await;
            return match read.map_err(|e| StreamError::Closed(P::transport_error(e)))? {
                Some(chunk) => {
                    self.buf.extend_from_slice(&chunk);
                    Ok(true)
                }
                None => Ok(false),
            };
        }
        self.buf.reserve(self.buf.len().clamp(READ_SIZE, MAX_READ_SIZE));
        let read = self.stream.read_buf(&mut self.buf).await;
        match read.map_err(|e| StreamError::Closed(P::transport_error(e)))? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Runs `decode` on a cursor over everything buffered: `None` if it
    /// needs more bytes, else the value, the buffer then starting after it.
    /// The cursor is a [`Bytes`], so a decoder can keep slices of it (a
    /// payload) without copying.
    fn try_decode<T>(
        &mut self,
        decode: &mut impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        let buffered = std::mem::take(&mut self.buf).freeze();
        let mut cursor = buffered.clone();
        let decoded = decode(&mut cursor);
        // Whichever handle is dropped first, the other is usually unique
        // again, so the buffer comes back without a copy.
        self.buf = match decoded {
            Ok(_) => {
                drop(buffered);
                BytesMut::from(cursor)
            }
            Err(_) => {
                drop(cursor);
                BytesMut::from(buffered)
            }
        };
        match decoded {
            Ok(value) => Ok(Some(value)),
            Err(DecodeError::Short) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The next value decoded by `decode`; `None` if the stream ended
    /// cleanly before its first byte. A stream that ends mid-message is a
    /// protocol violation ([`Violation::Truncated`]).
    ///
    /// `decode` reads from the front of the buffered bytes and returns
    /// [`DecodeError::Short`] when they end too early; it is called again
    /// with more.
    pub async fn decode<T>(
        &mut self,
        mut decode: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, StreamError<P>> {
        loop {
            if !self.buf.is_empty() {
                if let Some(value) = self.try_decode(&mut decode)? {
                    return Ok(Some(value));
                }
                // The framing rejects oversized lengths early; this bounds
                // decoders that have no length prefix.
                if self.buf.len() > self.max_buffered {
                    return Err(StreamError::Protocol(P::violation(Violation::TooLarge)));
                }
            }
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(StreamError::Protocol(P::violation(Violation::Truncated))),
                };
            }
        }
    }

    /// Like [`decode`](Self::decode), but the end of the stream is an error.
    pub async fn decode_required<T>(
        &mut self,
        decode: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<T, StreamError<P>> {
        self.decode(decode)
            .await?
            .ok_or_else(|| StreamError::Protocol(P::violation(Violation::Truncated)))
    }

    /// Up to `max` payload bytes, buffered ones first; `None` at the end.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError<P>> {
        if !self.buf.is_empty() {
            let n = max.min(self.buf.len());
            return Ok(Some(self.buf.split_to(n).freeze()));
        }
        let read = self.stream.read_chunk(max).await;
        read.map_err(|e| StreamError::Closed(P::transport_error(e)))
    }

    /// Waits for the end of the stream; bytes after the last message are a
    /// protocol violation ([`Violation::Trailing`]).
    pub async fn finished(&mut self) -> Result<(), StreamError<P>> {
        if !self.buf.is_empty() || self.fill().await? {
            return Err(StreamError::Protocol(P::violation(Violation::Trailing)));
        }
        Ok(())
    }

    /// Whether bytes are buffered beyond what was decoded.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads exactly `n` bytes, buffered ones first, without reading past
    /// them: for a message followed by bytes meant for whoever the stream is
    /// handed to next ([`into_inner`](Self::into_inner)). The end of the
    /// stream before them is [`Violation::Truncated`].
    pub async fn read_exact(&mut self, n: usize) -> Result<Bytes, StreamError<P>> {
        while self.buf.len() < n {
            let read = self.stream.read_chunk(n - self.buf.len()).await;
            match read.map_err(|e| StreamError::Closed(P::transport_error(e)))? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return Err(StreamError::Protocol(P::violation(Violation::Truncated))),
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// Asks the peer to stop sending, with `code`.
    pub fn stop(&mut self, code: u32) {
        self.stream.stop(code);
    }

    /// The stream, for handing over; bytes still buffered
    /// ([`has_buffered`](Self::has_buffered)) are lost.
    pub fn into_inner(self) -> R {
        self.stream
    }
}

/// Writes messages and payloads to a send stream; resets it (with
/// [`Protocol::CANCEL_CODE`]) if dropped before it was finished or reset.
pub struct Writer<S: SendStream, P: Protocol = Error> {
    /// `None` once finished, reset or handed over.
    stream: Option<S>,
    buf: BytesMut,
    protocol: PhantomData<fn() -> P>,
}

impl<S: SendStream, P: Protocol> Writer<S, P> {
    /// A writer over `stream`.
    pub fn new(stream: S) -> Self {
        Writer {
            stream: Some(stream),
            buf: BytesMut::new(),
            protocol: PhantomData,
        }
    }

    /// The open stream; [`Error::Closed`] once finished or reset.
    fn stream(&mut self) -> Result<&mut S, StreamError<P>> {
        self.stream.as_mut().ok_or(StreamError::Closed(Error::Closed))
    }

    /// Encodes with `encode` and writes the bytes.
    pub async fn encode(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), StreamError<P>> {
        self.buf.clear();
        encode(&mut self.buf)?;
        let stream = self.stream.as_mut().ok_or(StreamError::Closed(Error::Closed))?;
        let written = stream.write_all_buf(&mut self.buf).await;
        written.map_err(|e| StreamError::Closed(P::transport_error(e)))
    }

    /// Writes a payload chunk without copying it.
    pub async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), StreamError<P>> {
        let written = self.stream()?.write_chunk(chunk).await;
        written.map_err(|e| StreamError::Closed(P::transport_error(e)))
    }

    /// Sets the stream's send priority (higher is sent first).
    pub fn set_priority(&mut self, priority: i32) {
        if let Some(stream) = self.stream.as_mut() {
            stream.set_priority(priority);
        }
    }

    /// Ends the stream cleanly (FIN). Finishing twice is a no-op.
    pub fn finish(&mut self) -> Result<(), StreamError<P>> {
        match self.stream.take() {
            Some(mut stream) => stream
                .finish()
                .map_err(|e| StreamError::Closed(P::transport_error(e))),
            None => Ok(()),
        }
    }

    /// Ends the stream cleanly (FIN), then waits until the peer has every
    /// byte. Until then the stream can still be reset, and dropping this
    /// writer (an aborted task) does reset it: data queued behind congestion
    /// can be abandoned when it goes stale, and the caller holds what it is
    /// sending until it has really arrived.
    pub async fn finish_acked(&mut self) -> Result<(), StreamError<P>> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        stream
            .finish()
            .map_err(|e| StreamError::Closed(P::transport_error(e)))?;
        let acked = stream.closed().await;
        self.stream = None;
        acked.map_err(|e| StreamError::Closed(P::transport_error(e)))
    }

    /// Ends the stream abruptly with `code`.
    pub fn reset(&mut self, code: u32) {
        if let Some(mut stream) = self.stream.take() {
            stream.reset(code);
        }
    }

    /// Resolves once the peer asked us to stop sending (STOP_SENDING) or the
    /// stream is gone; never once this writer finished or reset it.
    pub async fn closed(&mut self) {
        match self.stream.as_mut() {
            Some(stream) => {
                let _ = stream.closed().await;
            }
            None => std::future::pending().await,
        }
    }

    /// The stream, unfinished, for handing over to another writer; `None`
    /// once finished or reset.
    pub fn into_inner(mut self) -> Option<S> {
        self.stream.take()
    }
}

impl<S: SendStream, P: Protocol> Drop for Writer<S, P> {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            stream.reset(P::CANCEL_CODE);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytes::Buf;

    use super::*;

    #[test]
    fn lite_cancel_code() {
        assert_eq!(<Error as Protocol>::CANCEL_CODE, Error::Cancel.code());
    }

    #[test]
    fn lite_violations() {
        let lite = <Error as Protocol>::violation;
        assert_eq!(lite(Violation::Decode(DecodeError::Short)), Error::Decode);
        assert_eq!(lite(Violation::Decode(DecodeError::TooLarge("x"))), Error::Bounds);
        assert_eq!(lite(Violation::TooLarge), Error::Bounds);
        assert_eq!(lite(Violation::Truncated), Error::Decode);
        assert_eq!(lite(Violation::Trailing), Error::ProtocolViolation);
    }

    /// A receive stream that yields `chunks`, then ends; records how much
    /// each read asked for.
    #[derive(Default)]
    struct Chunks {
        chunks: VecDeque<Vec<u8>>,
        asked: Vec<usize>,
    }

    impl Chunks {
        fn new(chunks: &[&[u8]]) -> Self {
            Chunks {
                chunks: chunks.iter().map(|c| c.to_vec()).collect(),
                asked: Vec::new(),
            }
        }
    }

    #[derive(Debug)]
    struct NoError;

    impl std::fmt::Display for NoError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no error")
        }
    }

    impl std::error::Error for NoError {}

    impl web_transport_trait::Error for NoError {
        fn session_error(&self) -> Option<(u32, String)> {
            None
        }
    }

    impl RecvStream for Chunks {
        type Error = NoError;

        async fn read(&mut self, dst: &mut [u8]) -> Result<Option<usize>, NoError> {
            self.asked.push(dst.len());
            let Some(mut chunk) = self.chunks.pop_front() else {
                return Ok(None);
            };
            let n = chunk.len().min(dst.len());
            dst[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.chunks.push_front(chunk.split_off(n));
            }
            Ok(Some(n))
        }

        fn stop(&mut self, _code: u32) {}

        async fn closed(&mut self) -> Result<(), NoError> {
            Ok(())
        }
    }

    /// Another protocol family's session error, to show the layer is not
    /// tied to moq-lite's.
    #[derive(Debug, PartialEq)]
    struct Other(Violation);

    impl Protocol for Other {
        const CANCEL_CODE: u32 = 0x1;

        fn transport_error<E: web_transport_trait::Error>(_err: E) -> Error {
            Error::Transport
        }

        fn violation(violation: Violation) -> Self {
            Other(violation)
        }
    }

    /// A one-byte length, then that many bytes, kept as a slice of the
    /// reader's buffer.
    fn payload(buf: &mut Bytes) -> Result<Bytes, DecodeError> {
        let len = *buf.first().ok_or(DecodeError::Short)? as usize;
        if buf.len() < 1 + len {
            return Err(DecodeError::Short);
        }
        buf.advance(1);
        Ok(buf.split_to(len))
    }

    #[tokio::test]
    async fn messages_split_across_reads() {
        let stream = Chunks::new(&[&[3, b'a'], &[b'b', b'c', 1], b"d"]);
        let mut reader = Reader::<_, Other>::new(stream);
        assert_eq!(reader.decode(payload).await, Ok(Some(Bytes::from_static(b"abc"))));
        assert_eq!(
            reader.decode_required(payload).await,
            Ok(Bytes::from_static(b"d"))
        );
        assert!(!reader.has_buffered());
        assert_eq!(reader.decode(payload).await, Ok(None));
    }

    #[tokio::test]
    async fn violations_go_to_the_protocol() {
        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[3, b'a']]));
        let truncated = reader.decode(payload).await;
        assert_eq!(truncated, Err(StreamError::Protocol(Other(Violation::Truncated))));

        let mut reader = Reader::<_, Other>::new(Chunks::new(&[]));
        let required = reader.decode_required(payload).await;
        assert_eq!(required, Err(StreamError::Protocol(Other(Violation::Truncated))));

        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[200, 0, 0, 0, 0, 0]])).with_max_buffered(4);
        let large = reader.decode(payload).await;
        assert_eq!(large, Err(StreamError::Protocol(Other(Violation::TooLarge))));

        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[0, 9]]));
        assert_eq!(reader.decode(payload).await, Ok(Some(Bytes::new())));
        let trailing = reader.finished().await;
        assert_eq!(trailing, Err(StreamError::Protocol(Other(Violation::Trailing))));

        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[1, 2]]));
        let refused = reader.decode(|_| Err::<(), _>(DecodeError::Invalid("x"))).await;
        let expected = Other(Violation::Decode(DecodeError::Invalid("x")));
        assert_eq!(refused, Err(StreamError::Protocol(expected)));
    }

    #[tokio::test]
    async fn read_exact_reads_no_further() {
        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[1, 2, 3, 4, 5]]));
        assert_eq!(reader.read_exact(2).await, Ok(Bytes::from_static(&[1, 2])));
        assert!(!reader.has_buffered());
        let mut rest = reader.into_inner();
        assert_eq!(rest.chunks.pop_front(), Some(vec![3, 4, 5]));

        let mut reader = Reader::<_, Other>::new(Chunks::new(&[&[1]]));
        let short = reader.read_exact(2).await;
        assert_eq!(short, Err(StreamError::Protocol(Other(Violation::Truncated))));
    }

    #[tokio::test]
    async fn reads_grow_with_a_large_message() {
        // A 16-bit length, then 60000 bytes: read in growing steps, not 1 KiB at a time.
        let mut message = vec![0xea, 0x60];
        message.resize(2 + 60_000, 7);
        let mut reader = Reader::<_, Error>::new(Chunks::new(&[&message]));
        let decoded = reader
            .decode(|b| {
                if b.len() < 2 {
                    return Err(DecodeError::Short);
                }
                let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
                if b.len() < 2 + len {
                    return Err(DecodeError::Short);
                }
                b.advance(2);
                Ok(b.split_to(len))
            })
            .await;
        assert_eq!(decoded.map(|d| d.map(|d| d.len())), Ok(Some(60_000)));
        let asked = &reader.stream.asked;
        assert!(asked[0] >= READ_SIZE && asked[0] < 2 * READ_SIZE, "{asked:?}");
        assert!(asked.len() < 16, "{asked:?}");
        assert!(asked.iter().all(|&n| n <= 2 * MAX_READ_SIZE), "{asked:?}");
    }
}

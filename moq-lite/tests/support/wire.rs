//! Reading a stream byte by byte with the codec, for the wire-level
//! session tests (each test binary includes this file with `#[path]` and
//! uses a part of it, hence the allowance).
#![allow(dead_code)]

use bytes::{Buf, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, try_decode};
use web_transport_quinn::{ReadError, RecvStream};
use web_transport_trait::Error as _;

/// How a stream we read from ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Cleanly, with FIN.
    Fin,
    /// The peer reset it with this code.
    Reset(u32),
    /// The whole session closed, with this (code, reason) if the peer said.
    Closed(Option<(u32, String)>),
    /// Anything else.
    Other(String),
}

pub fn end_of(err: ReadError) -> End {
    match err {
        ReadError::Reset(code) => End::Reset(code),
        ReadError::SessionError(err) => End::Closed(err.session_error()),
        other => End::Other(other.to_string()),
    }
}

/// Buffers a receive stream and decodes it with our codec.
pub struct Wire {
    recv: RecvStream,
    buf: BytesMut,
}

impl Wire {
    pub fn new(recv: RecvStream) -> Self {
        Wire {
            recv,
            buf: BytesMut::new(),
        }
    }

    /// Reads more bytes; `Err` when the stream ends (FIN included).
    pub async fn more(&mut self) -> Result<(), End> {
        let mut chunk = [0u8; 16 * 1024];
        match self.recv.read(&mut chunk).await {
            Ok(Some(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(None) => Err(End::Fin),
            Err(err) => Err(end_of(err)),
        }
    }

    /// The next value; `Ok(None)` at a FIN between values. The server's
    /// bytes must decode, and must not stop inside a message.
    pub async fn next<T>(
        &mut self,
        decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, End> {
        loop {
            if !self.buf.is_empty() {
                let decoded = try_decode(&self.buf, &decode).expect("the server's bytes decode");
                if let Some((value, used)) = decoded {
                    self.buf.advance(used);
                    return Ok(Some(value));
                }
            }
            match self.more().await {
                Ok(()) => {}
                Err(End::Fin) if self.buf.is_empty() => return Ok(None),
                Err(End::Fin) => panic!("stream ended inside a message: {:02x?}", &self.buf[..]),
                Err(end) => return Err(end),
            }
        }
    }

    /// The next value, which must be there.
    pub async fn expect<T>(&mut self, decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>) -> T {
        match self.next(decode).await {
            Ok(Some(value)) => value,
            other => panic!("expected a message, got {:?}", other.err().unwrap_or(End::Fin)),
        }
    }

    /// Exactly `n` bytes.
    pub async fn take(&mut self, n: usize) -> Bytes {
        while self.buf.len() < n {
            if let Err(end) = self.more().await {
                panic!("stream ended ({end:?}) after {} of {n} bytes", self.buf.len());
            }
        }
        self.buf.split_to(n).freeze()
    }

    /// Waits for the end of the stream; no bytes may come before it.
    pub async fn end(&mut self) -> End {
        let (rest, end) = self.rest().await;
        assert!(
            rest.is_empty(),
            "unexpected bytes before {end:?}: {:02x?}",
            &rest[..]
        );
        end
    }

    /// Every byte until the stream ends, and how it ended.
    pub async fn rest(&mut self) -> (Bytes, End) {
        loop {
            if let Err(end) = self.more().await {
                return (self.buf.split().freeze(), end);
            }
        }
    }

    /// Skips `n` payload bytes; `Err` if the stream ends first.
    pub async fn skip(&mut self, n: usize) -> Result<(), End> {
        while self.buf.len() < n {
            match self.more().await {
                Ok(()) => {}
                Err(End::Fin) => panic!("stream ended inside a frame payload"),
                Err(end) => return Err(end),
            }
        }
        self.buf.advance(n);
        Ok(())
    }
}

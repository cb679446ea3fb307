//! How frames are read from input and written to output.

use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

/// How a byte stream maps to frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One frame per line (the newline is not part of the frame).
    #[default]
    Lines,
    /// Each frame is a QUIC varint length, then that many bytes.
    Length,
    /// Bytes as they arrive: each read is a frame.
    Raw,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lines" | "line" => Ok(Format::Lines),
            "length" | "length-prefixed" => Ok(Format::Length),
            "raw" => Ok(Format::Raw),
            other => Err(format!("unknown format `{other}`; expected lines, length or raw")),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Lines => "lines",
            Format::Length => "length",
            Format::Raw => "raw",
        })
    }
}

/// The largest frame `--format length` accepts (the relay's default group
/// bound).
pub const MAX_FRAME: u64 = 16 * 1024 * 1024;

/// The largest chunk `--format raw` reads at once.
const RAW_CHUNK: usize = 64 * 1024;

/// Splits a byte stream into frames.
pub struct FrameReader<R> {
    input: BufReader<R>,
    format: Format,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of `input` in `format`.
    pub fn new(input: R, format: Format) -> Self {
        FrameReader {
            input: BufReader::with_capacity(RAW_CHUNK, input),
            format,
        }
    }

    /// The next frame; `None` at the end of input.
    pub async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        match self.format {
            Format::Lines => {
                let mut line = Vec::new();
                if self.input.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(None);
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Ok(Some(line.into()))
            }
            Format::Length => {
                let Some(size) = read_varint(&mut self.input).await? else {
                    return Ok(None);
                };
                if size > MAX_FRAME {
                    anyhow::bail!(
                        "--format length: a frame of {size} bytes is over the {MAX_FRAME}-byte limit; is the \
                         input really varint-length-prefixed?"
                    );
                }
                let mut frame = BytesMut::zeroed(size as usize);
                self.input.read_exact(&mut frame).await.map_err(|err| {
                    anyhow::anyhow!("--format length: the input ended inside a {size}-byte frame ({err})")
                })?;
                Ok(Some(frame.freeze()))
            }
            Format::Raw => {
                let chunk = self.input.fill_buf().await?;
                if chunk.is_empty() {
                    return Ok(None);
                }
                let frame = Bytes::copy_from_slice(chunk);
                let n = frame.len();
                self.input.consume(n);
                Ok(Some(frame))
            }
        }
    }
}

/// Reads a QUIC varint; `None` at a clean end of input.
async fn read_varint<R: AsyncBufRead + Unpin>(input: &mut R) -> anyhow::Result<Option<u64>> {
    let mut first = [0u8; 1];
    if input.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let len = 1usize << (first[0] >> 6);
    let mut value = u64::from(first[0] & 0x3f);
    if len > 1 {
        let mut rest = [0u8; 7];
        input
            .read_exact(&mut rest[..len - 1])
            .await
            .map_err(|err| anyhow::anyhow!("--format length: the input ended inside a length ({err})"))?;
        for byte in &rest[..len - 1] {
            value = (value << 8) | u64::from(*byte);
        }
    }
    Ok(Some(value))
}

/// Appends `value` as a QUIC varint (the shortest form).
pub fn encode_varint(value: u64, out: &mut Vec<u8>) {
    if value < 1 << 6 {
        out.push(value as u8);
    } else if value < 1 << 14 {
        out.extend_from_slice(&((value as u16) | 0x4000).to_be_bytes());
    } else if value < 1 << 30 {
        out.extend_from_slice(&((value as u32) | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

/// Writes frames to an output in a format, flushing after each.
pub struct FrameWriter<W> {
    output: W,
    format: Format,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Frames into `output` in `format`.
    pub fn new(output: W, format: Format) -> Self {
        FrameWriter { output, format }
    }

    /// Writes one frame and flushes.
    pub async fn write(&mut self, frame: &[u8]) -> std::io::Result<()> {
        match self.format {
            Format::Lines => {
                self.output.write_all(frame).await?;
                self.output.write_all(b"\n").await?;
            }
            Format::Length => {
                let mut prefix = Vec::with_capacity(8);
                encode_varint(frame.len() as u64, &mut prefix);
                self.output.write_all(&prefix).await?;
                self.output.write_all(frame).await?;
            }
            Format::Raw => self.output.write_all(frame).await?,
        }
        self.output.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn varints_round_trip() {
        for value in [
            0u64,
            1,
            63,
            64,
            16383,
            16384,
            (1 << 30) - 1,
            1 << 30,
            (1 << 62) - 1,
        ] {
            let mut buf = Vec::new();
            encode_varint(value, &mut buf);
            let mut reader = BufReader::new(&buf[..]);
            assert_eq!(read_varint(&mut reader).await.unwrap(), Some(value));
        }
    }

    #[tokio::test]
    async fn frames_round_trip() {
        for format in [Format::Lines, Format::Length] {
            let frames: Vec<&[u8]> = vec![b"a", b"", b"hello world"];
            let mut out = Vec::new();
            {
                let mut writer = FrameWriter::new(&mut out, format);
                for frame in &frames {
                    writer.write(frame).await.unwrap();
                }
            }
            let mut reader = FrameReader::new(&out[..], format);
            for frame in &frames {
                assert_eq!(reader.next().await.unwrap().unwrap(), frame);
            }
            assert!(reader.next().await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_a_frame() {
        let mut reader = FrameReader::new(&b"a\r\nb"[..], Format::Lines);
        assert_eq!(reader.next().await.unwrap().unwrap(), "a");
        assert_eq!(reader.next().await.unwrap().unwrap(), "b");
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_truncated_length_frame_is_an_error() {
        let mut reader = FrameReader::new(&[5u8, b'a'][..], Format::Length);
        assert!(reader.next().await.is_err());
    }
}

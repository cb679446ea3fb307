//! Decode / re-encode checks for every moq-lite decoder.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/lite_*.rs`) and the
//! stable property test `moq-lite/tests/garbage.rs` (which includes this file
//! with `#[path]`), so both check exactly the same properties:
//!
//! - no decoder panics, whatever the bytes;
//! - a value that decodes re-encodes, and the re-encoding decodes to the same
//!   value, using every byte it wrote;
//! - a value decoded from the first `n` bytes of a buffer decodes the same
//!   from exactly those `n` bytes (what a decoder reads is self-delimited).

use std::fmt::Debug;

use moq_lite::bytes::Bytes;
use moq_lite::coding::{Decode, DecodeError, Encode, EncodeError};
use moq_lite::lite::{
    Announce, AnnounceEvent, AnnounceInit, AnnounceInterest, AnnounceOk, AnnounceStatus, ClientSetup,
    ControlStream, DataStream, Datagram, Extensions, Fetch, FrameHeader, Goaway, Group, HopId, Message,
    Parameters, Probe, ServerSetup, SessionClient, SessionServer, SessionUpdate, Setup, SetupStream,
    StreamType, Subscribe, SubscribeDrop, SubscribeEnd, SubscribeOk, SubscribeResponse, SubscribeStart,
    SubscribeUpdate, TrackInfo, TrackRequest, Version,
};
use moq_lite::model::{MAX_PATH_LEN, Path, PathError};

/// Decodes `data` with `decode`; if that works, checks the value re-encodes
/// and decodes back to itself, and that the consumed prefix alone decodes.
fn check<T, E, D>(what: &str, data: &[u8], encode: E, decode: D)
where
    T: PartialEq + Debug,
    E: Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
    D: Fn(&mut &[u8]) -> Result<T, DecodeError>,
{
    let mut cursor = data;
    let Ok(value) = decode(&mut cursor) else {
        return;
    };
    let used = data.len() - cursor.len();
    let mut prefix = &data[..used];
    assert_eq!(
        decode(&mut prefix).as_ref(),
        Ok(&value),
        "{what}: the {used} bytes it used do not decode alone"
    );
    let mut out = Vec::new();
    if let Err(err) = encode(&value, &mut out) {
        panic!("{what}: decoded {value:?} but it does not re-encode: {err}");
    }
    let mut again = &out[..];
    assert_eq!(
        decode(&mut again).as_ref(),
        Ok(&value),
        "{what}: re-encoding {out:02x?}"
    );
    assert!(again.is_empty(), "{what}: re-encoding left {} bytes", again.len());
}

fn message<M: Message + PartialEq + Debug>(data: &[u8]) {
    for version in Version::ALL {
        check(
            M::NAME,
            data,
            |m: &M, out| m.encode(version, out),
            |c| M::decode(c, version),
        );
    }
}

fn plain<T: Encode + Decode + PartialEq + Debug>(what: &str, data: &[u8]) {
    check(what, data, |v: &T, out| v.encode(out), |c| T::decode(c));
}

/// Every length-prefixed moq-lite message, in every version.
pub fn messages(data: &[u8]) {
    message::<AnnounceInterest>(data);
    message::<Announce>(data);
    message::<AnnounceInit>(data);
    message::<Subscribe>(data);
    message::<SubscribeUpdate>(data);
    message::<SubscribeOk>(data);
    message::<SubscribeDrop>(data);
    message::<Group>(data);
    message::<Fetch>(data);
    message::<Probe>(data);
    message::<Goaway>(data);
    message::<SessionUpdate>(data);
    // moq-lite-05.
    message::<AnnounceOk>(data);
    message::<SubscribeStart>(data);
    message::<SubscribeEnd>(data);
    message::<Setup>(data);
    message::<TrackRequest>(data);
    message::<TrackInfo>(data);
    check(
        "datagram",
        data,
        |d: &Datagram, out| d.encode(out),
        |c| {
            // A datagram is the whole buffer: nothing is left after it.
            let dg = Datagram::decode(Bytes::copy_from_slice(c))?;
            *c = &[];
            Ok(dg)
        },
    );
    for version in Version::ALL {
        check(
            "AnnounceEvent",
            data,
            |e: &AnnounceEvent, out| match e {
                // An unknown type is skipped, not kept: it re-encodes as nothing
                // and cannot decode again, so only the known ones round-trip.
                AnnounceEvent::Unknown(_) => Err(EncodeError::Invalid("skip")),
                known => known.encode(version, out),
            },
            |c| match AnnounceEvent::decode(c, version)? {
                AnnounceEvent::Unknown(_) => Err(DecodeError::Invalid("unknown announce type")),
                known => Ok(known),
            },
        );
        check(
            "SubscribeResponse",
            data,
            |m: &SubscribeResponse, out| m.encode(version, out),
            |c| SubscribeResponse::decode(c, version),
        );
    }
}

/// The SETUP path and the moq-lite-01/02 session stream: CLIENT_SETUP,
/// SERVER_SETUP, SESSION_CLIENT, SESSION_SERVER and their parameter lists.
pub fn setup(data: &[u8]) {
    plain::<ClientSetup>("CLIENT_SETUP", data);
    plain::<ServerSetup>("SERVER_SETUP", data);
    plain::<SessionClient>("SESSION_CLIENT", data);
    plain::<SessionServer>("SESSION_SERVER", data);
    plain::<Parameters>("setup parameters", data);
    plain::<Extensions>("extensions", data);
    plain::<HopId>("hop ID", data);
    // The SessionCompat stream: 0x20 is both the stream type and
    // CLIENT_SETUP's type, so the body follows the stream type.
    let mut cursor = data;
    if let Ok(StreamType::Known(SetupStream::Compat)) = SetupStream::decode(&mut cursor) {
        check(
            "CLIENT_SETUP after type",
            cursor,
            |m: &ClientSetup, out| {
                let mut full = Vec::new();
                m.encode(&mut full)?;
                out.extend_from_slice(&full[1..]); // drop the 0x20 type byte
                Ok(())
            },
            |c| ClientSetup::decode_after_type(c),
        );
    }
}

/// Stream types of every kind, and a whole group stream: GROUP then frames.
pub fn streams(data: &[u8]) {
    for version in Version::ALL {
        check(
            "control stream type",
            data,
            |t: &StreamType<ControlStream>, out| match t {
                StreamType::Known(kind) => kind.encode(version, out),
                StreamType::Unknown(code) => code.encode(out),
            },
            |c| ControlStream::decode(c, version),
        );
        check(
            "data stream type",
            data,
            |t: &StreamType<DataStream>, out| match t {
                StreamType::Known(kind) => kind.encode(version, out),
                StreamType::Unknown(code) => code.encode(out),
            },
            |c| DataStream::decode(c, version),
        );
        check(
            "frame header",
            data,
            |h: &FrameHeader, out| h.encode(version, out),
            |c| FrameHeader::decode(c, version),
        );
        check(
            "group stream",
            data,
            |g: &GroupStream, out| g.encode(version, out),
            |c| GroupStream::decode(c, version),
        );
    }
    check(
        "setup stream type",
        data,
        |t: &StreamType<SetupStream>, out| match t {
            StreamType::Known(kind) => kind.code().encode(out),
            StreamType::Unknown(code) => code.encode(out),
        },
        |c| SetupStream::decode(c),
    );
}

/// A whole unidirectional group stream as a receiver reads it.
#[derive(Debug, PartialEq)]
struct GroupStream {
    group: Group,
    /// Each frame's timestamp delta (-05+) and payload.
    frames: Vec<(i64, Bytes)>,
}

impl GroupStream {
    fn decode(buf: &mut &[u8], version: Version) -> Result<Self, DecodeError> {
        match DataStream::decode(buf, version)? {
            StreamType::Known(DataStream::Group) => {}
            StreamType::Known(DataStream::Setup) | StreamType::Unknown(_) => {
                return Err(DecodeError::Invalid("not a group stream"));
            }
        }
        let group = Group::decode(buf, version)?;
        let mut frames = Vec::new();
        // The stream ends (FIN) where the bytes end.
        while !buf.is_empty() {
            let header = FrameHeader::decode(buf, version)?;
            let size = usize::try_from(header.size).map_err(|_| DecodeError::TooLarge("frame"))?;
            if buf.len() < size {
                return Err(DecodeError::Short);
            }
            frames.push((header.delta, Bytes::copy_from_slice(&buf[..size])));
            *buf = &buf[size..];
        }
        Ok(GroupStream { group, frames })
    }

    fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        DataStream::Group.encode(version, out)?;
        self.group.encode(version, out)?;
        for (delta, frame) in &self.frames {
            FrameHeader {
                size: frame.len() as u64,
                delta: *delta,
            }
            .encode(version, out)?;
            out.extend_from_slice(frame);
        }
        Ok(())
    }
}

/// [`Path::parse`] (what the network gives) and [`Path::new`], and the
/// prefix relations the auth rules rely on.
pub fn paths(data: &[u8]) {
    plain::<Path>("path", data);
    let text = String::from_utf8_lossy(data);
    let (left, right) = text.split_once('\n').unwrap_or((&text, ""));
    for s in [left, right] {
        match Path::parse(s) {
            Ok(p) => {
                assert!(p.len() <= MAX_PATH_LEN, "{s:?} parsed longer than the limit");
                assert!(
                    p.segments()
                        .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
                    "{s:?} parsed to {p:?}, which has an empty or relative segment"
                );
                assert_eq!(Path::parse(p.as_str()), Ok(p.clone()), "parse is not idempotent");
                assert_eq!(Path::new(p.as_str()), p, "a parsed path is not normal");
                assert_eq!(
                    p.segments().count(),
                    if p.is_empty() {
                        0
                    } else {
                        p.as_str().split('/').count()
                    }
                );
            }
            Err(PathError::TooLong) => assert!(s.len() > MAX_PATH_LEN),
            Err(_) => {}
        }
        let n = Path::new(s);
        assert_eq!(Path::new(n.as_str()), n, "Path::new is not idempotent on {s:?}");
        assert!(!n.as_str().starts_with('/') && !n.as_str().ends_with('/') && !n.as_str().contains("//"));
    }
    let (a, b) = (Path::new(left), Path::new(right));
    // Segment-wise prefixes: `a` is never a prefix of `ab`.
    match a.strip_prefix(&b) {
        Some(rest) => {
            assert!(a.has_prefix(&b));
            assert_eq!(b.join(&rest), a, "{b:?} + {rest:?} is not {a:?}");
            assert!(a.overlaps(&b));
        }
        None => {
            assert!(!a.has_prefix(&b));
            if !b.is_empty() && a.as_str().starts_with(b.as_str()) && a != b {
                assert_ne!(a.as_str().as_bytes().get(b.len()), Some(&b'/'));
            }
        }
    }
    assert!(a.has_prefix(&Path::root()));
    assert!(a.join(&b).has_prefix(&a));
}

/// Every moq-lite decoder on the same bytes.
pub fn all(data: &[u8]) {
    messages(data);
    setup(data);
    streams(data);
    paths(data);
}

/// Valid encodings of every message, for mutation (and as a fuzz corpus).
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let hop = |id| HopId::new(id).unwrap();
    let path = Path::new("room/alice");
    for version in Version::ALL {
        let mut push = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), EncodeError>| {
            let mut buf = Vec::new();
            if f(&mut buf).is_ok() {
                out.push(buf);
            }
        };
        push(&|b| {
            AnnounceInterest {
                prefix: path.clone(),
                exclude_hop: Some(hop(7)),
            }
            .encode(version, b)
        });
        push(&|b| {
            Announce {
                status: AnnounceStatus::Active,
                suffix: Path::new("cam/1"),
                hops: vec![hop(1), hop(2)],
            }
            .encode(version, b)
        });
        push(&|b| {
            AnnounceInit {
                suffixes: vec![Path::new("a"), Path::new("b/c")],
            }
            .encode(version, b)
        });
        push(&|b| {
            Subscribe {
                id: 3,
                broadcast: path.clone(),
                track: "video".into(),
                priority: 9,
                ordered: true,
                max_latency: std::time::Duration::from_millis(500),
                start_group: Some(4),
                end_group: Some(10),
                frame_start: 1,
                frame_end: Some(2),
            }
            .encode(version, b)
        });
        push(&|b| {
            SubscribeUpdate {
                priority: 1,
                ordered: false,
                max_latency: std::time::Duration::from_millis(20),
                start_group: None,
                end_group: Some(1),
                ..Default::default()
            }
            .encode(version, b)
        });
        push(&|b| {
            SubscribeOk {
                priority: 2,
                start_group: Some(5),
                ..Default::default()
            }
            .encode(version, b)
        });
        push(&|b| {
            SubscribeDrop {
                start: 1,
                end: 2,
                error: 3,
            }
            .encode(version, b)
        });
        push(&|b| {
            Fetch {
                broadcast: path.clone(),
                track: "audio".into(),
                priority: 4,
                group: 77,
                frame_start: 2,
                frame_end: None,
            }
            .encode(version, b)
        });
        push(&|b| {
            Probe {
                bitrate: 1_000_000,
                rtt_ms: 20,
            }
            .encode(version, b)
        });
        push(&|b| {
            Goaway {
                uri: "https://elsewhere/".into(),
            }
            .encode(version, b)
        });
        push(&|b| SessionUpdate { bitrate: 5000 }.encode(version, b));
        push(&|b| {
            GroupStream {
                group: Group {
                    subscribe: 3,
                    sequence: 8,
                    frame_start: 0,
                },
                frames: vec![
                    (
                        if version.has_timestamps() { 1000 } else { 0 },
                        Bytes::from_static(b"hello"),
                    ),
                    (0, Bytes::new()),
                    (
                        if version.has_timestamps() { -3 } else { 0 },
                        Bytes::from(vec![7u8; 70]),
                    ),
                ],
            }
            .encode(version, b)
        });
        push(&|b| ControlStream::Subscribe.encode(version, b));
    }
    let mut params = Parameters::new();
    params.set_int(2, 100);
    params.set_bytes(1, "/room");
    let mut push = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), EncodeError>| {
        let mut buf = Vec::new();
        if f(&mut buf).is_ok() {
            out.push(buf);
        }
    };
    push(&|b| {
        ClientSetup {
            versions: vec![Version::Lite02.code(), Version::Lite01.code()],
            parameters: params.clone(),
        }
        .encode(b)
    });
    push(&|b| {
        ServerSetup {
            version: Version::Lite02.code(),
            parameters: params.clone(),
        }
        .encode(b)
    });
    push(&|b| {
        SessionClient {
            versions: vec![Version::Lite02.code()],
            extensions: Extensions(vec![(1, Bytes::from_static(b"x"))]),
        }
        .encode(b)
    });
    push(&|b| {
        SessionServer {
            version: Version::Lite01.code(),
            extensions: Extensions::default(),
        }
        .encode(b)
    });
    push(&|b| path.encode(b));
    out.push(b"room/alice\nroom".to_vec());
    out.push(b"a\nab".to_vec());
    out.push(b"/a/../b/\na".to_vec());
    out
}

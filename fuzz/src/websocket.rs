//! A whole MoQ session over WebSocket (QMux) fed by a hostile client: what
//! the relay's TCP port runs after a 101.
//!
//! The input's first byte picks the subprotocol the server answered (and so
//! the QMux framing and the MoQ version); the rest is a list of WebSocket
//! binary messages, each `length (u16, big-endian) | payload`, which the
//! harness frames (masked, as a client must) so the fuzzer spends its effort
//! on QMux and MoQ rather than on WebSocket framing. The session runs on a
//! paused clock, so timeouts cost nothing; the checks are libFuzzer's: no
//! panic (also in spawned tasks: the fuzzer's panic hook aborts), no hang,
//! bounded memory.

use std::time::Duration;

use moq_lite::SessionConfig;
use moq_lite::endpoint::websocket;
use moq_lite::lite::{AnnounceInterest, ControlStream, Message, Subscribe, Version};
use moq_lite::model::{OriginProducer, Path, Track};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The subprotocols the first byte chooses among.
const SUBPROTOCOLS: [Option<&str>; 6] = [
    Some("qmux-01.moq-lite-04"),
    Some("qmux-00.moq-lite-04"),
    Some("qmux-01.moq-lite-03"),
    Some("qmux-01.moqt-17"),
    Some("qmux-02"),
    None,
];

/// Frames `payload` as one masked binary WebSocket message (RFC 6455
/// section 5.2), with a zero mask so payload bytes stay as the fuzzer wrote
/// them.
fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x82);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// Runs one server session against the client bytes in `data`.
pub fn session(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let subprotocol = SUBPROTOCOLS[selector as usize % SUBPROTOCOLS.len()];
    let mut wire = Vec::new();
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let (payload, tail) = rest[2..].split_at(len.min(rest.len() - 2));
        frame(payload, &mut wire);
        rest = tail;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        // The client writes everything, then reads (and drops) whatever the
        // server says until it closes.
        tokio::spawn(async move {
            let _ = client.write_all(&wire).await;
            let mut sink = [0u8; 4096];
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let session = websocket::accept(server, subprotocol).await;
        // A server that publishes one broadcast and accepts the client's.
        let published = OriginProducer::new();
        let broadcast = published.create_broadcast("room/alice").expect("broadcast");
        let mut track = broadcast.create_track(Track::new("video"));
        if let Ok(mut group) = track.append_group() {
            let _ = group.write_frame("frame".into());
        }
        let config = SessionConfig {
            publish: Some(published.consume()),
            subscribe: Some(OriginProducer::new()),
            ..Default::default()
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            if let Ok(session) = moq_transport_compat::accept(session, config).await {
                session.closed().await;
            }
        })
        .await;
    });
}

/// A QUIC variable-length integer (RFC 9000 section 16).
fn varint(value: u64, out: &mut Vec<u8>) {
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&(value as u16 | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(value as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// A QMux STREAM frame with offset, length and optionally FIN
/// (`../shared/specs/qmux-notes.md`, section 3.1).
fn stream_frame(id: u64, offset: u64, data: &[u8], fin: bool, out: &mut Vec<u8>) {
    varint(if fin { 0x0f } else { 0x0e }, out);
    varint(id, out);
    varint(offset, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Inputs that get a lite-04 session going: the client's transport
/// parameters, then an Announce and a Subscribe stream, in one message each
/// and all in one.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut params = Vec::new();
    for (id, value) in [
        (0x04u64, 1u64 << 20),
        (0x05, 1 << 18),
        (0x06, 1 << 18),
        (0x07, 1 << 18),
        (0x08, 100),
        (0x09, 100),
    ] {
        let mut v = Vec::new();
        varint(value, &mut v);
        varint(id, &mut params);
        varint(v.len() as u64, &mut params);
        params.extend_from_slice(&v);
    }
    let mut parameters = vec![0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0a];
    varint(params.len() as u64, &mut parameters);
    parameters.extend_from_slice(&params);

    let version = Version::Lite04;
    let mut announce = Vec::new();
    let _ = ControlStream::Announce.encode(version, &mut announce);
    let _ = AnnounceInterest {
        prefix: Path::root(),
        exclude_hop: None,
    }
    .encode(version, &mut announce);
    let mut subscribe = Vec::new();
    let _ = ControlStream::Subscribe.encode(version, &mut subscribe);
    let _ = Subscribe {
        id: 0,
        broadcast: Path::new("room/alice"),
        track: "video".into(),
        ..Default::default()
    }
    .encode(version, &mut subscribe);
    let mut announce_frame = Vec::new();
    stream_frame(0, 0, &announce, false, &mut announce_frame);
    let mut subscribe_frame = Vec::new();
    stream_frame(4, 0, &subscribe, false, &mut subscribe_frame);

    let message = |payload: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
    };
    let mut out = Vec::new();
    for selector in 0..SUBPROTOCOLS.len() as u8 {
        let mut separate = vec![selector];
        message(&parameters, &mut separate);
        message(&announce_frame, &mut separate);
        message(&subscribe_frame, &mut separate);
        out.push(separate);
        let mut together = vec![selector];
        let all: Vec<u8> = [parameters.as_slice(), &announce_frame, &subscribe_frame].concat();
        message(&all, &mut together);
        out.push(together);
    }
    out
}

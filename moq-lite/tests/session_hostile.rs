//! Hostile input against the server session, moq-lite-04.
//!
//! Each test runs our [`Session::accept`] server with two clients: a
//! well-behaved one (our own [`Session::connect`]) subscribed to a track, and
//! a raw QUIC connection that sends bad bytes by hand. The bad session must be
//! closed with a protocol error code, nothing may panic, and the good client
//! must still receive every frame of the track: one bad peer does not hurt
//! the others.

#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use moq_lite::coding::{DecodeError, try_decode};
use moq_lite::endpoint::{Client, Server};
use moq_lite::lite::{
    Announce, AnnounceInterest, AnnounceStatus, ControlStream, FrameHeader, Group, Message, StreamType,
    Subscribe, SubscribeDrop, SubscribeOk, Version,
};
use moq_lite::model::{OriginConsumer, OriginProducer, Path, Track, TrackConsumer, TrackProducer};
use moq_lite::{Error, Session};
use url::Url;
use web_transport_quinn::{RecvStream, SendStream, Session as Wt};
use web_transport_trait::Error as _;

const V: Version = Version::Lite04;
const LIMIT: Duration = Duration::from_secs(10);

/// The codes a protocol violation may close the session with: decode (5),
/// unexpected stream (10), bounds (11), wrong size (14), protocol violation (15).
const PROTOCOL_CODES: [u32; 5] = [5, 10, 11, 14, 15];

/// Panics raised outside the test files (in the library or a dependency).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics whose location is not a test file. A panic in a session task
/// closes its session with code 15, the same as a real protocol violation, so
/// the close code alone cannot tell them apart.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_tests = info.location().is_some_and(|l| l.file().contains("tests/"));
            if !in_tests {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// A server running our session for every client that connects.
struct Harness {
    server: Server,
    client: Client,
    url: Url,
    /// What the server publishes.
    origin: OriginProducer,
    /// Where the server puts what clients publish, if it subscribes at all.
    subscribe: Option<OriginProducer>,
}

/// A well-behaved client session.
struct Good {
    _server: Session,
    client: Session,
    origin: OriginProducer,
}

impl Harness {
    fn new(subscribe: Option<OriginProducer>) -> Self {
        let server = loopback::server();
        let port = server.local_addr().unwrap().port();
        let client = loopback::client_offering(&server, &["moq-lite-04"]);
        Harness {
            server,
            client,
            url: Url::parse(&format!("moql://127.0.0.1:{port}/")).unwrap(),
            origin: OriginProducer::new(),
            subscribe,
        }
    }

    async fn accept(&self) -> Session {
        let incoming = self.server.accept().await.expect("incoming");
        let accepted = incoming.accept().await.expect("handshake");
        Session::accept(accepted.session, self.origin.consume(), self.subscribe.clone())
            .await
            .expect("server session")
    }

    /// A raw client connection, and the server's session for it.
    async fn raw(&self) -> (Session, Wt) {
        let connect = async {
            let connected = self.client.connect(&self.url).await.expect("connects");
            assert_eq!(connected.protocol.as_deref(), Some("moq-lite-04"));
            // Driven by hand, on quinn's own stream types.
            connected.session.into_inner()
        };
        tokio::join!(self.accept(), connect)
    }

    /// A client running our session, subscribing into its own origin.
    async fn good(&self) -> Good {
        let origin = OriginProducer::new();
        let connect = async {
            let connected = self.client.connect(&self.url).await.expect("connects");
            Session::connect(connected.session, None::<OriginConsumer>, origin.clone())
                .await
                .expect("client session")
        };
        let (server, client) = tokio::join!(self.accept(), connect);
        Good {
            _server: server,
            client,
            origin,
        }
    }
}

fn payload(sequence: u64, index: usize) -> Bytes {
    // Sizes vary, some past one read chunk.
    let size = (sequence as usize * 7919 + index * 30_011) % 70_000;
    Bytes::from(vec![
        (sequence as u8).wrapping_mul(31).wrapping_add(index as u8);
        size
    ])
}

const FRAMES: usize = 4;

fn write_group(track: &mut TrackProducer, sequence: u64) {
    let mut group = track.create_group(sequence).unwrap();
    for index in 0..FRAMES {
        group.write_frame(payload(sequence, index)).unwrap();
    }
    group.finish().unwrap();
}

/// Waits for `path` to be announced to the good client and subscribes.
async fn subscribe(origin: &OriginProducer, path: &str, track: &str) -> TrackConsumer {
    let mut announced = origin.consume();
    loop {
        let next = announced.announced().await.expect("origin open");
        if next.path == Path::new(path) {
            if let Some(broadcast) = next.broadcast {
                return broadcast.subscribe_track(&Track::new(track)).expect("subscribes");
            }
        }
    }
}

async fn read_groups(track: &mut TrackConsumer, count: usize) -> BTreeMap<u64, Vec<Bytes>> {
    let mut groups = BTreeMap::new();
    while groups.len() < count {
        let mut group = track
            .next_group()
            .await
            .expect("track intact")
            .expect("track open");
        let mut frames = Vec::new();
        while let Some(frame) = group.read_frame().await.expect("group intact") {
            frames.push(frame);
        }
        groups.insert(group.sequence(), frames);
    }
    groups
}

/// What the bad session must come to.
enum Expect {
    /// Closed by the server with a protocol error code.
    Closed,
    /// Still open (the attack checks what happened to its streams).
    Open,
}

/// Runs `attack` from a raw client while a good client is subscribed to
/// room/video, then checks the bad session's fate, that the good client gets
/// every frame written afterwards, and that nothing panicked.
async fn alongside(
    name: &str,
    server_subscribes: Option<OriginProducer>,
    expect: Expect,
    attack: impl AsyncFnOnce(&Wt),
) {
    watch_panics();
    let run = async {
        let h = Harness::new(server_subscribes);
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        write_group(&mut track, 0);

        let good = h.good().await;
        let mut consumer = subscribe(&good.origin, "room", "video").await;
        let first = read_groups(&mut consumer, 1).await;
        assert_eq!(first[&0], (0..FRAMES).map(|i| payload(0, i)).collect::<Vec<_>>());

        let (bad, raw) = h.raw().await;
        attack(&raw).await;
        match expect {
            Expect::Closed => {
                let err = tokio::time::timeout(LIMIT / 2, bad.closed())
                    .await
                    .unwrap_or_else(|_| panic!("{name}: the server did not close the session"));
                let seen = raw.closed().await.session_error();
                println!(
                    "{name}: server closed the session with {} ({err}), client saw {seen:?}",
                    err.code()
                );
                assert!(PROTOCOL_CODES.contains(&err.code()), "{name}: {err:?}");
                assert_eq!(seen, Some((err.code(), err.to_string())), "{name}");
            }
            Expect::Open => {
                assert!(bad.closed().now_or_never().is_none(), "{name}: closed");
                assert!(raw.close_reason().is_none(), "{name}: {:?}", raw.close_reason());
            }
        }

        for sequence in 1..=5 {
            write_group(&mut track, sequence);
        }
        let groups = read_groups(&mut consumer, 5).await;
        for (sequence, frames) in groups {
            let expected: Vec<Bytes> = (0..FRAMES).map(|i| payload(sequence, i)).collect();
            assert!(frames == expected, "{name}: group {sequence} differs");
        }
        assert!(
            good.client.closed().now_or_never().is_none(),
            "{name}: good client closed"
        );
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("{name}: timed out"));
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "{name}: something panicked");
}

/// Opens a bidi stream, writes `bytes`, and FINs it if `fin`.
async fn send_bi(raw: &Wt, bytes: &[u8], fin: bool) {
    let (mut send, _recv) = raw.open_bi().await.expect("opens");
    send.write_all(bytes).await.expect("writes");
    if fin {
        send.finish().unwrap();
    }
    // Keep the stream alive (dropping it would finish it): the session close ends it.
    std::mem::forget(send);
}

/// Stream type 0x2, then a SUBSCRIBE body spelled out, with the given path
/// and track name bytes (not checked here: that is the point).
fn subscribe_with(path: &[u8], track: &[u8]) -> Vec<u8> {
    let mut body = vec![0x01]; // subscribe id
    body.push(path.len() as u8);
    body.extend_from_slice(path);
    body.push(track.len() as u8);
    body.extend_from_slice(track);
    body.extend_from_slice(&[
        0x00, // priority
        0x00, // ordered
        0x00, // max latency
        0x00, // start group: latest
        0x00, // end group: unbounded
    ]);
    let mut bytes = vec![0x02, body.len() as u8];
    bytes.extend_from_slice(&body);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_subscribe() {
    alongside("truncated SUBSCRIBE", None, Expect::Closed, async |raw| {
        let mut bytes = Vec::new();
        ControlStream::Subscribe.encode(V, &mut bytes).unwrap();
        Subscribe {
            id: 1,
            broadcast: Path::new("room"),
            track: "video".into(),
            ..Default::default()
        }
        .encode(V, &mut bytes)
        .unwrap();
        // FIN in the middle of the message.
        send_bi(raw, &bytes[..bytes.len() / 2], true).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_subscribe_length() {
    alongside("SUBSCRIBE of length 2^62-1", None, Expect::Closed, async |raw| {
        // 2^62 - 1 as an eight-byte varint, and nothing behind it, no FIN:
        // refused at once, not waited for.
        send_bi(
            raw,
            &[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            false,
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_a_relative_path() {
    alongside("SUBSCRIBE path with ..", None, Expect::Closed, async |raw| {
        send_bi(raw, &subscribe_with(b"room/../etc", b"video"), false).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_an_empty_segment() {
    alongside(
        "SUBSCRIBE path with an empty segment",
        None,
        Expect::Closed,
        async |raw| {
            send_bi(raw, &subscribe_with(b"room//video", b"video"), false).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_invalid_utf8_track() {
    alongside(
        "SUBSCRIBE track name not UTF-8",
        None,
        Expect::Closed,
        async |raw| {
            send_bi(raw, &subscribe_with(b"room", b"vid\xff\xfeo"), false).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_an_announce_stream() {
    alongside(
        "garbage after ANNOUNCE stream type",
        None,
        Expect::Closed,
        async |raw| {
            // Length 3, then a prefix length needing an eight-byte varint: the
            // frame ends inside its first field.
            send_bi(raw, &[0x01, 0x03, 0xc0, 0xff, 0xee], true).await;
        },
    )
    .await;
}

/// Stream type 0x0 Group, GROUP {subscribe 99, sequence 0}, one FRAME.
fn stray_group() -> Vec<u8> {
    let mut bytes = vec![0x00];
    Group {
        subscribe: 99,
        sequence: 0,
        frame_start: 0,
    }
    .encode(V, &mut bytes)
    .unwrap();
    FrameHeader::encode_frame(b"unasked", V, &mut bytes).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_stream_to_a_server_that_subscribes_to_nothing() {
    // No subscriber half at all: no subscription can exist, a group stream is
    // an unexpected stream and closes the session (code 10).
    alongside(
        "group stream, no subscriber half",
        None,
        Expect::Closed,
        async |raw| {
            let mut uni = raw.open_uni().await.unwrap();
            uni.write_all(&stray_group()).await.unwrap();
            std::mem::forget(uni);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_stream_for_an_unknown_subscription() {
    // With a subscriber half, an unknown subscribe id may be one we just
    // cancelled: the stream is stopped (not found), the session goes on.
    let subscribe = Some(OriginProducer::new());
    alongside(
        "group stream, unknown subscription",
        subscribe,
        Expect::Open,
        async |raw| {
            let mut uni = raw.open_uni().await.unwrap();
            uni.write_all(&stray_group()).await.unwrap();
            let stopped = uni.stopped().await.expect("session open");
            assert_eq!(stopped, Some(Error::NotFound.code()));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_garbage_streams_at_once() {
    alongside("200 garbage bidi streams", None, Expect::Closed, async |raw| {
        // A fixed xorshift sequence: the same garbage every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut streams = Vec::new();
        for _ in 0..200 {
            let mut bytes = vec![0x02]; // Subscribe, then garbage
            for _ in 0..16 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            streams.push(async move {
                // Once the server closes the session, the rest fail: fine.
                if let Ok((mut send, _recv)) = raw.open_bi().await {
                    if send.write_all(&bytes).await.is_ok() {
                        let _ = send.finish();
                    }
                }
            });
        }
        futures::future::join_all(streams).await;
    })
    .await;
}

/// Decodes messages from a raw receive stream.
struct Msgs {
    recv: RecvStream,
    buf: BytesMut,
}

impl Msgs {
    fn new(recv: RecvStream) -> Self {
        Msgs {
            recv,
            buf: BytesMut::new(),
        }
    }

    async fn next<T>(&mut self, decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>) -> T {
        loop {
            if let Some((value, used)) = try_decode(&self.buf, &decode).expect("the server's bytes decode") {
                self.buf.advance(used);
                return value;
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .recv
                .read(&mut chunk)
                .await
                .expect("readable")
                .expect("not finished");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn announce(status: AnnounceStatus, suffix: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    Announce {
        status,
        suffix: Path::new(suffix),
        hops: vec![],
    }
    .encode(V, &mut bytes)
    .unwrap();
    bytes
}

/// The raw client as a publisher to a server that subscribes into
/// `origin`: answers the server's Announce stream with `cam` active (the
/// announce stream is returned, open), then makes the server subscribe to
/// cam/t and returns its Subscribe stream, the SUBSCRIBE, and the server-side
/// consumer that caused it.
async fn publish_cam(
    raw: &Wt,
    origin: &OriginProducer,
) -> (SendStream, SendStream, Msgs, Subscribe, TrackConsumer) {
    let (mut announce_send, announce_recv) = raw.accept_bi().await.expect("the server's Announce stream");
    let mut msgs = Msgs::new(announce_recv);
    let kind = msgs.next(|b| ControlStream::decode(b, V)).await;
    assert_eq!(kind, StreamType::Known(ControlStream::Announce));
    let interest = msgs.next(|b| AnnounceInterest::decode(b, V)).await;
    assert_eq!(interest.prefix, Path::root());
    announce_send
        .write_all(&announce(AnnounceStatus::Active, "cam"))
        .await
        .unwrap();

    let consumer = subscribe(origin, "cam", "t").await;
    let (send, recv) = raw.accept_bi().await.expect("the server's Subscribe stream");
    let mut msgs = Msgs::new(recv);
    let kind = msgs.next(|b| ControlStream::decode(b, V)).await;
    assert_eq!(kind, StreamType::Known(ControlStream::Subscribe));
    let msg = msgs.next(|b| Subscribe::decode(b, V)).await;
    assert_eq!((msg.broadcast.as_str(), msg.track.as_str()), ("cam", "t"));
    // Never 0, which a literal reading of lite-04 "Expiration" takes as
    // "the live edge only".
    assert_eq!(msg.max_latency, moq_lite::lite::DEFAULT_MAX_LATENCY);
    (announce_send, send, msgs, msg, consumer)
}

fn subscribe_ok() -> Vec<u8> {
    let mut bytes = Vec::new();
    SubscribeOk {
        start_group: Some(0),
        ..Default::default()
    }
    .encode(V, &mut bytes)
    .unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_shorter_than_its_size() {
    let origin = OriginProducer::new();
    let server_origin = origin.clone();
    alongside(
        "FRAME shorter than declared",
        Some(server_origin),
        Expect::Closed,
        async |raw| {
            let (announce, mut send, recv, msg, consumer) = publish_cam(raw, &origin).await;
            send.write_all(&subscribe_ok()).await.unwrap();
            let mut uni = raw.open_uni().await.unwrap();
            let mut bytes = vec![0x00];
            Group {
                subscribe: msg.id,
                sequence: 0,
                frame_start: 0,
            }
            .encode(V, &mut bytes)
            .unwrap();
            FrameHeader { size: 100, delta: 0 }.encode(V, &mut bytes).unwrap();
            bytes.extend_from_slice(&[7; 10]);
            uni.write_all(&bytes).await.unwrap();
            uni.finish().unwrap();
            // The consumer stays (leaked) so that the subscription is not
            // cancelled before the server reads the group: then it would only
            // stop the stream. What it sees is racy (the group's WrongSize or
            // the whole track ending with the session): not checked.
            std::mem::forget((announce, send, recv, consumer));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_active_announce() {
    let origin = OriginProducer::new();
    let server_origin = origin.clone();
    alongside(
        "ANNOUNCE active twice",
        Some(server_origin),
        Expect::Closed,
        async |raw| {
            let (mut announce_send, announce_recv) = raw.accept_bi().await.unwrap();
            announce_send
                .write_all(&announce(AnnounceStatus::Active, "cam"))
                .await
                .unwrap();
            announce_send
                .write_all(&announce(AnnounceStatus::Active, "cam"))
                .await
                .unwrap();
            std::mem::forget((announce_send, announce_recv));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_drop_before_subscribe_ok() {
    let origin = OriginProducer::new();
    let server_origin = origin.clone();
    alongside(
        "SUBSCRIBE_DROP first",
        Some(server_origin),
        Expect::Closed,
        async |raw| {
            let (announce, mut send, recv, _msg, mut consumer) = publish_cam(raw, &origin).await;
            let mut bytes = Vec::new();
            SubscribeDrop {
                start: 0,
                end: 0,
                error: 0,
            }
            .encode(V, &mut bytes)
            .unwrap();
            send.write_all(&bytes).await.unwrap();
            // The server notices: its consumer's track is aborted (today with
            // ProtocolViolation; once the session closes, maybe with Transport).
            let aborted = consumer.next_group().await.err();
            println!("SUBSCRIBE_DROP first: the server's track ended with {aborted:?}");
            assert!(aborted.is_some());
            std::mem::forget((announce, send, recv, consumer));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_subscribe_reply() {
    let origin = OriginProducer::new();
    let server_origin = origin.clone();
    alongside(
        "garbage SUBSCRIBE reply",
        Some(server_origin),
        Expect::Closed,
        async |raw| {
            let (announce, mut send, recv, _msg, mut consumer) = publish_cam(raw, &origin).await;
            // Response type 7 does not exist.
            send.write_all(&[0x07, 0x01, 0x00]).await.unwrap();
            let aborted = consumer.next_group().await.err();
            println!("garbage SUBSCRIBE reply: the server's track ended with {aborted:?}");
            assert!(aborted.is_some());
            std::mem::forget((announce, send, recv, consumer));
        },
    )
    .await;
}

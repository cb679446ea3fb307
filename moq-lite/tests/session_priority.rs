//! Delivery order of the publisher's group streams, moq-lite-04 (spec:
//! "Delivery", "Prioritization", "Expiration"): subscriber priority across
//! tracks, newest (or, `ordered`, oldest) group first within a track,
//! SUBSCRIBE_UPDATE re-prioritising new groups, and max-latency expiry.
//!
//! The server is our [`Session::accept`] over an origin the test fills; the
//! client is a bare raw-QUIC connection (ALPN `moq-lite-04`) that writes its
//! SUBSCRIBEs by hand and records the order in which group streams complete.
//!
//! # Where the bottleneck is
//!
//! A group stream's QUIC priority only decides which stream's *buffered*
//! data quinn packetises next when the congestion controller lets it send.
//! Quinn accepts writes only within the peer's flow-control credit, so a
//! flow-control bottleneck (small receive windows, a client that does not
//! read) keeps the backlog in the publisher's tasks, not in quinn: whoever
//! gets freed credit first is then decided by task wake-up order, and
//! priority plays no part. The ordering tests therefore put the bottleneck
//! in congestion control instead: a UDP [`Relay`] between client and server
//! holds every server-to-client datagram while paused. With no
//! acknowledgements the server's congestion window fills after about one
//! initial window (~15 KB), and everything else the publisher writes (up to
//! its 4 MiB send window) waits in quinn's send buffer. On resume quinn
//! drains that buffer strictly by priority. Groups are 64 KB, so a group
//! cannot complete inside the initial window; and the backlog is always
//! written in the order *opposite* to the expected delivery, so arrival
//! (FIFO) order can never pass for priority order. (Each backlog is written
//! while the congestion window is still about its initial size: after a big
//! transfer it would be large enough to send whole groups before the pause
//! bites.)
//!
//! Completion order equals packetisation order only when no packet is lost;
//! on loopback that happens only on a heavily overloaded machine, and such a
//! run is retried (see [`lossless`]). Every order is checked with a slack of
//! one place ([`SLACK`]) for reader-task scheduling.

#[path = "support/loopback.rs"]
mod loopback;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use moq_lite::Session;
use moq_lite::endpoint::quinn;
use moq_lite::endpoint::{Client, ClientConfig, QuicConfig, Server};
use moq_lite::lite::{
    ControlStream, DataStream, FrameHeader, Group, Message, StreamType, Subscribe, SubscribeResponse,
    SubscribeUpdate, Version,
};
use moq_lite::model::{OriginProducer, Path, Track, TrackProducer};
use tokio::sync::mpsc;
use url::Url;
use web_transport_quinn::{RecvStream, SendStream, Session as Wt};

const V: Version = Version::Lite04;
const LIMIT: Duration = Duration::from_secs(10);
/// Payload of one "big" group: four 16 KB frames, far more than the
/// server's initial congestion window.
const FRAME: usize = 16 * 1024;
const FRAMES: usize = 4;
/// How long we give the publisher to hand what the model holds to quinn.
/// Nothing is blocked (the windows are far larger than the backlog), so this
/// is only task scheduling, with a wide margin for a busy machine.
const SETTLE: Duration = Duration::from_millis(200);

/// One test at a time: each runs a server, a client and a relay, and its
/// observations are only as good as its share of the (possibly small)
/// machine. Held across runtimes, hence tokio's mutex.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's [`TURN`], then runs its body under [`LIMIT`], so
/// that a hang fails instead of blocking.
async fn limit<F: std::future::Future>(body: F) -> F::Output {
    let _turn = TURN.lock().await;
    tokio::time::timeout(LIMIT, body).await.expect("timed out")
}

/// A UDP relay between the client and the server. Client-to-server
/// datagrams pass at once. Server-to-client datagrams go through a FIFO
/// queue that is held while paused and otherwise drained at a modest pace
/// ([`PACE`] per datagram), so that the client (a debug build sharing a
/// small machine with the server) reads them about as they arrive and does
/// not overflow its socket buffer: the order in which group streams complete
/// at the client is then the order in which the server packetised them. The
/// queue is unbounded and FIFO, so the relay itself neither drops nor
/// reorders. It runs on OS threads, so a busy runtime cannot starve it.
struct Relay {
    addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Time between two server-to-client datagrams (sleeps are rounded up, so
/// it is in practice a little more): ~1500 bytes per 100 µs, ~15 MB/s.
const PACE: Duration = Duration::from_micros(100);

#[derive(Default)]
struct RelayState {
    client: Option<SocketAddr>,
    paused: bool,
    queue: std::collections::VecDeque<Vec<u8>>,
    stop: bool,
    /// Datagrams forwarded server to client, for diagnostics.
    forwarded: u64,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let front = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let back = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        back.connect(server).unwrap();
        // Short timeouts only so the threads notice `stop`.
        let tick = Some(Duration::from_millis(20));
        front.set_read_timeout(tick).unwrap();
        back.set_read_timeout(tick).unwrap();
        let addr = front.local_addr().unwrap();
        let state = Arc::new(Mutex::new(RelayState::default()));

        let up = std::thread::spawn({
            let (front, back, state) = (front.clone(), back.clone(), state.clone());
            move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !state.lock().unwrap().stop {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        state.lock().unwrap().client = Some(from);
                        let _ = back.send(&buf[..n]);
                    }
                }
            }
        });
        let down_recv = std::thread::spawn({
            let state = state.clone();
            move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !state.lock().unwrap().stop {
                    if let Ok(n) = back.recv(&mut buf) {
                        state.lock().unwrap().queue.push_back(buf[..n].to_vec());
                    }
                }
            }
        });
        let down_send = std::thread::spawn({
            let state = state.clone();
            move || {
                loop {
                    let next = {
                        let mut state = state.lock().unwrap();
                        if state.stop {
                            return;
                        }
                        match (state.paused, state.client) {
                            (false, Some(to)) => state.queue.pop_front().map(|datagram| {
                                state.forwarded += 1;
                                (datagram, to)
                            }),
                            _ => None,
                        }
                    };
                    if let Some((datagram, to)) = next {
                        let _ = front.send_to(&datagram, to);
                    }
                    std::thread::sleep(PACE);
                }
            }
        });
        Relay {
            addr,
            state,
            threads: vec![up, down_recv, down_send],
        }
    }

    /// Holds server-to-client datagrams from now on.
    fn pause(&self) {
        self.state.lock().unwrap().paused = true;
    }

    /// Delivers what was held, in order, and then everything else.
    fn resume(&self) {
        self.state.lock().unwrap().paused = false;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.lock().unwrap().stop = true;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A server running our session, reached through a [`Relay`] by a client
/// endpoint that connects raw.
struct Harness {
    server: Server,
    client: Client,
    relay: Relay,
    /// The server's transport, for its statistics.
    server_wt: Mutex<Option<moq_lite::endpoint::QuicSession>>,
    /// What the server publishes.
    origin: OriginProducer,
}

impl Harness {
    /// `quic` is the client's transport config (its receive windows are what
    /// the server may send ahead of the client reading).
    async fn new(quic: QuicConfig) -> Self {
        let server = loopback::server();
        let relay = Relay::start(server.local_addr().unwrap());
        let client = loopback::client(
            &server,
            ClientConfig {
                protocols: vec!["moq-lite-04".into()],
                // The client takes streams by hand, on the bare session,
                // which never raises its limits: it grants the maximums
                // from the start, so that only priority orders the groups.
                quic: QuicConfig {
                    initial_bidi_streams: quic.max_bidi_streams,
                    initial_uni_streams: quic.max_uni_streams,
                    ..quic
                },
                ..Default::default()
            },
        );
        Harness {
            server,
            client,
            relay,
            server_wt: Mutex::new(None),
            origin: OriginProducer::new(),
        }
    }

    /// A raw client connection through the relay, and the server's session.
    async fn raw(&self) -> (Session, Wt) {
        let url = Url::parse(&format!("moql://127.0.0.1:{}/", self.relay.addr.port())).unwrap();
        let accept = async {
            let incoming = self.server.accept().await.expect("incoming");
            let accepted = incoming.accept().await.expect("handshake");
            *self.server_wt.lock().unwrap() = Some(accepted.session.clone());
            Session::accept(accepted.session, self.origin.consume(), None)
                .await
                .expect("server session")
        };
        let connect = async {
            let connected = self.client.connect(&url).await.expect("connects");
            assert_eq!(connected.protocol.as_deref(), Some("moq-lite-04"));
            // Driven by hand, on quinn's own stream types.
            connected.session.into_inner()
        };
        let (server, raw) = tokio::join!(accept, connect);
        assert_eq!(server.version(), V);
        (server, raw)
    }
}

impl Harness {
    /// Prints what was sent, lost and forwarded where, and returns how many
    /// packets the server declared lost.
    fn report(&self, raw: &Wt) -> u64 {
        let server = self.server_wt.lock().unwrap().clone().expect("connected");
        let server = quinn::Connection::stats(&server);
        let client = quinn::Connection::stats(raw);
        println!(
            "server: {} datagrams sent, {} packets lost, cwnd {}; relay forwarded {}; client received {}",
            server.udp_tx.datagrams,
            server.path.lost_packets,
            server.path.cwnd,
            self.relay.state.lock().unwrap().forwarded,
            client.udp_rx.datagrams,
        );
        server.path.lost_packets
    }
}

#[path = "support/wire.rs"]
mod wire;
use wire::{End, Wire};

/// Opens a bidi stream and writes `bytes` on it (no FIN: the stream stays open).
async fn open(raw: &Wt, bytes: &[u8]) -> (SendStream, Wire) {
    let (mut send, recv) = raw.open_bi().await.expect("opens a stream");
    send.write_all(bytes).await.expect("writes");
    (send, Wire::new(recv))
}

fn sub(id: u64, track: &str, priority: u8) -> Subscribe {
    Subscribe {
        id,
        broadcast: Path::new("room"),
        track: track.into(),
        priority,
        ..Default::default()
    }
}

/// Opens a Subscribe stream for `msg` and reads its SUBSCRIBE_OK. The send
/// half must be kept: dropping it would unsubscribe.
async fn subscribe(raw: &Wt, msg: &Subscribe) -> (SendStream, Wire) {
    let mut buf = Vec::new();
    ControlStream::Subscribe.encode(V, &mut buf).unwrap();
    msg.encode(V, &mut buf).unwrap();
    let (send, mut reply) = open(raw, &buf).await;
    match reply.next(|b| SubscribeResponse::decode(b, V)).await {
        Ok(Some(SubscribeResponse::Ok(_))) => {}
        other => panic!("expected SUBSCRIBE_OK, got {other:?}"),
    }
    (send, reply)
}

/// One group stream, read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Done {
    /// From the GROUP header; 0 / `u64::MAX` if the stream was reset
    /// before the header could be read (quinn drops unread data on reset).
    subscribe: u64,
    sequence: u64,
    /// Payload bytes received in whole frames.
    payload: usize,
    end: End,
}

/// Reads one group stream to its end.
async fn read_group(recv: RecvStream) -> Done {
    let mut wire = Wire::new(recv);
    let unknown = |end| Done {
        subscribe: 0,
        sequence: u64::MAX,
        payload: 0,
        end,
    };
    let kind = match wire.next(|b| DataStream::decode(b, V)).await {
        Ok(kind) => kind.expect("a stream type"),
        Err(end) => return unknown(end),
    };
    assert_eq!(kind, StreamType::Known(DataStream::Group));
    let header = match wire.next(|b| Group::decode(b, V)).await {
        Ok(header) => header.expect("a GROUP header"),
        Err(end) => return unknown(end),
    };
    let mut payload = 0;
    let end = loop {
        match wire.next(|b| FrameHeader::decode(b, V)).await {
            Ok(Some(frame)) => match wire.skip(frame.size as usize).await {
                Ok(()) => payload += frame.size as usize,
                Err(end) => break end,
            },
            Ok(None) => break End::Fin,
            Err(end) => break end,
        }
    };
    Done {
        subscribe: header.subscribe,
        sequence: header.sequence,
        payload,
        end,
    }
}

/// Accepts every group stream of `raw` and reads them all concurrently, as
/// fast as they arrive; each is reported when it ends, so the channel's
/// order is the order in which the streams completed.
fn collect(raw: &Wt) -> mpsc::UnboundedReceiver<Done> {
    let raw = raw.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(recv) = raw.accept_uni().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(read_group(recv).await);
            });
        }
    });
    rx
}

/// The next `n` group streams to complete, in completion order.
async fn next_done(done: &mut mpsc::UnboundedReceiver<Done>, n: usize) -> Vec<Done> {
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        order.push(done.recv().await.expect("the client is reading"));
    }
    order
}

/// Appends a group of [`FRAMES`] frames of [`FRAME`] bytes, and finishes it.
fn write_big(track: &mut TrackProducer, sequence: u64) {
    let mut group = track.create_group(sequence).unwrap();
    for _ in 0..FRAMES {
        group
            .write_frame(Bytes::from(vec![sequence as u8; FRAME]))
            .unwrap();
    }
    group.finish().unwrap();
}

/// (subscribe id, sequence) in completion order, for messages.
fn ids(order: &[Done]) -> Vec<(u64, u64)> {
    order.iter().map(|d| (d.subscribe, d.sequence)).collect()
}

/// (sequence, how it ended) in completion order; `u64::MAX` for a stream
/// reset before its header was read.
fn ends(order: &[Done]) -> Vec<(u64, End)> {
    order.iter().map(|d| (d.sequence, d.end.clone())).collect()
}

fn assert_complete(order: &[Done]) {
    for done in order {
        assert_eq!(
            (&done.end, done.payload),
            (&End::Fin, FRAME * FRAMES),
            "group {done:?} incomplete; order {:?}",
            ids(order)
        );
    }
}

/// How far a group may complete from its expected place. Consecutive groups
/// in the expected order complete tens of datagrams (milliseconds at
/// [`PACE`]) apart, but the client's reader tasks share a small machine with
/// everything else: one adjacent swap is tolerated, nothing more.
const SLACK: usize = 1;

/// `order` completed in `expected` order, up to [`SLACK`] places per group.
fn assert_order(order: &[Done], expected: &[(u64, u64)]) {
    let actual = ids(order);
    let mut sorted = actual.clone();
    sorted.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(sorted, want, "the groups that completed");
    for (at, id) in actual.iter().enumerate() {
        let place = expected.iter().position(|e| e == id).unwrap();
        assert!(
            at.abs_diff(place) <= SLACK,
            "group {id:?} completed {at}th, expected {place}th:\n  actual   {actual:?}\n  expected {expected:?}"
        );
    }
}

/// Writes the backlog with the relay paused, then [`drain`]s it.
async fn backlog(
    h: &Harness,
    done: &mut mpsc::UnboundedReceiver<Done>,
    n: usize,
    write: impl FnOnce(),
) -> Vec<Done> {
    h.relay.pause();
    write();
    drain(h, done, n).await
}

/// Gives the publisher time to hand the backlog to quinn, resumes the relay,
/// and returns the next `n` completions (all of them whole groups).
async fn drain(h: &Harness, done: &mut mpsc::UnboundedReceiver<Done>, n: usize) -> Vec<Done> {
    tokio::time::sleep(SETTLE).await;
    h.relay.resume();
    let order = next_done(done, n).await;
    println!("completion order: {:?}", ids(&order));
    assert_complete(&order);
    order
}

/// How many times a scenario is tried before a lossy run counts.
const ATTEMPTS: usize = 3;

/// Runs `scenario` (which returns what it observed and how many packets the
/// server lost) until a run loses none, and returns that run's observation.
///
/// Completion order is the packetisation order only if nothing is lost: a
/// lost packet is retransmitted (at its stream's priority) only once it is
/// detected, a round trip later, by which time up to a congestion window of
/// later data has gone, so its group completes late. On loopback nothing is
/// lost unless the machine is so overloaded that a socket buffer overflows
/// (seen with three busy loops on two cores); such a run says nothing about
/// priority and is tried again.
async fn lossless<T>(mut scenario: impl AsyncFnMut() -> (T, u64)) -> T {
    for attempt in 1..=ATTEMPTS {
        let (seen, lost) = scenario().await;
        if lost == 0 {
            return seen;
        }
        println!("attempt {attempt}: {lost} packets lost, the order proves nothing; again");
    }
    panic!("packets were lost in all {ATTEMPTS} attempts: the machine is too busy to test ordering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_track_overtakes_a_low_priority_backlog() {
    const LOW: u64 = 16;
    let order = limit(lossless(async || {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        // The publisher priorities favour the low track: the subscriber's
        // priority takes precedence, so they must not matter.
        let mut low = broadcast.create_track(Track::new("low").with_priority(255));
        let mut high = broadcast.create_track(Track::new("high").with_priority(0));
        let (_server, raw) = h.raw().await;
        let _low_sub = subscribe(&raw, &sub(1, "low", 1)).await;
        let _high_sub = subscribe(&raw, &sub(2, "high", 200)).await;
        let mut done = collect(&raw);

        // 1 MiB of the low track is queued in quinn before the one high
        // group is even written.
        h.relay.pause();
        for sequence in 0..LOW {
            write_big(&mut low, sequence);
        }
        tokio::time::sleep(SETTLE).await;
        write_big(&mut high, 0);
        let order = drain(&h, &mut done, LOW as usize + 1).await;
        (order, h.report(&raw))
    }))
    .await;
    // Only data in flight at the pause (about one initial window, less than
    // a group) went before the high group: it overtakes the whole low
    // backlog (which itself goes newest first).
    let mut expected = vec![(2, 0)];
    expected.extend((0..LOW).rev().map(|sequence| (1, sequence)));
    assert_order(&order, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_priority_breaks_subscriber_priority_ties() {
    const EACH: u64 = 3;
    let order = limit(lossless(async || {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut quiet = broadcast.create_track(Track::new("quiet").with_priority(1));
        let mut loud = broadcast.create_track(Track::new("loud").with_priority(9));
        let (_server, raw) = h.raw().await;
        let _quiet_sub = subscribe(&raw, &sub(1, "quiet", 50)).await;
        let _loud_sub = subscribe(&raw, &sub(2, "loud", 50)).await;
        let mut done = collect(&raw);

        // The same subscriber priority: the publisher's decides, though the
        // quiet track's groups came first.
        let order = backlog(&h, &mut done, 2 * EACH as usize, || {
            for sequence in 0..EACH {
                write_big(&mut quiet, sequence);
            }
            for sequence in 0..EACH {
                write_big(&mut loud, sequence);
            }
        })
        .await;
        (order, h.report(&raw))
    }))
    .await;
    assert_order(&order, &[(2, 2), (2, 1), (2, 0), (1, 2), (1, 1), (1, 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_group_first_within_a_track() {
    const N: u64 = 12;
    let order = limit(lossless(async || {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        let (_server, raw) = h.raw().await;
        let _sub = subscribe(&raw, &sub(1, "video", 0)).await;
        let mut done = collect(&raw);

        // Written oldest first: arrival order is the opposite of what we want.
        let order = backlog(&h, &mut done, N as usize, || {
            for sequence in 0..N {
                write_big(&mut track, sequence);
            }
        })
        .await;
        (order, h.report(&raw))
    }))
    .await;
    let newest_first: Vec<(u64, u64)> = (0..N).rev().map(|sequence| (1, sequence)).collect();
    assert_order(&order, &newest_first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_subscription_gets_oldest_group_first() {
    const N: u64 = 12;
    let order = limit(lossless(async || {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        let (_server, raw) = h.raw().await;
        let msg = Subscribe {
            ordered: true,
            ..sub(1, "video", 0)
        };
        let _sub = subscribe(&raw, &msg).await;
        let mut done = collect(&raw);

        // Written newest first (a track takes groups in any order, and the
        // subscription started on an empty track, so it gets them all):
        // arrival order is the opposite of ordered delivery.
        let order = backlog(&h, &mut done, N as usize, || {
            for sequence in (0..N).rev() {
                write_big(&mut track, sequence);
            }
        })
        .await;
        (order, h.report(&raw))
    }))
    .await;
    let oldest_first: Vec<(u64, u64)> = (0..N).map(|sequence| (1, sequence)).collect();
    assert_order(&order, &oldest_first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_update_reprioritises_new_groups() {
    const EACH: u64 = 3;
    let order = limit(lossless(async || {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut a = broadcast.create_track(Track::new("a"));
        let mut b = broadcast.create_track(Track::new("b"));
        let (_server, raw) = h.raw().await;
        let _a_sub = subscribe(&raw, &sub(1, "a", 100)).await;
        let (mut b_send, _b_reply) = subscribe(&raw, &sub(2, "b", 10)).await;
        let mut done = collect(&raw);

        // Both subscriptions deliver. The groups are tiny, so that the
        // server's congestion window stays about its initial size and the
        // backlog below waits in quinn, not on the wire.
        for track in [&mut a, &mut b] {
            let mut group = track.create_group(0).unwrap();
            group.write_frame(Bytes::from_static(b"tiny")).unwrap();
            group.finish().unwrap();
        }
        let mut first = next_done(&mut done, 2).await;
        first.sort_by_key(|d| d.subscribe);
        assert_eq!(ids(&first), [(1, 0), (2, 0)]);

        // b goes from 10 to 200, over a (100). End group unbounded, as before.
        let update = SubscribeUpdate {
            priority: 200,
            ordered: false,
            max_latency: Duration::ZERO,
            start_group: None,
            end_group: None,
            ..Default::default()
        };
        let mut buf = Vec::new();
        update.encode(V, &mut buf).unwrap();
        b_send.write_all(&buf).await.unwrap();
        // No reply exists to wait for: give the publisher time to read it.
        tokio::time::sleep(SETTLE).await;

        // a's groups come first; b's must overtake them, which they could
        // not with b's original priority.
        let order = backlog(&h, &mut done, 2 * EACH as usize, || {
            for sequence in 1..=EACH {
                write_big(&mut a, sequence);
            }
            for sequence in 1..=EACH {
                write_big(&mut b, sequence);
            }
        })
        .await;
        (order, h.report(&raw))
    }))
    .await;
    assert_order(&order, &[(2, 3), (2, 2), (2, 1), (1, 3), (1, 2), (1, 1)]);
}

/// The client's windows are tiny and it does not read: the publisher's group
/// tasks block on flow control, so the groups are still in flight when a
/// newer one arrives past the max latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_past_max_latency_are_reset() {
    limit(async {
        let h = Harness::new(QuicConfig {
            stream_receive_window: 8 * 1024,
            receive_window: 32 * 1024,
            ..Default::default()
        })
        .await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        let (_server, raw) = h.raw().await;
        let msg = Subscribe {
            max_latency: Duration::from_millis(100),
            ..sub(1, "video", 0)
        };
        let _sub = subscribe(&raw, &msg).await;

        // 256 KB against a 32 KB window: every one of these is blocked.
        for sequence in 0..4 {
            write_big(&mut track, sequence);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        // More than 100 ms later: groups 0-3 expire. Group 5 follows 4 at
        // once, so 4 does not expire even though it is blocked too.
        write_big(&mut track, 4);
        write_big(&mut track, 5);
        tokio::time::sleep(SETTLE).await;

        let mut done = collect(&raw);
        let mut order = next_done(&mut done, 6).await;
        println!("completion order: {:?}", ends(&order));
        h.report(&raw);
        order.sort_by_key(|d| d.sequence);
        // The two fresh groups are whole; the four expired ones were reset
        // (quinn may drop their unread bytes, GROUP header included, so
        // they are known by being the other four streams).
        for (done, sequence) in order[..2].iter().zip([4, 5]) {
            assert_eq!(
                (done.sequence, &done.end, done.payload),
                (sequence, &End::Fin, FRAME * FRAMES),
                "{:?}",
                ends(&order)
            );
        }
        for done in &order[2..] {
            // A dropped (aborted) Writer resets with code 0, cancel.
            assert_eq!(done.end, End::Reset(0), "expired group {done:?}");
            assert!(done.payload < FRAME * FRAMES, "expired group {done:?}");
            assert!(done.sequence < 4 || done.sequence == u64::MAX, "{done:?}");
        }
    })
    .await;
}

/// Expiration also applies to groups the publisher already handed to quinn
/// but that still wait behind congestion: the spec ("Expiration") says an
/// expired group SHOULD be reset at the QUIC level, and the publisher's docs
/// promise that groups older than the max latency "are reset, not queued".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_groups_past_max_latency_are_reset() {
    limit(async {
        let h = Harness::new(QuicConfig::default()).await;
        let broadcast = h.origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        let (_server, raw) = h.raw().await;
        let msg = Subscribe {
            max_latency: Duration::from_millis(100),
            ..sub(1, "video", 0)
        };
        let _sub = subscribe(&raw, &msg).await;
        let mut done = collect(&raw);

        // Congestion: the groups wait in quinn's send buffer (nothing is
        // acknowledged), not in the publisher's tasks.
        h.relay.pause();
        for sequence in 0..4 {
            write_big(&mut track, sequence);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        // More than 100 ms later: groups 0-3 are expired.
        write_big(&mut track, 4);
        tokio::time::sleep(SETTLE).await;
        h.relay.resume();

        let mut order = next_done(&mut done, 5).await;
        println!("completion order: {:?}", ends(&order));
        h.report(&raw);
        order.sort_by_key(|d| d.sequence);
        let fresh = order.iter().find(|d| d.sequence == 4).expect("group 4 delivered");
        assert_eq!((&fresh.end, fresh.payload), (&End::Fin, FRAME * FRAMES));
        for done in order.iter().filter(|d| d.sequence != 4) {
            assert_eq!(
                done.end,
                End::Reset(0),
                "expired group {done:?}: {:?}",
                ends(&order)
            );
        }
    })
    .await;
}

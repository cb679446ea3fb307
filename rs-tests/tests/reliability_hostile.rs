//! Hostile peers against the relay (issue 9, "Bad input").
//!
//! `moq-lite/tests/session_hostile.rs` sends bad bytes to a bare
//! [`Session`] server; these tests send them to a whole relay
//! ([`TestRelay`]), over real QUIC, for what only the relay decides: its
//! session admission and setup timeout, the SETUP path and its version
//! negotiation, its announcement cap, its QUIC stream limits, and limits on
//! lengths the relay's sessions read.
//!
//! Every test runs a well-behaved publisher and subscriber ([`Steady`])
//! alongside the hostile client: each group the publisher writes must reach
//! the subscriber whole, in lockstep, before the next is written; nothing
//! may panic; and the relay's `/metrics` must be sane afterwards (the
//! hostile session gone from `sessions_active`, no subscriptions left over).

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use moq_lite::Session;
use moq_lite::coding::{DecodeError, Encode, try_decode};
use moq_lite::endpoint::Client;
use moq_lite::endpoint::web_transport_quinn::generic::Error as _;
use moq_lite::endpoint::web_transport_quinn::{self as wt, RecvStream, Session as Wt};
use moq_lite::lite::{
    ClientSetup, ControlStream, DataStream, Group, Message, StreamType, Subscribe, SubscribeResponse, Version,
};
use moq_lite::model::{BroadcastProducer, OriginProducer, Path, Track, TrackConsumer, TrackProducer};
use rs_tests::{TestRelay, subscribe};

const V: Version = Version::Lite04;
const LIMIT: Duration = Duration::from_secs(20);

/// The codes a protocol violation may close the session with: decode (5),
/// unexpected stream (10), bounds (11), wrong size (14), protocol violation (15).
const PROTOCOL_CODES: [u32; 5] = [5, 10, 11, 14, 15];

/// Panics raised outside the test files (in the relay, the library or a
/// dependency). A panicking session task closes its session with code 15,
/// like a real protocol violation, so the close code alone cannot tell.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Panics on the threads of `relay_shutdown_survives_runtime_teardown`'s
/// runtimes (named [`TEARDOWN`]), and that known bug's panic (in tokio's
/// `JoinSet::join_all`) wherever it happens: a test that fails before it
/// stops its relay cleanly may set it off, and must not make the other
/// tests fail with "something panicked".
static TEARDOWN_PANICS: AtomicUsize = AtomicUsize::new(0);
const TEARDOWN: &str = "teardown-probe";

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_tests = info.location().is_some_and(|l| l.file().contains("tests/"));
            let join_all = info.location().is_some_and(|l| l.file().ends_with("join_set.rs"));
            if std::thread::current().name() == Some(TEARDOWN) || join_all {
                TEARDOWN_PANICS.fetch_add(1, Ordering::SeqCst);
            } else if !in_tests {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

fn no_panics(name: &str) {
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "{name}: something panicked");
}

/// Ends a test: the steady pair leaves and the relay stops cleanly (GOAWAY,
/// drain), so that no relay task is left to be cancelled by the runtime's
/// teardown (see `relay_shutdown_survives_runtime_teardown`).
async fn shutdown(name: &str, relay: TestRelay, steady: Steady) {
    drop(steady);
    tokio::time::timeout(Duration::from_secs(5), relay.stop())
        .await
        .unwrap_or_else(|_| panic!("{name}: the relay did not stop"));
    no_panics(name);
}

// ---------------------------------------------------------------------------
// The well-behaved pair.

const FRAMES: u64 = 3;

fn payload(group: u64, frame: u64) -> Bytes {
    let mut data = format!("g{group}f{frame}:").into_bytes();
    data.resize(
        500 + ((group * 997 + frame * 1499) % 4000) as usize,
        (group * 7 + frame) as u8,
    );
    Bytes::from(data)
}

fn write_group(track: &mut TrackProducer) -> u64 {
    let mut group = track.append_group().unwrap();
    let sequence = group.sequence();
    for frame in 0..FRAMES {
        group.write_frame(payload(sequence, frame)).unwrap();
    }
    group.finish().unwrap();
    sequence
}

/// Reads the next group and checks it is `sequence` (if given), whole.
async fn read_group(consumer: &mut TrackConsumer, sequence: Option<u64>) -> u64 {
    let mut group = consumer
        .next_group()
        .await
        .expect("track intact")
        .expect("track open");
    let got = group.sequence();
    if let Some(sequence) = sequence {
        assert_eq!(got, sequence, "groups arrive one by one, none skipped");
    }
    for frame in 0..FRAMES {
        let data = group.read_frame().await.expect("group intact").expect("frame");
        assert_eq!(data, payload(got, frame), "group {got} frame {frame}");
    }
    assert_eq!(group.read_frame().await.expect("group intact"), None);
    got
}

/// A publisher (raw QUIC, moq-lite-04) of steady/t and a subscriber
/// (WebTransport) reading it, both well-behaved.
struct Steady {
    broadcast: BroadcastProducer,
    track: TrackProducer,
    consumer: TrackConsumer,
    /// The subscriber's origin: what the relay announces to it.
    view: OriginProducer,
    last: u64,
    publisher: Session,
    subscriber: Session,
    _clients: (Client, Client),
}

impl Steady {
    async fn start(relay: &TestRelay) -> Steady {
        let publish = OriginProducer::new();
        let (publisher, pc) = relay.connect(&relay.url("moql", "/"), Some(&publish), None).await;
        let broadcast = publish.create_broadcast("steady").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        write_group(&mut track);
        let view = OriginProducer::new();
        let (subscriber, sc) = relay.connect(&relay.url("https", "/"), None, Some(&view)).await;
        let mut consumer = subscribe(&view, "steady", "t").await;
        let last = read_group(&mut consumer, None).await;
        Steady {
            broadcast,
            track,
            consumer,
            view,
            last,
            publisher,
            subscriber,
            _clients: (pc, sc),
        }
    }

    /// Writes `count` groups; each reaches the subscriber whole before the
    /// next is written.
    async fn check(&mut self, name: &str, count: usize) {
        for _ in 0..count {
            let sequence = write_group(&mut self.track);
            assert_eq!(sequence, self.last + 1);
            tokio::time::timeout(
                Duration::from_secs(5),
                read_group(&mut self.consumer, Some(sequence)),
            )
            .await
            .unwrap_or_else(|_| panic!("{name}: group {sequence} did not reach the steady subscriber"));
            self.last = sequence;
        }
        assert_eq!(self.consumer.skipped(), 0, "{name}");
        for session in [&self.publisher, &self.subscriber] {
            assert!(
                tokio::time::timeout(Duration::ZERO, session.closed())
                    .await
                    .is_err(),
                "{name}: a steady session closed"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Raw clients and the relay's metrics.

/// A client endpoint offering only `alpn`.
fn raw_client(relay: &TestRelay, alpn: &str) -> Client {
    relay.client_offering(&[alpn])
}

/// A raw QUIC connection to the relay with `alpn`, streams driven by hand.
async fn raw(relay: &TestRelay, alpn: &str) -> (Wt, Client) {
    let client = raw_client(relay, alpn);
    let connected = client.connect(&relay.url("moql", "/")).await.expect("connects");
    assert_eq!(connected.protocol.as_deref(), Some(alpn));
    (connected.session.into_inner(), client)
}

/// The application close code in `err`, if the peer closed with one.
fn close_code(err: &wt::SessionError) -> Option<u32> {
    if let Some((code, _)) = err.session_error() {
        return Some(code);
    }
    match err {
        wt::SessionError::ConnectionError(wt::quinn::ConnectionError::ApplicationClosed(close)) => {
            u32::try_from(close.error_code.into_inner()).ok()
        }
        _ => None,
    }
}

/// Waits (a few seconds at most) for the relay to close `raw`; its code.
async fn closed_by_relay(name: &str, raw: &Wt) -> Option<u32> {
    let err = tokio::time::timeout(Duration::from_secs(5), raw.closed())
        .await
        .unwrap_or_else(|_| panic!("{name}: the relay did not close the session"));
    let code = close_code(&err);
    println!("{name}: the relay closed the session: {err} (code {code:?})");
    code
}

fn still_open(name: &str, raw: &Wt) {
    assert!(
        raw.close_reason().is_none(),
        "{name}: closed: {:?}",
        raw.close_reason()
    );
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

async fn metrics(relay: &TestRelay) -> String {
    let (status, body) = relay.get("/metrics").await;
    assert!(status.contains("200"), "{status}");
    String::from_utf8(body).unwrap()
}

/// Polls /metrics until `ok` holds (a few seconds at most); the last text.
async fn metrics_until(relay: &TestRelay, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        last = metrics(relay).await;
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/metrics never showed {what}:\n{last}");
}

/// The steady pair alone: two sessions, and the subscriptions they hold.
async fn only_steady_left(relay: &TestRelay, name: &str, subscriptions: u64) {
    let text = metrics_until(relay, "only the steady sessions", |m| {
        metric(m, "moq_relay_sessions_active") == 2
            && metric(m, "moq_relay_subscriptions_active") == subscriptions
    })
    .await;
    assert_eq!(metric(&text, "moq_relay_broadcasts_active"), 1, "{name}: {text}");
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

    /// The next message, or the stream's reset code / end as an error.
    async fn next<T>(
        &mut self,
        decode: impl Fn(&mut &[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, Option<u32>> {
        loop {
            if let Some((value, used)) = try_decode(&self.buf, &decode).expect("the relay's bytes decode") {
                self.buf.advance(used);
                return Ok(value);
            }
            let mut chunk = [0u8; 4096];
            match self.recv.read(&mut chunk).await {
                Ok(Some(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(None) => return Err(None),
                Err(err) => return Err(err.stream_error()),
            }
        }
    }
}

/// A varint-prefixed string of raw bytes (lengths unchecked: the point).
fn string(bytes: &[u8], buf: &mut Vec<u8>) {
    (bytes.len() as u64).encode(buf).unwrap();
    buf.extend_from_slice(bytes);
}

/// Stream type and a moq-lite-04 SUBSCRIBE spelled out by hand, so that its
/// path and track name may break the limits the encoder enforces.
fn subscribe_bytes(id: u64, path: &[u8], track: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    id.encode(&mut body).unwrap();
    string(path, &mut body);
    string(track, &mut body);
    body.extend_from_slice(&[
        0x00, // priority
        0x00, // ordered: no
        0x00, // max latency: none
        0x00, // start group: latest
        0x00, // end group: unbounded
    ]);
    let mut bytes = Vec::new();
    ControlStream::Subscribe.encode(V, &mut bytes).unwrap();
    (body.len() as u64).encode(&mut bytes).unwrap();
    bytes.extend_from_slice(&body);
    bytes
}

/// Stream type and a moq-lite-04 ANNOUNCE_INTEREST with a hand-made prefix.
fn announce_interest_bytes(prefix: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(prefix, &mut body);
    body.push(0x00); // exclude hop: none
    let mut bytes = Vec::new();
    ControlStream::Announce.encode(V, &mut bytes).unwrap();
    (body.len() as u64).encode(&mut bytes).unwrap();
    bytes.extend_from_slice(&body);
    bytes
}

#[test]
fn hand_made_messages_match_the_codec() {
    let mut coded = Vec::new();
    ControlStream::Subscribe.encode(V, &mut coded).unwrap();
    Subscribe {
        id: 300,
        broadcast: Path::new("room/cam"),
        track: "video".into(),
        ..Default::default()
    }
    .encode(V, &mut coded)
    .unwrap();
    assert_eq!(subscribe_bytes(300, b"room/cam", b"video"), coded);

    let mut coded = Vec::new();
    ControlStream::Announce.encode(V, &mut coded).unwrap();
    moq_lite::lite::AnnounceInterest {
        prefix: Path::new("room"),
        exclude_hop: None,
    }
    .encode(V, &mut coded)
    .unwrap();
    assert_eq!(announce_interest_bytes(b"room"), coded);
}

/// Opens a bidi stream and writes `bytes` (no FIN); the stream is returned
/// so that it stays open.
async fn send_bi(raw: &Wt, bytes: &[u8]) -> (wt::SendStream, RecvStream) {
    let (mut send, recv) = raw.open_bi().await.expect("opens");
    send.write_all(bytes).await.expect("writes");
    (send, recv)
}

/// What became of a SUBSCRIBE stream.
#[derive(Debug, PartialEq)]
enum Answer {
    /// SUBSCRIBE_OK.
    Ok,
    /// SUBSCRIBE_DROP.
    Drop,
    /// The relay reset the stream with this code (or finished it: `None`).
    Reset(Option<u32>),
}

async fn answer(recv: RecvStream) -> Answer {
    let mut msgs = Msgs::new(recv);
    let next = tokio::time::timeout(
        Duration::from_secs(3),
        msgs.next(|b| SubscribeResponse::decode(b, V)),
    )
    .await
    .expect("an answer to SUBSCRIBE");
    match next {
        Ok(SubscribeResponse::Ok(_) | SubscribeResponse::Start(_)) => Answer::Ok,
        Ok(SubscribeResponse::Drop(_) | SubscribeResponse::End(_)) => Answer::Drop,
        Err(code) => Answer::Reset(code),
    }
}

// ---------------------------------------------------------------------------
// The cases.

/// Two SUBSCRIBE streams of one moq-lite-04 session with the same subscribe
/// ID (which the draft says MUST NOT be reused), for two different tracks.
///
/// The relay refuses the second (see `duplicate_subscribe_id_is_refused`);
/// whatever it answers, the steady pair is untouched, nothing panics, and
/// when the hostile session leaves its subscriptions go with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_subscribe_ids_hurt_only_their_session() {
    watch_panics();
    let name = "duplicate subscribe id";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let mut steady = Steady::start(&relay).await;
        let mut other = steady.broadcast.create_track(Track::new("other"));
        let other_group = write_group(&mut other);
        let baseline = metric(&metrics(&relay).await, "moq_relay_subscriptions_active");

        let (raw, _client) = raw(&relay, "moq-lite-04").await;
        let (first_send, first) = send_bi(&raw, &subscribe_bytes(7, b"steady", b"t")).await;
        let first = answer(first).await;
        let (second_send, second) = send_bi(&raw, &subscribe_bytes(7, b"steady", b"other")).await;
        let second = answer(second).await;
        println!("{name}: first SUBSCRIBE {first:?}, second with the same id {second:?}");
        assert_eq!(first, Answer::Ok, "{name}: the first SUBSCRIBE is fine");

        // The group streams the relay opens for this session: which IDs, which groups.
        let mut labels = Vec::new();
        if second == Answer::Ok {
            write_group(&mut other);
            steady.check(name, 1).await;
            for _ in 0..3 {
                let Ok(Ok(recv)) = tokio::time::timeout(Duration::from_secs(2), raw.accept_uni()).await
                else {
                    break;
                };
                let mut msgs = Msgs::new(recv);
                let kind = msgs.next(|b| DataStream::decode(b, V)).await.unwrap();
                assert_eq!(kind, StreamType::Known(DataStream::Group));
                let header = msgs.next(|b| Group::decode(b, V)).await.unwrap();
                labels.push((header.subscribe, header.sequence));
            }
            println!("{name}: group streams to the hostile session (id, sequence): {labels:?}");
            println!("{name}: (other's first group is {other_group})");
            assert!(labels.iter().all(|(id, _)| *id == 7), "{labels:?}");
        }

        steady.check(name, 5).await;
        no_panics(name);
        // However it ended, the hostile session's subscriptions end with it.
        raw.close(0, b"bye");
        drop((first_send, second_send));
        only_steady_left(&relay, name, baseline).await;
        steady.check(name, 2).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// What the issue asks for: a reused subscribe ID gets an error, on the
/// stream (Duplicate, 12) or the session (a protocol error code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_subscribe_id_is_refused() {
    watch_panics();
    let name = "duplicate subscribe id refused";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let mut steady = Steady::start(&relay).await;
        let mut other = steady.broadcast.create_track(Track::new("other"));
        write_group(&mut other);

        let (raw, _client) = raw(&relay, "moq-lite-04").await;
        let (_s1, first) = send_bi(&raw, &subscribe_bytes(7, b"steady", b"t")).await;
        assert_eq!(answer(first).await, Answer::Ok);
        let (_s2, second) = send_bi(&raw, &subscribe_bytes(7, b"steady", b"other")).await;
        let second = answer(second).await;
        let refused = match second {
            Answer::Reset(Some(12)) => true,
            _ => tokio::time::timeout(Duration::from_secs(1), raw.closed())
                .await
                .is_ok_and(|err| close_code(&err).is_some_and(|c| PROTOCOL_CODES.contains(&c))),
        };
        assert!(refused, "{name}: the second SUBSCRIBE with id 7 got {second:?}");
        steady.check(name, 3).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// SETUP path (ALPN `moql`) with no version in common: the relay closes the
/// session with the version error (9), counts it as refused, and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_no_common_version_is_closed_with_code_9() {
    watch_panics();
    let name = "CLIENT_SETUP with no common version";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let mut steady = Steady::start(&relay).await;
        let before = metric(&metrics(&relay).await, "moq_relay_sessions_refused_total");
        let offers: [Vec<u32>; 3] = [
            vec![0xff0d_ad99],
            // ALPN-only versions are not offered on the SETUP path.
            vec![Version::Lite04.code(), Version::Lite03.code()],
            // Draft-13 and something unknown.
            vec![0xff00_000d, 0x1234_5678],
        ];
        for versions in &offers {
            let (raw, _client) = raw(&relay, "moql").await;
            let mut bytes = Vec::new();
            ClientSetup {
                versions: versions.clone(),
                parameters: Default::default(),
            }
            .encode(&mut bytes)
            .unwrap();
            let (_send, _recv) = send_bi(&raw, &bytes).await;
            let code = closed_by_relay(&format!("{name} {versions:x?}"), &raw).await;
            assert_eq!(
                code,
                Some(moq_lite::Error::Version.code()),
                "{name} {versions:x?}"
            );
            steady.check(name, 2).await;
        }
        let text = metrics_until(&relay, "the refusals", |m| {
            metric(m, "moq_relay_sessions_refused_total") == before + offers.len() as u64
        })
        .await;
        assert_eq!(metric(&text, "moq_relay_sessions_active"), 2, "{text}");
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// Connections on the SETUP path that never send CLIENT_SETUP: while they
/// idle, other clients (SETUP path included) keep being admitted and served,
/// and `sessions_active` does not count the idle ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_setup_connections_are_not_sessions() {
    watch_panics();
    let name = "no CLIENT_SETUP";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let mut steady = Steady::start(&relay).await;
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(raw(&relay, "moql").await);
        }
        steady.check(name, 2).await;
        let text = metrics(&relay).await;
        assert_eq!(metric(&text, "moq_relay_sessions_active"), 2, "{text}");

        // Newcomers get in and get served: one on the SETUP path, one with
        // the default protocols over WebTransport.
        let mut newcomers = Vec::new();
        for (alpn, scheme) in [("moql", "moql"), ("moq-lite-04", "https")] {
            let client = raw_client(&relay, alpn);
            let connected = client.connect(&relay.url(scheme, "/")).await.expect("admitted");
            let view = OriginProducer::new();
            let session = Session::connect(connected.session, None, Some(view.clone()))
                .await
                .expect("a session");
            let consumer = subscribe(&view, "steady", "t").await;
            newcomers.push((consumer, session, client));
        }
        let sequence = write_group(&mut steady.track);
        steady.last = sequence;
        read_group(&mut steady.consumer, Some(sequence)).await;
        for (consumer, ..) in &mut newcomers {
            // It may have started from the group before.
            while read_group(consumer, None).await < sequence {}
        }
        let text = metrics(&relay).await;
        assert_eq!(metric(&text, "moq_relay_sessions_active"), 4, "{text}");
        for (raw, _) in &idle {
            still_open(name, raw);
        }
        drop(newcomers);
        let text = metrics_until(&relay, "the newcomers gone", |m| {
            metric(m, "moq_relay_sessions_active") == 2
        })
        .await;
        assert_eq!(metric(&text, "moq_relay_sessions_refused_total"), 0, "{text}");
        steady.check(name, 2).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// A connection that never sends CLIENT_SETUP holds an admission slot (the
/// relay counts connections from their first packet) only until the relay's
/// 10 s setup timeout: with `max_sessions` 3, the steady pair and one silent
/// connection fill the relay and a fourth client is refused, until the
/// silent one is dropped. About 10 s long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_timeout_releases_the_slot() {
    watch_panics();
    let name = "setup timeout";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|config| config.max_sessions = 3).await;
        let mut steady = Steady::start(&relay).await;
        let (silent, _client) = raw(&relay, "moql").await;
        let since = Instant::now();

        let newcomer = raw_client(&relay, "moq-lite-04");
        let refused = newcomer.connect(&relay.url("moql", "/")).await;
        assert!(refused.is_err(), "{name}: a fourth connection was admitted");
        steady.check(name, 2).await;

        // Let go within the setup timeout (10 s) and a little.
        let err = tokio::time::timeout(Duration::from_secs(12), silent.closed())
            .await
            .unwrap_or_else(|_| panic!("{name}: the silent connection was never dropped"));
        let held = since.elapsed();
        println!(
            "{name}: the silent connection was dropped after {held:?}: {err} (code {:?})",
            close_code(&err)
        );
        assert!(
            held >= Duration::from_secs(9),
            "{name}: dropped early, after {held:?}"
        );
        let connected = newcomer
            .connect(&relay.url("moql", "/"))
            .await
            .expect("admitted once the slot is free");
        let view = OriginProducer::new();
        let _session = Session::connect(connected.session, None, Some(view.clone()))
            .await
            .expect("a session");
        let mut consumer = subscribe(&view, "steady", "t").await;
        let sequence = write_group(&mut steady.track);
        steady.last = sequence;
        read_group(&mut steady.consumer, Some(sequence)).await;
        while read_group(&mut consumer, None).await < sequence {}
        let text = metrics(&relay).await;
        assert_eq!(metric(&text, "moq_relay_sessions_active"), 3, "{text}");
        assert!(metric(&text, "moq_relay_sessions_refused_total") >= 2, "{text}");
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// What the relay closes a session that timed out in SETUP with: today the
/// connection is just dropped (QUIC's implicit close, code 0 = Cancel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_timeout_closes_with_the_timeout_code() {
    let relay = TestRelay::start(|_| {}).await;
    let (silent, _client) = raw(&relay, "moql").await;
    let err = tokio::time::timeout(Duration::from_secs(12), silent.closed())
        .await
        .expect("dropped within the setup timeout");
    assert_eq!(close_code(&err), Some(moq_lite::Error::Timeout.code()), "{err}");
    relay.stop().await;
}

/// Lengths beyond MAX_PATH_LEN / MAX_NAME_LEN (1024 bytes) in an
/// ANNOUNCE_INTEREST prefix and a SUBSCRIBE path and track name: the session
/// that sent them is closed with a protocol error; exactly at the limit is
/// fine (the session stays open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lengths_beyond_the_limits_close_the_session() {
    watch_panics();
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let mut steady = Steady::start(&relay).await;
        let baseline = metric(&metrics(&relay).await, "moq_relay_subscriptions_active");
        let over = moq_lite::model::MAX_PATH_LEN + 1;
        assert_eq!(moq_lite::lite::MAX_NAME_LEN + 1, over);
        let long = vec![b'x'; over];
        let huge = vec![b'y'; 100_000];
        let cases: [(&str, Vec<u8>); 6] = [
            (
                "ANNOUNCE_INTEREST prefix of 1025 bytes",
                announce_interest_bytes(&long),
            ),
            (
                "ANNOUNCE_INTEREST prefix of 100 kB",
                announce_interest_bytes(&huge),
            ),
            ("SUBSCRIBE path of 1025 bytes", subscribe_bytes(1, &long, b"t")),
            ("SUBSCRIBE path of 100 kB", subscribe_bytes(1, &huge, b"t")),
            (
                "SUBSCRIBE track name of 1025 bytes",
                subscribe_bytes(1, b"steady", &long),
            ),
            (
                "SUBSCRIBE track name of 100 kB",
                subscribe_bytes(1, b"steady", &huge),
            ),
        ];
        for (name, bytes) in cases {
            let (raw, _client) = raw(&relay, "moq-lite-04").await;
            let _stream = send_bi(&raw, &bytes).await;
            let code = closed_by_relay(name, &raw).await;
            assert!(
                code.is_some_and(|c| PROTOCOL_CODES.contains(&c)),
                "{name}: closed with {code:?}"
            );
            steady.check(name, 2).await;
            no_panics(name);
        }

        // At the limits: a clean answer on the stream, the session lives.
        let name = "path and track name of 1024 bytes";
        let (raw, _client) = raw(&relay, "moq-lite-04").await;
        let at = vec![b'z'; over - 1];
        let (_s1, recv) = send_bi(&raw, &subscribe_bytes(1, &at, b"t")).await;
        let missing = answer(recv).await;
        let (_s2, recv) = send_bi(&raw, &subscribe_bytes(2, b"steady", &at)).await;
        let unknown_track = answer(recv).await;
        let (_s3, recv) = send_bi(&raw, &announce_interest_bytes(&at)).await;
        println!("{name}: unknown broadcast {missing:?}, unknown track {unknown_track:?}");
        assert_eq!(
            missing,
            Answer::Reset(Some(moq_lite::Error::NotFound.code())),
            "{name}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        still_open(name, &raw);
        drop(recv);
        steady.check(name, 2).await;
        raw.close(0, b"bye");
        only_steady_left(&relay, name, baseline).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .expect("timed out");
}

/// A publisher announcing more broadcasts than `--max-announced` (50): up
/// to the cap all are announced; one more and the relay refuses its
/// announce stream (Bounds), every broadcast of that session ends, and the
/// session itself (which also subscribes) and everyone else go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcement_flood_beyond_max_announced() {
    const MAX: usize = 50;
    watch_panics();
    let name = "announcement flood";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|config| config.max_announced = MAX).await;
        let mut steady = Steady::start(&relay).await;
        let flood = OriginProducer::new();
        let view = OriginProducer::new();
        let (session, _client) = relay
            .connect(&relay.url("moql", "/"), Some(&flood), Some(&view))
            .await;
        let announced = async |relay: &TestRelay| {
            let (_, body) = relay.get("/announced/flood").await;
            String::from_utf8(body).unwrap().lines().count()
        };
        let mut broadcasts = Vec::new();
        for i in 0..MAX {
            broadcasts.push(flood.create_broadcast(format!("flood/{i}")).unwrap());
        }
        let mut seen = 0;
        for _ in 0..50 {
            seen = announced(&relay).await;
            if seen == MAX {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, MAX, "{name}: up to the cap, everything is announced");
        let text = metrics(&relay).await;
        assert_eq!(
            metric(&text, "moq_relay_broadcasts_active"),
            MAX as u64 + 1,
            "{text}"
        );
        steady.check(name, 2).await;

        // One more (and a few after it).
        for i in MAX..MAX + 10 {
            broadcasts.push(flood.create_broadcast(format!("flood/{i}")).unwrap());
        }
        for _ in 0..50 {
            seen = announced(&relay).await;
            if seen == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, 0, "{name}: the flooding session's broadcasts end");
        // The publisher is told why: its Announce stream was refused.
        let (_, err) = tokio::time::timeout(Duration::from_secs(5), session.refused())
            .await
            .unwrap_or_else(|_| panic!("{name}: the refusal was not reported"));
        assert_eq!(err, moq_lite::Error::Bounds, "{name}");
        // The steady subscriber sees them go too.
        let mut flood_left = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let mut view_of_steady = steady.view.consume();
            flood_left.clear();
            while let Some(a) = view_of_steady.try_announced() {
                if a.path.as_str().starts_with("flood/") {
                    match a.broadcast {
                        Some(_) => flood_left.insert(a.path.to_string()),
                        None => flood_left.remove(a.path.as_str()),
                    };
                }
            }
            if flood_left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            flood_left.is_empty(),
            "{name}: still announced downstream: {flood_left:?}"
        );
        let text = metrics(&relay).await;
        assert_eq!(metric(&text, "moq_relay_broadcasts_active"), 1, "{text}");
        assert_eq!(metric(&text, "moq_relay_sessions_active"), 3, "{text}");

        // The flooding session is still open and can still subscribe.
        assert!(
            tokio::time::timeout(Duration::ZERO, session.closed())
                .await
                .is_err(),
            "{name}: the flooding session was closed"
        );
        let mut consumer = subscribe(&view, "steady", "t").await;
        let sequence = write_group(&mut steady.track);
        steady.last = sequence;
        read_group(&mut steady.consumer, Some(sequence)).await;
        while read_group(&mut consumer, None).await < sequence {}
        steady.check(name, 3).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// SUBSCRIBE streams beyond `--quic-max-bidi-streams` (8): the extra ones
/// cannot even be opened (QUIC flow control holds them) until one of the
/// first eight ends; the relay serves the others throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_flood_beyond_the_bidi_stream_limit() {
    const STREAMS: u64 = 8;
    watch_panics();
    let name = "SUBSCRIBE flood";
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|config| config.quic_max_bidi_streams = STREAMS as u32).await;
        let mut steady = Steady::start(&relay).await;
        let baseline = metric(&metrics(&relay).await, "moq_relay_subscriptions_active");

        let (raw, _client) = raw(&relay, "moq-lite-04").await;
        let mut open = Vec::new();
        for id in 0..STREAMS {
            let (send, recv) = tokio::time::timeout(
                Duration::from_secs(2),
                send_bi(&raw, &subscribe_bytes(id, b"steady", b"t")),
            )
            .await
            .unwrap_or_else(|_| panic!("{name}: stream {id} within the limit did not open"));
            open.push((send, recv));
        }
        let mut sends = Vec::new();
        for (send, recv) in open {
            assert_eq!(answer(recv).await, Answer::Ok, "{name}");
            sends.push(send);
        }
        metrics_until(&relay, "the flood's subscriptions", |m| {
            metric(m, "moq_relay_subscriptions_active") == baseline + STREAMS
        })
        .await;

        // Twenty more wait for credit.
        let mut waiting = tokio::task::JoinSet::new();
        for id in STREAMS..STREAMS + 20 {
            let raw = raw.clone();
            waiting.spawn(async move {
                let mut stream = raw.open_bi().await.expect("opens");
                stream
                    .0
                    .write_all(&subscribe_bytes(id, b"steady", b"t"))
                    .await
                    .unwrap();
                stream
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        steady.check(name, 3).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), waiting.join_next())
                .await
                .is_err(),
            "{name}: a stream past the limit opened"
        );
        still_open(name, &raw);

        // Two subscriptions end (FIN): their credit goes to two waiting
        // streams. (quinn returns stream credit in batches of an eighth of the
        // limit, at least two: after one stream ends nothing may open yet.)
        for mut send in sends.drain(..2) {
            send.finish().unwrap();
        }
        for _ in 0..2 {
            let opened = tokio::time::timeout(Duration::from_secs(3), waiting.join_next())
                .await
                .unwrap_or_else(|_| panic!("{name}: no credit came back"))
                .expect("a task")
                .expect("opened");
            assert_eq!(answer(opened.1).await, Answer::Ok, "{name}");
            // Kept open: dropping it would finish it and free more credit.
            sends.push(opened.0);
        }
        steady.check(name, 3).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), waiting.join_next())
                .await
                .is_err(),
            "{name}: more streams opened than were closed"
        );
        let text = metrics(&relay).await;
        assert_eq!(
            metric(&text, "moq_relay_subscriptions_active"),
            baseline + STREAMS,
            "{text}"
        );

        raw.close(0, b"bye");
        waiting.shutdown().await;
        drop(sends);
        only_steady_left(&relay, name, baseline).await;
        steady.check(name, 2).await;
        shutdown(name, relay, steady).await;
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: timed out"));
}

/// The relay's shutdown (GOAWAY, then waiting for sessions to leave) must
/// not panic when the runtime it runs on goes away meanwhile (a process
/// exiting, a test ending, a supervisor dropping its runtime). Today
/// `Relay::run` waits for the GOAWAY tasks with `JoinSet::join_all`, which
/// panics ("task N was cancelled") when the runtime cancels one of them
/// before it cancels the run task; it also re-raises any panic of a GOAWAY
/// task. Racy, so tried a number of times.
#[test]
fn relay_shutdown_survives_runtime_teardown() {
    watch_panics();
    for i in 0..60 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(TEARDOWN)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let relay = TestRelay::start(|_| {}).await;
            // Sessions that ignore GOAWAY keep the drain waiting.
            let mut open = Vec::new();
            for _ in 0..4 {
                let origin = OriginProducer::new();
                open.push(relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await);
            }
            // Dropping the handle starts the shutdown; the runtime ends mid-drain.
            drop(relay);
            for _ in 0..i % 4 {
                tokio::task::yield_now().await;
            }
            std::mem::forget(open);
        });
        drop(runtime);
    }
    assert_eq!(
        TEARDOWN_PANICS.load(Ordering::SeqCst),
        0,
        "the relay panicked while its runtime shut down"
    );
}

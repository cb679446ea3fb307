//! Wire-level tests of the session layer, moq-lite-05 (and -06 where the
//! two differ).
//!
//! One side is our session; the other is a bare raw-QUIC connection (ALPN
//! `moq-lite-05`) whose bytes the test writes and reads itself, spelled out
//! from `shared/specs/draft-lcurley-moq-lite-05.md` and the shipped notes
//! (`lite-06-shipped-notes.md`, sections 4 to 13, whose byte examples these
//! reuse where they exist).

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/wire.rs"]
mod wire;

use std::time::Duration;

use bytes::Bytes;
use moq_lite::endpoint::{Client, Server};
use moq_lite::model::{OriginProducer, Path, Track};
use moq_lite::{Error, Session};
use url::Url;
use web_transport_quinn::{SendStream, Session as Wt};
use wire::{End, Wire};

const LIMIT: Duration = Duration::from_secs(10);

async fn limit<F: std::future::Future>(body: F) -> F::Output {
    tokio::time::timeout(LIMIT, body).await.expect("timed out")
}

/// The empty SETUP a client sends: stream type 0x1, length 1, no parameters.
const EMPTY_SETUP: &[u8] = &[0x01, 0x01, 0x00];

struct Harness {
    server: Server,
    client: Client,
    url: Url,
    alpn: &'static str,
}

impl Harness {
    fn new() -> Self {
        Self::speaking("moq-lite-05")
    }

    fn speaking(alpn: &'static str) -> Self {
        let server = loopback::server();
        let port = server.local_addr().unwrap().port();
        let client = loopback::client_offering(&server, &[alpn]);
        Harness {
            server,
            client,
            url: Url::parse(&format!("moql://127.0.0.1:{port}/")).unwrap(),
            alpn,
        }
    }

    /// Our server session (publishing `publish`, subscribing into
    /// `subscribe`) and the raw client, which has sent `setup` on its Setup
    /// stream: the server starts only once it has.
    async fn raw(
        &self,
        publish: Option<&OriginProducer>,
        subscribe: Option<&OriginProducer>,
        setup: &[u8],
    ) -> (Session, Wt) {
        let accept = async {
            let incoming = self.server.accept().await.expect("incoming");
            let accepted = incoming.accept().await.expect("handshake");
            Session::accept(accepted.session, publish.map(|o| o.consume()), subscribe.cloned())
                .await
                .expect("server session")
        };
        let connect = async {
            let connected = self.client.connect(&self.url).await.expect("connects");
            assert_eq!(connected.protocol.as_deref(), Some(self.alpn));
            let mut send = connected.session.open_uni().await.unwrap();
            send.write_all(setup).await.unwrap();
            send.finish().unwrap();
            // Driven by hand, on quinn's own stream types.
            connected.session.into_inner()
        };
        let (server, raw) = tokio::join!(accept, connect);
        assert_eq!(server.version().alpn(), self.alpn);
        (server, raw)
    }
}

async fn open(raw: &Wt, bytes: &[u8]) -> (SendStream, Wire) {
    let (mut send, recv) = raw.open_bi().await.expect("opens a stream");
    send.write_all(bytes).await.expect("writes");
    (send, Wire::new(recv))
}

#[tokio::test]
async fn the_server_waits_for_the_clients_setup_and_sends_its_own() {
    limit(async {
        let h = Harness::new();
        // The client's SETUP carries a Path, a Role and an unknown parameter.
        #[rustfmt::skip]
        let setup = [
            0x01,                   // Setup stream
            0x0c,                   // length 12
            0x03,                   // three parameters
            0x02, 0x04, b'/', b'a', b'b', b'c', // Path "/abc"
            0x03, 0x01, 0x02,       // Role: subscriber
            0x3f, 0x00,             // unknown ID 0x3f, empty
        ];
        let (_server, raw) = h.raw(None, None, &setup).await;
        // Ours: Probe level 1 (we answer PROBE), no Path or Role (a
        // server's), no Hop (none configured), then FIN.
        let recv = raw.accept_uni().await.unwrap();
        let mut wire = Wire::new(recv);
        let (bytes, end) = wire.rest().await;
        assert_eq!(&bytes[..], [0x01, 0x04, 0x01, 0x01, 0x01, 0x01]);
        assert_eq!(end, End::Fin);
    })
    .await
}

#[tokio::test]
async fn a_server_without_the_clients_setup_does_not_start() {
    limit(async {
        let h = Harness::new();
        let accept = async {
            let incoming = h.server.accept().await.expect("incoming");
            let accepted = incoming.accept().await.expect("handshake");
            Session::accept(accepted.session, None, None).await
        };
        let connect = async {
            let connected = h.client.connect(&h.url).await.expect("connects");
            // A second Setup stream is a protocol violation; the first
            // starts the session, the second ends it.
            for _ in 0..2 {
                let mut send = connected.session.open_uni().await.unwrap();
                send.write_all(EMPTY_SETUP).await.unwrap();
                send.finish().unwrap();
            }
            connected.session
        };
        let (server, raw) = tokio::join!(accept, connect);
        let server = server.expect("the first SETUP starts the session");
        assert_eq!(server.closed().await, Error::ProtocolViolation);
        drop(raw);
    })
    .await
}

#[tokio::test]
async fn announce_ok_counts_the_initial_set_and_hops_leave_the_responder_out() {
    limit(async {
        let h = Harness::new();
        let origin = OriginProducer::new();
        let _a = origin.create_broadcast("a").unwrap();
        let (_server, raw) = h.raw(Some(&origin), None, EMPTY_SETUP).await;
        // Announce stream, ANNOUNCE_REQUEST prefix "" exclude hop 0.
        let (_send, mut wire) = open(&raw, &[0x01, 0x02, 0x00, 0x00]).await;
        // ANNOUNCE_OK: hop 0 (none configured), one active; then `a`, no hops.
        assert_eq!(&wire.take(3).await[..], [0x02, 0x00, 0x01]);
        assert_eq!(&wire.take(5).await[..], [0x04, 0x01, 0x01, b'a', 0x00]);
        // A live change: `b` arrives, `a` ends (status 0, no hops).
        let b = origin.create_broadcast("b").unwrap();
        assert_eq!(&wire.take(5).await[..], [0x04, 0x01, 0x01, b'b', 0x00]);
        drop(_a);
        assert_eq!(&wire.take(5).await[..], [0x04, 0x00, 0x01, b'a', 0x00]);
        drop(b);
    })
    .await
}

#[tokio::test]
async fn subscribe_gets_start_timestamped_frames_then_end() {
    limit(async {
        let h = Harness::new();
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        let (_server, raw) = h.raw(Some(&origin), None, EMPTY_SETUP).await;
        // The server's Setup stream comes first.
        let setup = raw.accept_uni().await.unwrap();
        assert_eq!(Wire::new(setup).rest().await.1, End::Fin);
        // Shipped notes, section 13: SUBSCRIBE id 0, room/video, priority
        // 0x80, Ordered 0, max age 0, Group Start 0 (latest), no end.
        #[rustfmt::skip]
        let subscribe = [
            0x02, 0x11, 0x00, 0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o',
            0x80, 0x00, 0x00, 0x00, 0x00,
        ];
        let (_send, mut reply) = open(&raw, &subscribe).await;
        let mut group = track.create_group(7).unwrap();
        group.write_frame_at(Bytes::from_static(b"abc"), 1000).unwrap();
        group.write_frame_at(Bytes::from_static(b"x"), 1033).unwrap();
        group.finish().unwrap();
        assert_eq!(&reply.take(3).await[..], [0x00, 0x01, 0x07], "SUBSCRIBE_START 7");

        let recv = raw.accept_uni().await.unwrap();
        let (bytes, end) = Wire::new(recv).rest().await;
        #[rustfmt::skip]
        let expected = [
            0x00,                                   // Group stream
            0x02, 0x00, 0x07,                       // GROUP sub 0, sequence 7
            0x47, 0xd0, 0x03, b'a', b'b', b'c',     // +1000, 3 bytes
            0x40, 0x42, 0x01, b'x',                 // +33, 1 byte
        ];
        assert_eq!(&bytes[..], expected);
        assert_eq!(end, End::Fin);

        // The track ends: SUBSCRIBE_END names the first group that will
        // never come (exclusive), then FIN.
        drop(track);
        drop(broadcast);
        assert_eq!(&reply.take(3).await[..], [0x01, 0x01, 0x08], "SUBSCRIBE_END 8");
        assert_eq!(reply.end().await, End::Fin);
    })
    .await
}

#[tokio::test]
async fn track_info_states_microseconds_and_unknown_tracks_are_not_found() {
    limit(async {
        let h = Harness::new();
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("room").unwrap();
        let track = broadcast.create_track(Track::new("video").with_priority(2));
        let (_server, raw) = h.raw(Some(&origin), None, EMPTY_SETUP).await;
        // Shipped notes, section 13: TRACK room/video.
        let request = [
            0x06, 0x0b, 0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o',
        ];
        let (mut send, mut wire) = open(&raw, &request).await;
        // Priority 2, Ordered 0, max age 5000 ms, timescale 1_000_000; FIN.
        let (bytes, end) = wire.rest().await;
        assert_eq!(&bytes[..], [0x08, 0x02, 0x00, 0x53, 0x88, 0x80, 0x0f, 0x42, 0x40]);
        assert_eq!(end, End::Fin);
        send.finish().unwrap();
        // Asking is not subscribing.
        assert_eq!(track.consumer_count(), 0);

        let request = [
            0x06, 0x0b, 0x04, b'r', b'o', b'o', b'm', 0x05, b'a', b'u', b'd', b'i', b'o',
        ];
        let (_send, mut wire) = open(&raw, &request).await;
        // moq-net 0.3's stream registry: 0x33 not found.
        assert_eq!(wire.end().await, End::Reset(0x33));
    })
    .await
}

#[tokio::test]
async fn the_subscriber_asks_track_info_then_takes_datagrams_at_the_tracks_timescale() {
    limit(async {
        let h = Harness::new();
        let received = OriginProducer::new();
        let (_server, raw) = h.raw(None, Some(&received), EMPTY_SETUP).await;
        // Our server subscribes to the raw client's announcements.
        let (mut announce_tx, announce_rx) = raw.accept_bi().await.unwrap();
        let mut announce = Wire::new(announce_rx);
        // Announce stream type, ANNOUNCE_REQUEST prefix "", exclude hop 0.
        assert_eq!(&announce.take(4).await[..], [0x01, 0x02, 0x00, 0x00]);
        // ANNOUNCE_OK hop 5, one active: `a` with no hops of its own.
        announce_tx
            .write_all(&[0x02, 0x05, 0x01, 0x04, 0x01, 0x01, b'a', 0x00])
            .await
            .unwrap();

        let broadcast = loop {
            let next = received.consume().announced().await.unwrap();
            if let Some(b) = next.broadcast.filter(|_| next.path == Path::new("a")) {
                break b;
            }
        };
        // The responder's hop from ANNOUNCE_OK ends the hop list.
        assert_eq!(broadcast.hops(), vec![5]);
        let mut consumer = broadcast.subscribe_track(&Track::new("t")).unwrap();

        // First a Track stream: TRACK a/t, answered with timescale 1000.
        let (mut track_tx, track_rx) = raw.accept_bi().await.unwrap();
        let mut track_wire = Wire::new(track_rx);
        assert_eq!(
            &track_wire.take(6).await[..],
            [0x06, 0x04, 0x01, b'a', 0x01, b't']
        );
        track_tx
            .write_all(&[0x06, 0x7f, 0x00, 0x53, 0x88, 0x43, 0xe8])
            .await
            .unwrap();
        track_tx.finish().unwrap();

        // Then SUBSCRIBE (id 0, a/t).
        let (mut sub_tx, sub_rx) = raw.accept_bi().await.unwrap();
        let mut sub_wire = Wire::new(sub_rx);
        // Length 13: the 600 s default max latency takes four bytes.
        assert_eq!(&sub_wire.take(3).await[..], [0x02, 0x0d, 0x00]);
        sub_tx.write_all(&[0x00, 0x01, 0x07]).await.unwrap();
        // Shipped notes, section 13: datagram sub 0, group 7, timestamp
        // 1000 (one second at timescale 1000), payload `hi`.
        raw.send_datagram(Bytes::from_static(&[0x00, 0x07, 0x43, 0xe8, b'h', b'i']))
            .unwrap();
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.sequence(), 7);
        let mut frame = group.next_frame().await.unwrap().unwrap();
        assert_eq!(frame.timestamp(), Some(1_000_000), "microseconds");
        assert_eq!(frame.read_all().await.unwrap(), Bytes::from_static(b"hi"));
        assert!(
            group.next_frame().await.unwrap().is_none(),
            "one frame per datagram"
        );

        // A FIN without SUBSCRIBE_END: the track errors, the session lives.
        sub_tx.finish().unwrap();
        assert_eq!(consumer.closed().await, Err(Error::ProtocolViolation));
    })
    .await
}

#[tokio::test]
async fn lite06_frame_bounds_and_typed_announcements() {
    limit(async {
        let h = Harness::speaking("moq-lite-06");
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("room").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        for sequence in 0..=7 {
            let mut group = track.create_group(sequence).unwrap();
            for frame in [&b"f0"[..], b"f1", b"f2"] {
                group.write_frame_at(Bytes::from_static(frame), 0).unwrap();
            }
            group.finish().unwrap();
        }
        let (_server, raw) = h.raw(Some(&origin), None, EMPTY_SETUP).await;
        let setup = raw.accept_uni().await.unwrap();
        assert_eq!(Wire::new(setup).rest().await.1, End::Fin);

        // ANNOUNCE_REQUEST prefix "" (no Exclude Hop in 06): ANNOUNCE_OK, then
        // ANNOUNCE_START `room` (implicit ID 0), no hops, costs 0 / 0.
        let (_a, mut announce) = open(&raw, &[0x01, 0x01, 0x00]).await;
        assert_eq!(&announce.take(3).await[..], [0x02, 0x00, 0x01]);
        assert_eq!(
            &announce.take(10).await[..],
            [0x00, 0x08, 0x04, b'r', b'o', b'o', b'm', 0x00, 0x00, 0x00]
        );

        // SUBSCRIBE id 0, room/video, priority 0x80, max age 0, Group Start 7
        // (a raw floor), Group End 7 (+1: 8), Frame Start 1, Frame End 1 (+1: 2).
        #[rustfmt::skip]
        let subscribe = [
            0x02, 0x12, 0x00, 0x04, b'r', b'o', b'o', b'm', 0x05, b'v', b'i', b'd', b'e', b'o',
            0x80, 0x00, 0x07, 0x08, 0x01, 0x02,
        ];
        let (_send, mut reply) = open(&raw, &subscribe).await;
        assert_eq!(&reply.take(3).await[..], [0x00, 0x01, 0x07], "SUBSCRIBE_START 7");
        let recv = raw.accept_uni().await.unwrap();
        let (bytes, end) = Wire::new(recv).rest().await;
        // GROUP sub 0, sequence 7, Frame Start 1; then frame 1 only (delta 0).
        assert_eq!(&bytes[..], [0x00, 0x03, 0x00, 0x07, 0x01, 0x00, 0x02, b'f', b'1']);
        assert_eq!(end, End::Fin);
        // The range is done: SUBSCRIBE_END 8, then FIN.
        assert_eq!(&reply.take(3).await[..], [0x01, 0x01, 0x08]);
        assert_eq!(reply.end().await, End::Fin);
    })
    .await
}

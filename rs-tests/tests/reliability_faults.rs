//! Faults around the relay: a subscriber that stops reading, a publisher
//! killed mid-group, and a lossy, reordering network between client and relay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moq_lite::Session;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls};
use moq_lite::lite::{ControlStream, Message, Subscribe, Version};
use moq_lite::model::{OriginProducer, Path, Track, TrackConsumer, TrackProducer};
use rs_tests::{TestRelay, subscribe};
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(30);

fn payload(group: u64, frame: u64, size: usize) -> Bytes {
    let mut data = format!("g{group}f{frame}:").into_bytes();
    data.resize(size, (group * 7 + frame) as u8);
    Bytes::from(data)
}

fn write_group(track: &mut TrackProducer, frames: u64, size: usize) -> u64 {
    let mut group = track.append_group().unwrap();
    let sequence = group.sequence();
    for frame in 0..frames {
        group.write_frame(payload(sequence, frame, size)).unwrap();
    }
    group.finish().unwrap();
    sequence
}

/// Reads groups until `sequence` arrives whole; returns how many groups were read.
async fn read_until(consumer: &mut TrackConsumer, sequence: u64, frames: u64, size: usize) {
    loop {
        let mut group = consumer.next_group().await.unwrap().expect("track open");
        let got = group.sequence();
        for frame in 0..frames {
            let data = group.read_frame().await.unwrap().expect("frame");
            assert_eq!(data, payload(got, frame, size), "group {got} frame {frame}");
        }
        assert_eq!(group.read_frame().await.unwrap(), None);
        if got >= sequence {
            assert_eq!(got, sequence, "a group arrived before it was written");
            return;
        }
    }
}

fn client_for(fingerprint: &str, protocols: Option<Vec<String>>) -> Client {
    let mut config = ClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ClientTls {
            fingerprints: vec![fingerprint.to_string()],
            system_roots: false,
            ..Default::default()
        },
        ..Default::default()
    };
    if let Some(protocols) = protocols {
        config.protocols = protocols;
    }
    Client::new(config).unwrap()
}

/// A UDP proxy for one client: forwards both ways, dropping and reordering
/// a deterministic pseudo-random share of the packets, or (when `blackhole`
/// is set) everything, like a peer that vanished.
struct Proxy {
    addr: SocketAddr,
    blackhole: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// xorshift64: deterministic, so a failure replays the same way.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl Proxy {
    /// `loss` and `reorder` in percent.
    async fn start(target: SocketAddr, loss: u64, reorder: u64, seed: u64) -> Proxy {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(target).await.unwrap();
        let addr = front.local_addr().unwrap();
        let blackhole = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let (hole, drops, fwd) = (blackhole.clone(), dropped.clone(), forwarded.clone());
        let task = tokio::spawn(async move {
            let mut rng = seed | 1;
            let mut client: Option<SocketAddr> = None;
            // One held-back packet per direction, sent after the next one.
            let mut held_up: Option<Vec<u8>> = None;
            let mut held_down: Option<Vec<u8>> = None;
            let mut a = vec![0u8; 65536];
            let mut b = vec![0u8; 65536];
            loop {
                let (up, data) = tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        (true, a[..n].to_vec())
                    }
                    r = back.recv(&mut b) => {
                        let Ok(n) = r else { continue };
                        (false, b[..n].to_vec())
                    }
                };
                if hole.load(Ordering::Relaxed) || next(&mut rng) % 100 < loss {
                    drops.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let held = if up { &mut held_up } else { &mut held_down };
                let mut out = Vec::with_capacity(2);
                if held.is_none() && next(&mut rng) % 100 < reorder {
                    *held = Some(data);
                    continue;
                }
                out.push(data);
                out.extend(held.take());
                for packet in out {
                    fwd.fetch_add(1, Ordering::Relaxed);
                    if up {
                        let _ = back.send(&packet).await;
                    } else if let Some(client) = client {
                        let _ = front.send_to(&packet, client).await;
                    }
                }
            }
        });
        Proxy {
            addr,
            blackhole,
            dropped,
            forwarded,
            task,
        }
    }

    fn url(&self, scheme: &str) -> url::Url {
        format!("{scheme}://127.0.0.1:{}/", self.addr.port())
            .parse()
            .unwrap()
    }
}

/// Connects a session to `url` (a proxy's, say) trusting `fingerprint`.
async fn connect_to(
    fingerprint: &str,
    url: &url::Url,
    publish: Option<&OriginProducer>,
    subscribe: Option<&OriginProducer>,
) -> (Session, Client) {
    let client = client_for(fingerprint, None);
    let connected = client.connect(url).await.expect("connects");
    let session = Session::connect(
        connected.session,
        publish.map(|o| o.consume()),
        subscribe.cloned(),
    )
    .await
    .expect("session");
    (session, client)
}

/// A subscriber that subscribes, then never reads a group stream, while a
/// fast subscriber and the publisher carry on: the fast one gets every group
/// in lockstep with the publisher (its lag never grows), and the relay's
/// cache for the track stays within its byte bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_costs_only_the_cache() {
    const FRAMES: u64 = 4;
    const SIZE: usize = 4096;
    const GROUPS: u64 = 80;
    const CACHE: u64 = 64 * 1024; // four groups' worth
    tokio::time::timeout(LIMIT, async {
        // A relay of our own, to look at its origin's cache directly.
        let relay = moq_relay::Relay::bind(moq_relay::Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            http_bind: String::new(),
            cache_max_bytes: CACHE,
            cache_group_bytes: CACHE,
            ..Default::default()
        })
        .await
        .unwrap();
        let url: url::Url = format!("moql://127.0.0.1:{}/", relay.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let fingerprint = relay.fingerprints()[0].clone();
        let relay_origin = relay.origin().clone();
        let _running = AbortOnDrop(tokio::spawn(relay.run(std::future::pending())));

        let publisher = OriginProducer::new();
        let (_ps, _pc) = connect_to(&fingerprint, &url, Some(&publisher), None).await;
        let broadcast = publisher.create_broadcast("slow/cam").unwrap();
        let mut track = broadcast.create_track(Track::new("video"));
        write_group(&mut track, FRAMES, SIZE);

        let fast_origin = OriginProducer::new();
        let (_fs, _fc) = connect_to(&fingerprint, &url, None, Some(&fast_origin)).await;
        let mut fast = subscribe(&fast_origin, "slow/cam", "video").await;
        read_until(&mut fast, 0, FRAMES, SIZE).await;

        // The stuck subscriber: raw moq-lite-04, SUBSCRIBE, then nothing.
        let stuck_client = client_for(&fingerprint, Some(vec!["moq-lite-04".into()]));
        let stuck = stuck_client.connect(&url).await.unwrap().session;
        let (mut send, _recv) = stuck.open_bi().await.unwrap();
        let mut bytes = Vec::new();
        ControlStream::Subscribe
            .encode(Version::Lite04, &mut bytes)
            .unwrap();
        Subscribe {
            id: 1,
            broadcast: Path::new("slow/cam"),
            track: "video".into(),
            ..Default::default()
        }
        .encode(Version::Lite04, &mut bytes)
        .unwrap();
        send.write_all(&bytes).await.unwrap();

        // The relay's own copy of the track (the same one every session reads).
        let relay_track = relay_origin
            .consume()
            .consume_broadcast("slow/cam")
            .expect("the relay holds the broadcast")
            .subscribe_track(&Track::new("video"))
            .unwrap();

        // Lockstep: each group reaches the fast subscriber before the next
        // is written, however far behind the stuck one falls.
        let mut most_held = 0;
        for _ in 1..GROUPS {
            let sequence = write_group(&mut track, FRAMES, SIZE);
            tokio::time::timeout(
                Duration::from_secs(5),
                read_until(&mut fast, sequence, FRAMES, SIZE),
            )
            .await
            .unwrap_or_else(|_| panic!("group {sequence} did not reach the fast subscriber"));
            let held = (0..=sequence).filter(|&s| relay_track.group(s).is_some()).count();
            most_held = most_held.max(held);
        }
        assert_eq!(fast.skipped(), 0, "the fast subscriber missed groups");
        // At most the byte bound's worth of groups, plus the latest.
        let bound = (CACHE / (FRAMES * SIZE as u64)) as usize + 1;
        println!("the relay held at most {most_held} groups of the track (bound {bound})");
        assert!(
            most_held <= bound,
            "the relay held {most_held} groups, bound {bound}"
        );
        assert!(relay_track.group(1).is_none(), "group 1 is still cached");
        // The stuck session is still connected: it was not punished either.
        assert!(stuck.close_reason().is_none());
        drop(send);
    })
    .await
    .expect("timed out");
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The publisher vanishes mid-group (its packets stop, as when its process
/// is killed): subscribers see the open group aborted and the broadcast end;
/// a new publisher on the same path then reaches the same subscriber
/// sessions, which subscribe again after the new announcement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_killed_mid_group_then_replaced() {
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|config| {
            config.quic_idle_timeout = Duration::from_millis(1000);
            config.quic_keep_alive = Duration::from_millis(250);
        })
        .await;
        let proxy = Proxy::start(relay.addr, 0, 0, 1).await;
        let first = OriginProducer::new();
        let (_s1, _c1) = connect_to(&relay.fingerprint, &proxy.url("moql"), Some(&first), None).await;
        let broadcast = first.create_broadcast("live/show").unwrap();
        let mut track = broadcast.create_track(Track::new("audio"));
        write_group(&mut track, 2, 100);

        let mut viewers = Vec::new();
        for scheme in ["moql", "https"] {
            let origin = OriginProducer::new();
            let (session, client) = relay.connect(&relay.url(scheme, "/"), None, Some(&origin)).await;
            let consumer = subscribe(&origin, "live/show", "audio").await;
            viewers.push((consumer, origin, session, client));
        }
        let mut open_groups = Vec::new();
        let mut half = track.append_group().unwrap();
        half.write_frame(payload(1, 0, 100)).unwrap();
        for (consumer, origin, ..) in &mut viewers {
            // It started at group 0 or 1, depending on when its subscription landed.
            let group = loop {
                let group = consumer.next_group().await.unwrap().unwrap();
                if group.sequence() == 1 {
                    break group;
                }
            };
            let mut announced = origin.consume();
            assert!(announced.announced().await.unwrap().broadcast.is_some());
            open_groups.push((group, announced));
        }

        // Killed: not a byte more, no CONNECTION_CLOSE.
        proxy.blackhole.store(true, Ordering::Relaxed);
        for ((group, announced), (consumer, ..)) in open_groups.iter_mut().zip(&mut viewers) {
            // Whatever of it arrived, the open group ends in an error, not a clean end.
            let end = loop {
                match group.read_frame().await {
                    Ok(Some(frame)) => assert_eq!(frame, payload(1, 0, 100)),
                    other => break other,
                }
            };
            assert!(end.is_err(), "the open group is aborted, not finished: {end:?}");
            let ended = announced.announced().await.unwrap();
            assert_eq!(ended.path.as_str(), "live/show");
            assert!(ended.broadcast.is_none(), "the broadcast ends");
            // Groups may arrive out of order, so an older one can still be
            // queued; nothing newer than the open group may follow.
            while let Ok(Some(group)) = consumer.next_group().await {
                assert!(
                    group.sequence() < 1,
                    "no group after the end: {}",
                    group.sequence()
                );
            }
        }
        drop(half);

        // A new publisher takes over the path; the same sessions get its groups.
        let second = OriginProducer::new();
        let (_s2, _c2) = relay.connect(&relay.url("moql", "/"), Some(&second), None).await;
        let replacement = second.create_broadcast("live/show").unwrap();
        let mut track = replacement.create_track(Track::new("audio"));
        write_group(&mut track, 3, 200);
        for ((_, announced), (consumer, origin, session, _)) in open_groups.iter_mut().zip(&mut viewers) {
            let back = announced.announced().await.unwrap();
            assert_eq!(back.path.as_str(), "live/show");
            assert!(back.broadcast.is_some());
            *consumer = subscribe(origin, "live/show", "audio").await;
            read_until(consumer, 0, 3, 200).await;
            assert!(session.stats().snapshot().subscriptions <= 2);
        }
        for _ in 0..5 {
            let sequence = write_group(&mut track, 3, 200);
            for (consumer, ..) in &mut viewers {
                read_until(consumer, sequence, 3, 200).await;
            }
        }
    })
    .await
    .expect("timed out");
}

/// 5% loss and some reordering between a subscriber and the relay: every
/// group arrives intact (QUIC retransmits; nothing is skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss_and_reordering_lose_no_group() {
    const GROUPS: u64 = 40;
    tokio::time::timeout(LIMIT, async {
        let relay = TestRelay::start(|_| {}).await;
        let publisher = OriginProducer::new();
        let (_ps, _pc) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("lossy").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        write_group(&mut track, 3, 3000);

        for (scheme, seed) in [("moql", 0x5eed), ("https", 0xbeef)] {
            let proxy = Proxy::start(relay.addr, 5, 5, seed).await;
            let origin = OriginProducer::new();
            let (_s, _c) = connect_to(&relay.fingerprint, &proxy.url(scheme), None, Some(&origin)).await;
            let mut consumer = subscribe(&origin, "lossy", "t").await;
            let first = consumer.next_group().await.unwrap().unwrap().sequence();
            let mut seen = std::collections::BTreeSet::new();
            let writer = async {
                for _ in 0..GROUPS {
                    write_group(&mut track, 3, 3000);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            let last = first + GROUPS;
            let reader = async {
                while seen.len() < GROUPS as usize {
                    let mut group = consumer.next_group().await.unwrap().expect("open");
                    let sequence = group.sequence();
                    for frame in 0..3 {
                        let data = group.read_frame().await.unwrap().expect("frame");
                        assert_eq!(data, payload(sequence, frame, 3000));
                    }
                    assert_eq!(group.read_frame().await.unwrap(), None);
                    seen.insert(sequence);
                }
            };
            tokio::join!(writer, reader);
            assert_eq!(seen, (first + 1..=last).collect(), "{scheme}");
            assert_eq!(consumer.skipped(), 0);
            let dropped = proxy.dropped.load(Ordering::Relaxed);
            let forwarded = proxy.forwarded.load(Ordering::Relaxed);
            println!(
                "{scheme}: proxy dropped {dropped} of {} packets",
                dropped + forwarded
            );
            assert!(dropped > 0, "the proxy dropped nothing");
        }
    })
    .await
    .expect("timed out");
}

/// A publisher's subscription holds its track until the relay has
/// acknowledged every group stream, not merely until the last byte was
/// queued: so an application that leaves once its finished track has no
/// consumer (the CLI publisher does) never leaves with data in flight. The
/// link to the relay is cut while the publisher writes and finishes: the
/// track stays in use until the link is back and everything has arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_track_stays_in_use_until_the_relay_has_every_group() {
    for protocol in ["moq-lite-04", "moqt-16", "moqt-17", "moq-00"] {
        tokio::time::timeout(LIMIT, async {
            let relay = TestRelay::start(|_| {}).await;
            let proxy = Proxy::start(relay.addr, 0, 0, 7).await;
            let client = client_for(&relay.fingerprint, Some(vec![protocol.to_string()]));
            let connected = client.connect(&proxy.url("moqt")).await.expect("connects");
            let origin = OriginProducer::new();
            let publisher = moq_transport_compat::connect(
                connected.session,
                moq_lite::SessionConfig {
                    publish: Some(origin.consume()),
                    ..Default::default()
                },
            )
            .await
            .expect("session");
            let broadcast = origin.create_broadcast("bye/now").unwrap();
            let mut track = broadcast.create_track(Track::new("t"));

            let viewer = OriginProducer::new();
            let (_session, _client) = relay.connect(&relay.url("moql", "/"), None, Some(&viewer)).await;
            let mut consumer = subscribe(&viewer, "bye/now", "t").await;
            while track.consumer_count() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }

            proxy.blackhole.store(true, Ordering::Relaxed);
            for _ in 0..3 {
                write_group(&mut track, 5, 100);
            }
            let watch = track.clone();
            track.finish().unwrap();
            // Everything is handed to QUIC (small enough for any window)...
            while publisher.stats().snapshot().frames_out < 15 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // ...but none of it can be acknowledged: the subscription holds on.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                watch.consumer_count() > 0,
                "{protocol}: released with data unacknowledged"
            );

            proxy.blackhole.store(false, Ordering::Relaxed);
            while watch.consumer_count() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut seen = Vec::new();
            while seen.len() < 3 {
                let mut group = consumer.next_group().await.unwrap().expect("open");
                let g = group.sequence();
                for f in 0..5 {
                    assert_eq!(group.read_frame().await.unwrap(), Some(payload(g, f, 100)));
                }
                seen.push(g);
            }
            seen.sort();
            assert_eq!(seen, [0, 1, 2], "{protocol}");
        })
        .await
        .unwrap_or_else(|_| panic!("{protocol}: timed out"));
    }
}

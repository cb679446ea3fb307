//! Churn: many sessions connecting, subscribing, publishing and leaving in a
//! loop. Afterwards the relay holds no session, no broadcast and no
//! subscription, and still serves a fresh client.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moq_lite::Session;
use moq_lite::model::{OriginProducer, Track};
use rs_tests::{TestRelay, subscribe};

const LIMIT: Duration = Duration::from_secs(60);
/// Sessions to run at most, and for how long (whichever ends first).
const SESSIONS: usize = 400;
const BUDGET: Duration = Duration::from_secs(6);
const WORKERS: usize = 8;

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_nothing_behind() {
    tokio::time::timeout(LIMIT, async {
        let relay = std::sync::Arc::new(TestRelay::start(|_| {}).await);
        let publisher = OriginProducer::new();
        let (pub_session, pub_client) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("steady").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let mut group = track.append_group().unwrap();
        group.write_frame(Bytes::from_static(b"hello")).unwrap();
        group.finish().unwrap();

        let started = Instant::now();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let relay = relay.clone();
            let done = done.clone();
            workers.spawn(async move {
                // One client endpoint per worker, many connections on it.
                let client = relay.client();
                let mut i = 0;
                while started.elapsed() < BUDGET && done.load(std::sync::atomic::Ordering::Relaxed) < SESSIONS
                {
                    let scheme = if i % 2 == 0 { "moql" } else { "https" };
                    let origin = OriginProducer::new();
                    let own = OriginProducer::new();
                    let connected = client.connect(&relay.url(scheme, "/")).await.expect("connects");
                    let session =
                        Session::connect(connected.session, Some(own.consume()), Some(origin.clone()))
                            .await
                            .expect("session");
                    // Every third session also publishes for a moment.
                    let _mine =
                        (i % 3 == 0).then(|| own.create_broadcast(format!("churn/{worker}/{i}")).unwrap());
                    let mut consumer = subscribe(&origin, "steady", "t").await;
                    let mut group = consumer.next_group().await.unwrap().unwrap();
                    assert_eq!(group.read_frame().await.unwrap().unwrap(), "hello");
                    // Leave abruptly half the time, politely otherwise.
                    if i % 2 == 0 {
                        session.close(moq_lite::Error::Cancel);
                    }
                    drop(session);
                    i += 1;
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        while let Some(result) = workers.join_next().await {
            result.expect("worker");
        }
        let count = done.load(std::sync::atomic::Ordering::Relaxed);
        println!("{count} sessions in {:?}", started.elapsed());
        assert!(count >= 50, "only {count} sessions finished");

        // The steady publisher leaves too; then nothing may be left.
        drop(pub_session);
        drop(pub_client);
        drop(broadcast);
        let mut last = String::new();
        for _ in 0..100 {
            let (_, metrics) = relay.get("/metrics").await;
            last = String::from_utf8(metrics).unwrap();
            let (_, announced) = relay.get("/announced").await;
            if metric(&last, "moq_relay_sessions_active") == 0
                && metric(&last, "moq_relay_broadcasts_active") == 0
                && announced.is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(metric(&last, "moq_relay_sessions_active"), 0, "{last}");
        assert_eq!(metric(&last, "moq_relay_broadcasts_active"), 0, "{last}");
        assert!(metric(&last, "moq_relay_sessions_total") > count as u64, "{last}");
        let (_, announced) = relay.get("/announced").await;
        assert!(announced.is_empty(), "{}", String::from_utf8_lossy(&announced));

        // And it still serves.
        let publisher = OriginProducer::new();
        let (_p, _pc) = relay
            .connect(&relay.url("https", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("after").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let mut group = track.append_group().unwrap();
        group.write_frame(Bytes::from_static(b"still here")).unwrap();
        let viewer = OriginProducer::new();
        let (_v, _vc) = relay.connect(&relay.url("moql", "/"), None, Some(&viewer)).await;
        let mut consumer = subscribe(&viewer, "after", "t").await;
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.read_frame().await.unwrap().unwrap(), "still here");
    })
    .await
    .expect("timed out");
}

/// Churn at scale: as many connect / subscribe / leave cycles as fit in
/// about ten seconds (1000 and more on two cores), over raw QUIC and
/// WebTransport, some sessions publishing for a moment, some leaving before
/// their first group; all the while a steady subscriber must get every group
/// of a live track in order. Afterwards, with the publishers gone, the
/// relay's gauges are all zero and a fresh client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_at_scale_leaves_nothing_behind() {
    const SESSIONS: usize = 2000;
    const BUDGET: Duration = Duration::from_secs(10);
    const WORKERS: usize = 24;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    tokio::time::timeout(LIMIT, async {
        let relay = Arc::new(TestRelay::start(|_| {}).await);
        let publisher = OriginProducer::new();
        let (pub_session, pub_client) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("live").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        let mut group = track.append_group().unwrap();
        group.write_frame(Bytes::from_static(b"g0")).unwrap();
        group.finish().unwrap();

        // The steady subscriber, and a writer: a group every 10 ms.
        let view = OriginProducer::new();
        let (steady_session, steady_client) = relay.connect(&relay.url("https", "/"), None, Some(&view)).await;
        let mut steady = subscribe(&view, "live", "t").await;
        let first = steady.next_group().await.unwrap().unwrap().sequence();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut group = track.append_group().unwrap();
                    last = group.sequence();
                    group.write_frame(Bytes::from(format!("g{last}"))).unwrap();
                    group.finish().unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (track, last)
            })
        };
        // Live delivery: groups may arrive out of order under load, but
        // every one must arrive.
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(mut group) = steady.next_group().await.expect("intact") {
                let sequence = group.sequence();
                let frame = group.read_frame().await.expect("intact").expect("a frame");
                assert_eq!(frame, format!("g{sequence}"));
                seen_tx.send((sequence, steady.skipped())).unwrap();
            }
        });

        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let relay = relay.clone();
            let done = done.clone();
            workers.spawn(async move {
                let client = relay.client();
                let mut i = 0usize;
                while started.elapsed() < BUDGET && done.fetch_add(1, Ordering::Relaxed) < SESSIONS {
                    let scheme = if (i + worker) % 2 == 0 { "moql" } else { "https" };
                    let origin = OriginProducer::new();
                    let own = OriginProducer::new();
                    let connected = client.connect(&relay.url(scheme, "/")).await.expect("connects");
                    let session = Session::connect(connected.session, Some(own.consume()), Some(origin.clone()))
                        .await
                        .expect("session");
                    // Every fifth publishes a track of its own for a moment.
                    let _mine = (i % 5 == 0).then(|| {
                        let mine = own.create_broadcast(format!("churn/{worker}/{i}")).unwrap();
                        let mut t = mine.create_track(Track::new("t"));
                        t.append_group().unwrap().write_frame(Bytes::from_static(b"x")).unwrap();
                        (mine, t)
                    });
                    let mut consumer = subscribe(&origin, "live", "t").await;
                    // Every seventh leaves before reading anything.
                    if i % 7 != 3 {
                        let mut group = consumer.next_group().await.unwrap().unwrap();
                        assert!(group.read_frame().await.unwrap().is_some());
                    }
                    if i % 2 == 0 {
                        session.close(moq_lite::Error::Cancel);
                    }
                    drop((consumer, session));
                    i += 1;
                }
                i
            });
        }
        let mut count = 0;
        while let Some(result) = workers.join_next().await {
            count += result.expect("worker");
        }
        let elapsed = started.elapsed();
        println!(
            "{count} sessions in {elapsed:?} ({:.0}/s)",
            count as f64 / elapsed.as_secs_f64()
        );
        assert!(count >= 200, "only {count} sessions finished");

        // The steady subscriber got everything written meanwhile.
        stop.store(true, Ordering::Relaxed);
        let (track, last) = writer.await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut skipped = 0;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some((sequence, skips)) = seen_rx.recv().await {
                assert!(seen.insert(sequence), "group {sequence} twice");
                skipped = skips;
                if (first + 1..=last).all(|s| seen.contains(&s)) {
                    break;
                }
            }
        })
        .await;
        reader.abort();
        drop(track);
        drop(broadcast);
        drop(pub_session);
        drop(pub_client);
        let missing: Vec<u64> = (first + 1..=last).filter(|s| !seen.contains(s)).collect();
        println!(
            "the steady subscriber read {} groups of {first}..={last}; skipped {skipped}, missing {missing:?}",
            seen.len()
        );
        assert!(missing.is_empty(), "the steady subscriber missed groups {missing:?}");
        drop(steady_session);
        drop(steady_client);

        let mut last = String::new();
        for _ in 0..100 {
            let (_, metrics) = relay.get("/metrics").await;
            last = String::from_utf8(metrics).unwrap();
            let zero = [
                "moq_relay_sessions_active",
                "moq_relay_broadcasts_active",
                "moq_relay_subscriptions_active",
                "moq_relay_cache_bytes",
                "moq_relay_cache_groups",
            ];
            if zero.iter().all(|name| metric(&last, name) == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for name in [
            "moq_relay_sessions_active",
            "moq_relay_broadcasts_active",
            "moq_relay_subscriptions_active",
            "moq_relay_cache_bytes",
            "moq_relay_cache_groups",
        ] {
            assert_eq!(metric(&last, name), 0, "{name}: {last}");
        }
        assert!(metric(&last, "moq_relay_sessions_total") >= count as u64 + 2, "{last}");
        assert_eq!(metric(&last, "moq_relay_sessions_refused_total"), 0, "{last}");
        let (_, announced) = relay.get("/announced").await;
        assert!(announced.is_empty(), "{}", String::from_utf8_lossy(&announced));

        // A fresh pair works.
        let publisher = OriginProducer::new();
        let (_p, _pc) = relay
            .connect(&relay.url("moql", "/"), Some(&publisher), None)
            .await;
        let broadcast = publisher.create_broadcast("after").unwrap();
        let mut track = broadcast.create_track(Track::new("t"));
        track
            .append_group()
            .unwrap()
            .write_frame(Bytes::from_static(b"still here"))
            .unwrap();
        let viewer = OriginProducer::new();
        let (_v, _vc) = relay.connect(&relay.url("https", "/"), None, Some(&viewer)).await;
        let mut consumer = subscribe(&viewer, "after", "t").await;
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.read_frame().await.unwrap().unwrap(), "still here");
    })
    .await
    .expect("timed out");
}

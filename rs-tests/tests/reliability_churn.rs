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
        assert!(
            metric(&last, "moq_relay_sessions_total") > count as u64,
            "{last}"
        );
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

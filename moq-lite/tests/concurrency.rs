//! The model under concurrent use from many tasks on a multi-threaded runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use moq_lite::bytes::Bytes;
use moq_lite::model::{BroadcastConsumer, BroadcastProducer, OriginProducer, Path, Track, TrackConsumer};

const TRACKS: usize = 8;
const GROUPS: u64 = 200;
const FRAMES: usize = 5;
const CONSUMERS: usize = 16;

fn payload(track: usize, group: u64, frame: usize) -> Bytes {
    Bytes::from(format!("{track}:{group}:{frame}"))
}

/// Reads a whole track, whole frames or (`chunked`) frame readers chunk by
/// chunk; returns the address of every frame payload, in order.
async fn read_everything(track: usize, mut consumer: TrackConsumer, chunked: bool) -> Vec<usize> {
    let mut addresses = Vec::new();
    let mut expected = 0u64;
    while let Some(mut group) = consumer.next_group().await.unwrap() {
        assert_eq!(group.sequence(), expected, "track {track}: groups out of order");
        for frame in 0..FRAMES {
            let want = payload(track, expected, frame);
            let got = if chunked {
                let mut reader = group.next_frame().await.unwrap().expect("group ended early");
                assert_eq!(reader.size(), want.len() as u64);
                let chunk = reader.read_chunk().await.unwrap().expect("empty frame");
                assert_eq!(reader.read_chunk().await.unwrap(), None);
                chunk
            } else {
                group.read_frame().await.unwrap().expect("group ended early")
            };
            assert_eq!(got, want, "track {track}");
            addresses.push(got.as_ptr() as usize);
        }
        let extra = if chunked {
            group.next_frame().await.unwrap().is_some()
        } else {
            group.read_frame().await.unwrap().is_some()
        };
        assert!(!extra, "track {track}: extra frame");
        expected += 1;
    }
    assert_eq!(expected, GROUPS, "track {track}: groups missing");
    assert_eq!(consumer.skipped(), 0);
    addresses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_consumer_gets_every_frame_of_every_group_in_order_without_copies() {
    let broadcast = BroadcastProducer::new();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for t in 0..TRACKS {
        let mut track = broadcast.create_track(Track::new(format!("t{t}")));
        let subscriber = broadcast
            .consume()
            .subscribe_track(&Track::new(format!("t{t}")))
            .unwrap();
        for _ in 0..CONSUMERS {
            // Started before the first group, from the beginning.
            let consumer = if readers.len() % 2 == 0 {
                track.consume_from(0)
            } else {
                // A clone of a subscriber is at the same (initial) position.
                subscriber.clone()
            };
            let chunked = readers.len() % 4 >= 2;
            readers.push((t, tokio::spawn(read_everything(t, consumer, chunked))));
        }
        writers.push(tokio::spawn(async move {
            for g in 0..GROUPS {
                let mut group = track.append_group().unwrap();
                assert_eq!(group.sequence(), g);
                for f in 0..FRAMES {
                    group.write_frame(payload(t, g, f)).unwrap();
                    if f == 2 {
                        tokio::task::yield_now().await;
                    }
                }
                group.finish().unwrap();
            }
            track.finish().unwrap();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut first: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (t, reader) in readers {
        let addresses = reader.await.unwrap();
        assert_eq!(addresses.len(), GROUPS as usize * FRAMES);
        // Payloads are shared, never copied per consumer.
        match first.get(&t) {
            Some(reference) => assert_eq!(&addresses, reference, "track {t}: a payload was copied"),
            None => {
                first.insert(t, addresses);
            }
        }
    }
    assert_eq!(first.len(), TRACKS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_subscribers_cause_one_request_per_live_track() {
    const NAMES: usize = 8;
    const SUBSCRIBERS: usize = 64;
    const ROUNDS: usize = 40;

    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let handler = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        let mut live = Vec::new();
        while let Some(mut track) = requests.requested_track().await {
            let name = track.info().name.clone();
            assert!(seen.insert(name.clone()), "{name} requested twice while live");
            track
                .append_group()
                .unwrap()
                .write_frame(Bytes::from(name))
                .unwrap();
            tokio::task::yield_now().await;
            // Kept alive, so it stays the one track for its name.
            live.push(track);
        }
        seen
    });

    let consumer = broadcast.consume();
    let mut subscribers = Vec::new();
    for s in 0..SUBSCRIBERS {
        let consumer = consumer.clone();
        subscribers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let name = format!("n{}", (s + round) % NAMES);
                let mut sub = consumer.subscribe_track(&Track::new(name.clone())).unwrap();
                if round % 3 == 0 {
                    let mut group = sub.next_group().await.unwrap().expect("track ended");
                    assert_eq!(group.read_frame().await.unwrap().unwrap(), name.as_str());
                } else if round % 3 == 1 {
                    tokio::task::yield_now().await;
                }
                drop(sub);
            }
        }));
    }
    for subscriber in subscribers {
        subscriber.await.unwrap();
    }
    drop(consumer);
    drop(broadcast);
    let seen = handler.await.unwrap();
    let expected: BTreeSet<String> = (0..NAMES).map(|n| format!("n{n}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_subscribers_share_the_track_the_producer_has() {
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"));
    let reference = track.consume();
    let reference = Arc::new(Mutex::new(reference));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let consumer = broadcast.consume();
        let reference = reference.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let sub = consumer.subscribe_track(&Track::new("t")).unwrap();
                assert!(sub.is_same_track(&reference.lock().unwrap()));
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// What the follower believes is active, per path.
type View = BTreeMap<Path, BroadcastConsumer>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_races_leave_the_follower_consistent_with_what_is_live() {
    const PUBLISHERS: usize = 8;
    const STEPS: usize = 300;
    let paths: Vec<Path> = ["a", "a/b", "b", "c/d", "e"].into_iter().map(Path::new).collect();

    let origin = OriginProducer::new();
    let mut follower = origin.consume();

    fn apply(view: &mut View, path: Path, broadcast: Option<BroadcastConsumer>) {
        match broadcast {
            Some(b) => assert!(
                view.insert(path.clone(), b).is_none(),
                "{path} active twice in a row"
            ),
            None => assert!(view.remove(&path).is_some(), "{path} ended while not active"),
        }
    }

    // Registers the follower before anything is published.
    assert!(follower.try_announced().is_none());
    let following = tokio::spawn(async move {
        let mut view = View::new();
        loop {
            let next = follower.announced().await.expect("origin ended early");
            if next.path == Path::new("stop") {
                return (view, follower);
            }
            apply(&mut view, next.path, next.broadcast);
        }
    });

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let origin = origin.clone();
        let paths = paths.clone();
        publishers.push(tokio::spawn(async move {
            let mut x = 0x9e37_79b9u32.wrapping_mul(p as u32 + 1);
            let mut live: Vec<(Path, BroadcastProducer)> = Vec::new();
            let mut extra: Vec<(Path, BroadcastProducer)> = Vec::new();
            for step in 0..STEPS {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let path = paths[(x >> 16) as usize % paths.len()].clone();
                match (x >> 8) % 4 {
                    0 | 1 => live.push((path.clone(), origin.create_broadcast(path).unwrap())),
                    2 if !live.is_empty() => {
                        live.swap_remove((x >> 4) as usize % live.len());
                    }
                    _ => {
                        // Publish and unpublish a broadcast by hand.
                        let broadcast = BroadcastProducer::new();
                        origin.publish(path.clone(), &broadcast.consume()).unwrap();
                        if step % 2 == 0 {
                            assert!(origin.unpublish(path, &broadcast.consume()));
                        } else {
                            extra.push((path, broadcast));
                        }
                    }
                }
                if step % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            live.extend(extra);
            live
        }));
    }
    let mut live: Vec<(Path, BroadcastProducer)> = Vec::new();
    for publisher in publishers {
        live.extend(publisher.await.unwrap());
    }

    let _stop = origin.create_broadcast("stop").unwrap();
    let (mut view, mut follower) = following.await.unwrap();
    while let Some(next) = follower.try_announced() {
        apply(&mut view, next.path, next.broadcast);
    }

    // The follower's view is what is live: the same paths, and at each the
    // broadcast the origin serves, which is one of the live ones.
    let live_paths: BTreeSet<Path> = live.iter().map(|(p, _)| p.clone()).collect();
    let viewed: BTreeSet<Path> = view.keys().cloned().collect();
    assert_eq!(viewed, live_paths);
    let lookup = origin.consume();
    for (path, broadcast) in &view {
        let served = lookup.consume_broadcast(path.clone()).unwrap();
        assert!(
            served.is_same(broadcast),
            "{path}: follower has a stale broadcast"
        );
        assert!(
            live.iter()
                .any(|(p, b)| p == path && b.consume().is_same(broadcast)),
            "{path}: follower's broadcast is not live"
        );
        assert!(broadcast.is_closed().is_none());
    }

    // Ending everything from several threads reads as one end per path, then None.
    let mut parts: Vec<Vec<(Path, BroadcastProducer)>> = (0..4).map(|_| Vec::new()).collect();
    for (i, entry) in live.into_iter().enumerate() {
        parts[i % 4].push(entry);
    }
    let droppers: Vec<_> = parts
        .into_iter()
        .map(|part| std::thread::spawn(move || drop(part)))
        .collect();
    drop(origin);
    for dropper in droppers {
        dropper.join().unwrap();
    }
    drop(_stop);
    while let Some(next) = follower.announced().await {
        if next.path == Path::new("stop") {
            assert!(next.broadcast.is_none());
            continue;
        }
        assert!(
            next.broadcast.is_none(),
            "{} came back after everything ended",
            next.path
        );
        apply(&mut view, next.path, None);
    }
    assert!(view.is_empty());
}

//! Behaviour of origins: broadcasts by path, scoping, re-rooting and
//! announcements.

use std::collections::{BTreeMap, BTreeSet};
use std::task::{Context, Poll, Waker};

use moq_lite::Error;
use moq_lite::model::{BroadcastProducer, CacheConfig, OriginConsumer, OriginProducer, Path, Track};

/// Every announcement ready now, as `(path, active)`.
fn drain(consumer: &mut OriginConsumer) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(a) = consumer.try_announced() {
        out.push((a.path.to_string(), a.broadcast.is_some()));
    }
    out
}

fn ended(path: &str) -> (String, bool) {
    (path.to_string(), false)
}

fn active(path: &str) -> (String, bool) {
    (path.to_string(), true)
}

fn poll_announced_now(consumer: &mut OriginConsumer) -> Poll<Option<moq_lite::model::Announced>> {
    consumer.poll_announced(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn paths_are_normalised_for_publish_and_lookup() {
    let origin = OriginProducer::new();
    let _b = origin.create_broadcast("/room//alice/").unwrap();
    let consumer = origin.consume();
    assert!(consumer.consume_broadcast("room/alice").is_some());
    assert!(consumer.consume_broadcast("/room/alice//").is_some());
    assert!(consumer.consume_broadcast("room").is_none());
    assert!(consumer.consume_broadcast("room/alice/x").is_none());

    let mut c = origin.consume();
    assert_eq!(drain(&mut c), vec![active("room/alice")]);
}

#[test]
fn consume_broadcast_returns_the_published_broadcast() {
    let origin = OriginProducer::new();
    let producer = BroadcastProducer::new();
    let published = producer.consume();
    origin.publish("a/b", &published).unwrap();

    let found = origin.consume().consume_broadcast("a/b").unwrap();
    assert!(found.is_same(&published));
    assert!(origin.consume().consume_broadcast("a").is_none());
    assert!(origin.consume().consume_broadcast("a/b/c").is_none());
}

#[test]
fn announcements_start_with_a_replay_of_what_is_active() {
    let origin = OriginProducer::new();
    let _x = origin.create_broadcast("x").unwrap();
    let _y = origin.create_broadcast("y/1").unwrap();
    let gone = origin.create_broadcast("z").unwrap();
    drop(gone);

    let mut consumer = origin.consume();
    let replay: BTreeSet<_> = drain(&mut consumer).into_iter().collect();
    assert_eq!(replay, BTreeSet::from([active("x"), active("y/1")]));

    // Then live changes.
    let _w = origin.create_broadcast("w").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("w")]);
}

#[test]
fn announced_broadcast_is_the_published_one() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let producer = origin.create_broadcast("p").unwrap();
    let announced = consumer.try_announced().unwrap();
    assert_eq!(announced.path, Path::new("p"));
    assert!(announced.broadcast.unwrap().is_same(&producer.consume()));
}

#[test]
fn dropping_the_broadcast_producer_unpublishes_it() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let producer = origin.create_broadcast("live").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("live")]);

    drop(producer);
    assert_eq!(drain(&mut consumer), vec![ended("live")]);
    assert!(origin.consume().consume_broadcast("live").is_none());
}

#[test]
fn dropping_the_last_of_cloned_broadcast_producers_unpublishes_it() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let producer = origin.create_broadcast("live").unwrap();
    let clone = producer.clone();
    drop(producer);
    assert_eq!(drain(&mut consumer), vec![active("live")]);
    drop(clone);
    assert_eq!(drain(&mut consumer), vec![ended("live")]);
}

#[test]
fn aborting_the_broadcast_unpublishes_it() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let producer = origin.create_broadcast("live").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("live")]);
    producer.abort(Error::Cancel);
    assert_eq!(drain(&mut consumer), vec![ended("live")]);
    assert!(origin.consume().consume_broadcast("live").is_none());

    // Published and ended before a new consumer's first read: nothing to announce.
    let mut late = origin.consume();
    origin.create_broadcast("brief").unwrap().abort(Error::Cancel);
    assert_eq!(drain(&mut late), vec![]);
}

#[test]
fn publishing_an_ended_broadcast_announces_nothing() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    assert_eq!(drain(&mut consumer), vec![]);
    let producer = BroadcastProducer::new();
    let broadcast = producer.consume();
    drop(producer);
    origin.publish("dead", &broadcast).unwrap();
    assert!(origin.consume().consume_broadcast("dead").is_none());
    assert_eq!(drain(&mut consumer), vec![]);
}

#[test]
fn unpublish_withdraws_and_reports_whether_it_was_there() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let producer = BroadcastProducer::new();
    let broadcast = producer.consume();
    origin.publish("p", &broadcast).unwrap();
    assert_eq!(drain(&mut consumer), vec![active("p")]);

    assert!(!origin.unpublish("other", &broadcast));
    assert!(origin.unpublish("p", &broadcast));
    assert!(!origin.unpublish("p", &broadcast));
    assert_eq!(drain(&mut consumer), vec![ended("p")]);
    assert!(origin.consume().consume_broadcast("p").is_none());
    // The broadcast itself is still open.
    assert!(broadcast.is_closed().is_none());
}

#[test]
fn publishing_the_same_broadcast_twice_at_one_path_is_a_duplicate() {
    let origin = OriginProducer::new();
    let producer = BroadcastProducer::new();
    origin.publish("p", &producer.consume()).unwrap();
    assert_eq!(origin.publish("p", &producer.consume()), Err(Error::Duplicate));
    // At another path it is fine.
    origin.publish("q", &producer.consume()).unwrap();
    let consumer = origin.consume();
    assert!(consumer.consume_broadcast("p").is_some());
    assert!(consumer.consume_broadcast("q").is_some());
}

#[test]
fn scope_cannot_publish_outside_its_prefix_on_segment_boundaries() {
    let origin = OriginProducer::new();
    let scoped = origin.scope(&[Path::new("a")]).unwrap();
    assert_eq!(scoped.allowed(), &[Path::new("a")]);

    assert!(scoped.create_broadcast("a").is_ok());
    assert!(scoped.create_broadcast("a/x").is_ok());
    assert_eq!(scoped.create_broadcast("ab").unwrap_err(), Error::Unauthorized);
    assert_eq!(scoped.create_broadcast("b").unwrap_err(), Error::Unauthorized);
    assert_eq!(scoped.create_broadcast("").unwrap_err(), Error::Unauthorized);

    let producer = BroadcastProducer::new();
    assert_eq!(
        scoped.publish("ab/c", &producer.consume()),
        Err(Error::Unauthorized)
    );
    assert!(origin.consume().consume_broadcast("ab/c").is_none());
}

#[test]
fn scope_cannot_see_outside_its_prefix_on_segment_boundaries() {
    let origin = OriginProducer::new();
    let _a = origin.create_broadcast("a").unwrap();
    let _ax = origin.create_broadcast("a/x").unwrap();
    let ab = origin.create_broadcast("ab").unwrap();
    let _b = origin.create_broadcast("b").unwrap();

    let mut scoped = origin.consume().scope(&[Path::new("a")]).unwrap();
    assert!(scoped.consume_broadcast("a").is_some());
    assert!(scoped.consume_broadcast("a/x").is_some());
    assert!(scoped.consume_broadcast("ab").is_none());
    assert!(scoped.consume_broadcast("b").is_none());

    let seen: BTreeSet<_> = drain(&mut scoped).into_iter().collect();
    assert_eq!(seen, BTreeSet::from([active("a"), active("a/x")]));

    // Later changes outside the scope stay invisible too.
    let _ab2 = origin.create_broadcast("ab/y").unwrap();
    drop(ab);
    let _ay = origin.create_broadcast("a/y").unwrap();
    assert_eq!(drain(&mut scoped), vec![active("a/y")]);
}

#[test]
fn scoped_producer_consumes_with_its_scope() {
    let origin = OriginProducer::new();
    let _ab = origin.create_broadcast("ab").unwrap();
    let _a = origin.create_broadcast("a/1").unwrap();
    let scoped = origin.scope(&[Path::new("a")]).unwrap();
    let mut consumer = scoped.consume();
    assert_eq!(drain(&mut consumer), vec![active("a/1")]);
    assert!(consumer.consume_broadcast("ab").is_none());
}

#[test]
fn scope_with_several_prefixes_allows_each() {
    let origin = OriginProducer::new();
    let scoped = origin.scope(&[Path::new("a"), Path::new("c/d")]).unwrap();
    assert!(scoped.create_broadcast("a/1").is_ok());
    assert!(scoped.create_broadcast("c/d/1").is_ok());
    assert_eq!(scoped.create_broadcast("c/1").unwrap_err(), Error::Unauthorized);
    assert_eq!(scoped.create_broadcast("c/dd").unwrap_err(), Error::Unauthorized);
}

#[test]
fn scope_only_narrows() {
    let origin = OriginProducer::new();
    let a = origin.scope(&[Path::new("a")]).unwrap();
    // Nothing outside `a` can be regained.
    assert!(a.scope(&[Path::new("b")]).is_none());
    assert!(a.scope(&[Path::new("ab")]).is_none());
    assert!(a.scope(&[]).is_none());
    // A wider request is clipped to what the handle had.
    let wide = a.scope(&[Path::root()]).unwrap();
    assert_eq!(wide.allowed(), &[Path::new("a")]);
    assert_eq!(wide.create_broadcast("b").unwrap_err(), Error::Unauthorized);
    // A narrower one narrows.
    let narrow = a.scope(&[Path::new("a/b")]).unwrap();
    assert_eq!(narrow.create_broadcast("a/c").unwrap_err(), Error::Unauthorized);
    assert!(narrow.create_broadcast("a/b/c").is_ok());

    let consumer = origin.consume().scope(&[Path::new("a")]).unwrap();
    assert!(consumer.scope(&[Path::new("b")]).is_none());
    assert!(consumer.with_root("b").is_none());
}

#[test]
fn unpublish_outside_scope_is_refused() {
    let origin = OriginProducer::new();
    let producer = BroadcastProducer::new();
    origin.publish("b", &producer.consume()).unwrap();
    let scoped = origin.scope(&[Path::new("a")]).unwrap();
    assert!(!scoped.unpublish("b", &producer.consume()));
    assert!(origin.consume().consume_broadcast("b").is_some());
}

#[test]
fn with_root_makes_paths_relative() {
    let origin = OriginProducer::new();
    let mut everything = origin.consume();
    let room = origin.with_root("room").unwrap();
    assert_eq!(room.root(), &Path::new("room"));

    let _alice = room.create_broadcast("alice").unwrap();
    assert_eq!(drain(&mut everything), vec![active("room/alice")]);
    assert!(everything.consume_broadcast("room/alice").is_some());
    assert!(everything.consume_broadcast("alice").is_none());

    let mut in_room = origin.consume().with_root("room").unwrap();
    assert_eq!(drain(&mut in_room), vec![active("alice")]);
    assert!(in_room.consume_broadcast("alice").is_some());
    assert!(in_room.consume_broadcast("room/alice").is_none());

    // The rooted producer's consumer is rooted too.
    let mut from_room = room.consume();
    assert_eq!(drain(&mut from_room), vec![active("alice")]);

    // Outside the root is invisible.
    let _bob = origin.create_broadcast("roomba/bob").unwrap();
    assert_eq!(drain(&mut in_room), vec![]);
    assert_eq!(drain(&mut everything), vec![active("roomba/bob")]);
}

#[test]
fn with_root_nests() {
    let origin = OriginProducer::new();
    let ab = origin.with_root("a").unwrap().with_root("b").unwrap();
    assert_eq!(ab.root(), &Path::new("a/b"));
    let _x = ab.create_broadcast("x").unwrap();
    assert!(origin.consume().consume_broadcast("a/b/x").is_some());
    let mut c = origin.consume().with_root("a").unwrap();
    assert_eq!(drain(&mut c), vec![active("b/x")]);
}

#[test]
fn with_root_keeps_the_scope() {
    let origin = OriginProducer::new();
    let scoped = origin.scope(&[Path::new("a/b")]).unwrap();
    let rooted = scoped.with_root("a").unwrap();
    assert!(rooted.create_broadcast("b/x").is_ok());
    assert_eq!(rooted.create_broadcast("c").unwrap_err(), Error::Unauthorized);
    assert_eq!(rooted.create_broadcast("bb").unwrap_err(), Error::Unauthorized);
    assert!(scoped.with_root("x").is_none());
    assert!(scoped.with_root("ab").is_none());
    // Rooting deeper than the scope is fine.
    let deeper = scoped.with_root("a/b/c").unwrap();
    let _d = deeper.create_broadcast("d").unwrap();
    assert!(origin.consume().consume_broadcast("a/b/c/d").is_some());
}

#[test]
fn duplicate_publish_newest_wins_and_older_comes_back() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let first = origin.create_broadcast("p").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("p")]);

    let second = origin.create_broadcast("p").unwrap();
    let found = origin.consume().consume_broadcast("p").unwrap();
    assert!(found.is_same(&second.consume()));
    // A replacement reads as ended then active, and the active one is the newest.
    let a = consumer.try_announced().unwrap();
    assert!(a.broadcast.is_none());
    let b = consumer.try_announced().unwrap();
    assert_eq!(b.path, Path::new("p"));
    assert!(b.broadcast.unwrap().is_same(&second.consume()));
    assert!(consumer.try_announced().is_none());

    // The newest ends: the older comes back.
    drop(second);
    let found = origin.consume().consume_broadcast("p").unwrap();
    assert!(found.is_same(&first.consume()));
    let a = consumer.try_announced().unwrap();
    assert!(a.broadcast.is_none());
    let b = consumer.try_announced().unwrap();
    assert!(b.broadcast.unwrap().is_same(&first.consume()));
    assert!(consumer.try_announced().is_none());

    drop(first);
    assert_eq!(drain(&mut consumer), vec![ended("p")]);
    assert!(origin.consume().consume_broadcast("p").is_none());
}

#[test]
fn older_duplicate_ending_first_changes_nothing_visible() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let first = origin.create_broadcast("p").unwrap();
    let second = origin.create_broadcast("p").unwrap();
    let replay = consumer.try_announced().unwrap();
    assert!(replay.broadcast.unwrap().is_same(&second.consume()));
    drop(first);
    assert_eq!(drain(&mut consumer), vec![]);
    assert!(
        origin
            .consume()
            .consume_broadcast("p")
            .unwrap()
            .is_same(&second.consume())
    );
    drop(second);
    assert_eq!(drain(&mut consumer), vec![ended("p")]);
}

#[test]
fn announcements_alternate_active_and_ended_per_path() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let mut live: BTreeMap<&str, Vec<BroadcastProducer>> = BTreeMap::new();
    let mut state: BTreeMap<String, bool> = BTreeMap::new();
    let paths = ["a", "a/b", "c"];
    // A deterministic shuffle of publishes and drops across three paths.
    let mut x = 12345u32;
    for step in 0..600 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let path = paths[(x >> 16) as usize % paths.len()];
        let list = live.entry(path).or_default();
        if (x >> 8) % 3 == 0 && !list.is_empty() {
            let i = (x as usize >> 4) % list.len();
            list.remove(i);
        } else {
            list.push(origin.create_broadcast(path).unwrap());
        }
        if step % 7 == 0 {
            for (p, is_active) in drain(&mut consumer) {
                let was = state.insert(p.clone(), is_active).unwrap_or(false);
                assert_ne!(was, is_active, "{p} announced {is_active} twice in a row");
            }
        }
    }
    for (p, is_active) in drain(&mut consumer) {
        let was = state.insert(p.clone(), is_active).unwrap_or(false);
        assert_ne!(was, is_active, "{p} announced {is_active} twice in a row");
    }
    // The consumer's view matches what is live, and the newest wins.
    for path in paths {
        let list = &live[path];
        assert_eq!(
            state.get(path).copied().unwrap_or(false),
            !list.is_empty(),
            "{path}"
        );
        let found = origin.consume().consume_broadcast(path);
        match list.last() {
            Some(newest) => assert!(found.unwrap().is_same(&newest.consume())),
            None => assert!(found.is_none()),
        }
    }
}

#[test]
fn never_reading_consumer_keeps_at_most_one_pending_change_per_path() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let first = origin.create_broadcast("p").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("p")]);
    drop(first);

    // 1000 broadcasts come and go while the consumer does not read.
    for _ in 0..1000 {
        let b = origin.create_broadcast("p").unwrap();
        drop(b);
    }
    let last = origin.create_broadcast("p").unwrap();
    // All it sees is the net change: one ended/active pair.
    let next = drain(&mut consumer);
    assert_eq!(next, vec![ended("p"), active("p")]);

    // Same when the path ends up empty: only the end.
    for _ in 0..1000 {
        let b = origin.create_broadcast("p").unwrap();
        drop(b);
    }
    drop(last);
    assert_eq!(drain(&mut consumer), vec![ended("p")]);

    // And when it was empty and stays empty: nothing.
    for _ in 0..1000 {
        drop(origin.create_broadcast("p").unwrap());
    }
    assert_eq!(drain(&mut consumer), vec![]);
}

#[test]
fn never_reading_consumer_sees_a_long_lived_broadcast_unchanged() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let keep = origin.create_broadcast("p").unwrap();
    assert_eq!(drain(&mut consumer), vec![active("p")]);
    // Newer broadcasts at the same path come and go; the active one is the same.
    for _ in 0..1000 {
        drop(origin.create_broadcast("p").unwrap());
    }
    assert!(drain(&mut consumer).len() <= 2);
    assert!(
        origin
            .consume()
            .consume_broadcast("p")
            .unwrap()
            .is_same(&keep.consume())
    );
}

#[test]
fn cloned_consumer_starts_with_its_own_replay() {
    let origin = OriginProducer::new();
    let _a = origin.create_broadcast("a").unwrap();
    let mut first = origin.consume();
    assert_eq!(drain(&mut first), vec![active("a")]);
    let mut second = first.clone();
    assert_eq!(drain(&mut second), vec![active("a")]);
    assert_eq!(drain(&mut first), vec![]);
}

#[test]
fn consumers_are_independent() {
    let origin = OriginProducer::new();
    let mut a = origin.consume();
    let mut b = origin.consume();
    let x = origin.create_broadcast("x").unwrap();
    assert_eq!(drain(&mut a), vec![active("x")]);
    drop(x);
    assert_eq!(drain(&mut a), vec![ended("x")]);
    // `b` registered lazily: its replay sees nothing live.
    assert_eq!(drain(&mut b), vec![]);
}

#[test]
fn announced_waits_while_a_producer_remains() {
    let origin = OriginProducer::new();
    let clone = origin.clone();
    let mut consumer = origin.consume();
    assert!(poll_announced_now(&mut consumer).is_pending());
    drop(origin);
    // Another producer handle is still alive.
    assert!(poll_announced_now(&mut consumer).is_pending());
    drop(clone);
    assert!(matches!(poll_announced_now(&mut consumer), Poll::Ready(None)));
}

#[tokio::test]
async fn announced_is_none_after_every_producer_dropped_and_everything_ended() {
    let origin = OriginProducer::new();
    let scoped = origin.scope(&[Path::new("a")]).unwrap();
    let mut consumer = origin.consume();
    let a = scoped.create_broadcast("a/1").unwrap();
    let b = origin.create_broadcast("b").unwrap();
    drop(origin);
    drop(scoped);

    // Live broadcasts keep the announcements going.
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let next = consumer.announced().await.unwrap();
        assert!(next.broadcast.is_some());
        seen.insert(next.path.to_string());
    }
    assert_eq!(seen, BTreeSet::from(["a/1".to_string(), "b".to_string()]));
    assert!(poll_announced_now(&mut consumer).is_pending());

    drop(a);
    let next = consumer.announced().await.unwrap();
    assert_eq!((next.path.as_str(), next.broadcast.is_some()), ("a/1", false));
    assert!(poll_announced_now(&mut consumer).is_pending());

    drop(b);
    let next = consumer.announced().await.unwrap();
    assert_eq!((next.path.as_str(), next.broadcast.is_some()), ("b", false));
    assert!(consumer.announced().await.is_none());
    assert!(consumer.announced().await.is_none());
}

#[tokio::test]
async fn announced_wakes_a_waiting_consumer() {
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    let waiter = tokio::spawn(async move {
        let a = consumer.announced().await.unwrap();
        (a.path.to_string(), a.broadcast.is_some())
    });
    tokio::task::yield_now().await;
    let _b = origin.create_broadcast("late").unwrap();
    assert_eq!(waiter.await.unwrap(), active("late"));
}

#[test]
fn create_broadcast_uses_the_origin_cache_bounds() {
    let origin = OriginProducer::with_cache(CacheConfig {
        max_group_frames: 1,
        ..CacheConfig::default()
    });
    let broadcast = origin.create_broadcast("p").unwrap();
    let mut track = broadcast.create_track(Track::new("t"));
    let mut group = track.append_group().unwrap();
    group.write_frame("one".into()).unwrap();
    assert_eq!(group.write_frame("two".into()), Err(Error::CacheFull));
}

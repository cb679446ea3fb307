//! Behaviour of broadcasts: tracks by name, requests for missing tracks, and
//! the end of a broadcast.

use std::task::{Context, Poll, Waker};

use moq_lite::Error;
use moq_lite::model::{
    BroadcastProducer, BroadcastRequests, MAX_PENDING_TRACK_REQUESTS, OriginProducer, Track, TrackConsumer,
};

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn poll_request(requests: &mut BroadcastRequests) -> Poll<Option<moq_lite::model::TrackProducer>> {
    requests.poll_requested_track(&mut noop_cx())
}

/// The next group's first frame, if one is ready now.
fn first_frame_now(consumer: &mut TrackConsumer) -> Option<moq_lite::Result<bytes::Bytes>> {
    match consumer.poll_next_group(&mut noop_cx()) {
        Poll::Pending => None,
        Poll::Ready(Err(err)) => Some(Err(err)),
        Poll::Ready(Ok(None)) => panic!("track ended"),
        Poll::Ready(Ok(Some(mut group))) => match group.poll_read_frame(&mut noop_cx()) {
            Poll::Ready(Ok(Some(frame))) => Some(Ok(frame)),
            Poll::Ready(Err(err)) => Some(Err(err)),
            other => panic!("no frame: {other:?}"),
        },
    }
}

fn next_group_err(consumer: &mut TrackConsumer) -> Option<Error> {
    match consumer.poll_next_group(&mut noop_cx()) {
        Poll::Ready(Err(err)) => Some(err),
        _ => None,
    }
}

#[tokio::test]
async fn subscriber_gets_the_track_the_producer_has() {
    let broadcast = BroadcastProducer::new();
    let mut track = broadcast.create_track(Track::new("video").with_priority(7));
    let consumer = broadcast.consume();

    let mut sub = consumer.subscribe_track(&Track::new("video")).unwrap();
    assert!(sub.is_same_track(&track.consume()));
    // The producer's info wins, not the subscriber's.
    assert_eq!(sub.info(), &Track::new("video").with_priority(7));

    track.append_group().unwrap().write_frame("v0".into()).unwrap();
    let mut group = sub.next_group().await.unwrap().unwrap();
    assert_eq!(group.read_frame().await.unwrap().unwrap(), "v0");
}

#[test]
fn inserted_track_is_offered_under_its_name() {
    let broadcast = BroadcastProducer::new();
    let track = moq_lite::model::TrackProducer::new(Track::new("audio"));
    broadcast.insert_track(&track);
    let sub = broadcast.consume().subscribe_track(&Track::new("audio")).unwrap();
    assert!(sub.is_same_track(&track.consume()));
}

#[test]
fn unknown_track_without_a_handler_is_not_found() {
    let broadcast = BroadcastProducer::new();
    let _video = broadcast.create_track(Track::new("video"));
    let consumer = broadcast.consume();
    assert_eq!(
        consumer.subscribe_track(&Track::new("audio")).unwrap_err(),
        Error::NotFound
    );
}

#[test]
fn unknown_track_with_a_handler_is_requested() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    assert!(poll_request(&mut requests).is_pending());

    let mut sub = consumer
        .subscribe_track(&Track::new("audio").with_priority(3))
        .unwrap();
    let Poll::Ready(Some(mut track)) = poll_request(&mut requests) else {
        panic!("no request");
    };
    assert_eq!(track.info(), &Track::new("audio").with_priority(3));
    assert!(sub.is_same_track(&track.consume()));

    track.append_group().unwrap().write_frame("a0".into()).unwrap();
    assert_eq!(first_frame_now(&mut sub).unwrap().unwrap(), "a0");
}

#[test]
fn existing_track_is_served_without_a_request() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let track = broadcast.create_track(Track::new("video"));
    let sub = broadcast.consume().subscribe_track(&Track::new("video")).unwrap();
    assert!(sub.is_same_track(&track.consume()));
    assert!(poll_request(&mut requests).is_pending());
}

#[test]
fn concurrent_requests_for_the_same_name_dedupe_into_one() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let other = broadcast.consume();

    let mut a = consumer.subscribe_track(&Track::new("audio")).unwrap();
    let mut b = other.subscribe_track(&Track::new("audio")).unwrap();
    let mut c = consumer.subscribe_track(&Track::new("audio")).unwrap();
    assert!(a.is_same_track(&b));
    assert!(a.is_same_track(&c));

    let Poll::Ready(Some(mut track)) = poll_request(&mut requests) else {
        panic!("no request");
    };
    assert!(poll_request(&mut requests).is_pending(), "one request only");

    // After the handler took it, new subscribers share it too.
    let mut d = consumer.subscribe_track(&Track::new("audio")).unwrap();
    assert!(poll_request(&mut requests).is_pending());

    track.append_group().unwrap().write_frame("x".into()).unwrap();
    for sub in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(first_frame_now(sub).unwrap().unwrap(), "x");
    }
}

#[test]
fn requests_for_different_names_are_separate_and_in_order() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let _a = consumer.subscribe_track(&Track::new("a")).unwrap();
    let _b = consumer.subscribe_track(&Track::new("b")).unwrap();
    let _a2 = consumer.subscribe_track(&Track::new("a")).unwrap();
    let names: Vec<String> = std::iter::from_fn(|| match poll_request(&mut requests) {
        Poll::Ready(Some(t)) => Some(t.info().name.clone()),
        _ => None,
    })
    .collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn request_stays_deduped_after_every_subscriber_left() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    drop(consumer.subscribe_track(&Track::new("a")).unwrap());
    let _again = consumer.subscribe_track(&Track::new("a")).unwrap();
    assert!(matches!(poll_request(&mut requests), Poll::Ready(Some(_))));
    assert!(poll_request(&mut requests).is_pending());
}

#[test]
fn ended_requested_track_is_requested_again() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let _sub = consumer.subscribe_track(&Track::new("a")).unwrap();
    let Poll::Ready(Some(track)) = poll_request(&mut requests) else {
        panic!("no request");
    };
    track.abort(Error::NotFound);

    let _again = consumer.subscribe_track(&Track::new("a")).unwrap();
    let Poll::Ready(Some(track)) = poll_request(&mut requests) else {
        panic!("ended track was not requested again");
    };
    assert_eq!(track.info().name, "a");
}

#[test]
fn handler_can_refuse_a_request() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let mut sub = broadcast.consume().subscribe_track(&Track::new("nope")).unwrap();
    let Poll::Ready(Some(track)) = poll_request(&mut requests) else {
        panic!("no request");
    };
    track.abort(Error::NotFound);
    assert_eq!(next_group_err(&mut sub), Some(Error::NotFound));
}

#[test]
fn dropping_the_handler_aborts_pending_requests_with_not_found() {
    let broadcast = BroadcastProducer::new();
    let requests = broadcast.requests();
    let consumer = broadcast.consume();
    let mut a = consumer.subscribe_track(&Track::new("a")).unwrap();
    let mut b = consumer.subscribe_track(&Track::new("b")).unwrap();
    assert_eq!(next_group_err(&mut a), None);

    drop(requests);
    assert_eq!(next_group_err(&mut a), Some(Error::NotFound));
    assert_eq!(next_group_err(&mut b), Some(Error::NotFound));
    // Without a handler, unknown tracks are refused again.
    assert_eq!(
        consumer.subscribe_track(&Track::new("a")).unwrap_err(),
        Error::NotFound
    );
    assert_eq!(
        consumer.subscribe_track(&Track::new("c")).unwrap_err(),
        Error::NotFound
    );
}

#[test]
fn requests_survive_while_another_handler_remains() {
    let broadcast = BroadcastProducer::new();
    let first = broadcast.requests();
    let mut second = broadcast.requests();
    let mut sub = broadcast.consume().subscribe_track(&Track::new("a")).unwrap();
    drop(first);
    assert_eq!(next_group_err(&mut sub), None);
    let Poll::Ready(Some(track)) = poll_request(&mut second) else {
        panic!("request lost with the first handler");
    };
    assert!(sub.is_same_track(&track.consume()));
}

#[test]
fn a_taken_request_is_not_aborted_when_the_handler_drops() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let mut sub = broadcast.consume().subscribe_track(&Track::new("a")).unwrap();
    let Poll::Ready(Some(mut track)) = poll_request(&mut requests) else {
        panic!("no request");
    };
    drop(requests);
    track
        .append_group()
        .unwrap()
        .write_frame("still here".into())
        .unwrap();
    assert_eq!(first_frame_now(&mut sub).unwrap().unwrap(), "still here");
}

#[tokio::test]
async fn dropping_the_broadcast_ends_requests_and_consumers() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let mut consumer = broadcast.consume();
    let mut pending = consumer.subscribe_track(&Track::new("a")).unwrap();
    let mut other_consumer = consumer.clone();
    assert!(other_consumer.poll_closed(&mut noop_cx()).is_pending());

    drop(broadcast);
    // The request made while it was live still goes to the handler (its
    // peer answers it), then the requests end.
    let mut track = requests.requested_track().await.expect("handed over");
    assert!(requests.requested_track().await.is_none());
    track.append_group().unwrap().write_frame("late".into()).unwrap();
    assert_eq!(first_frame_now(&mut pending).unwrap().unwrap(), "late");
    assert_eq!(consumer.closed().await, Ok(()));
    assert_eq!(other_consumer.closed().await, Ok(()));
    assert_eq!(consumer.is_closed(), Some(Ok(())));
    assert_eq!(
        consumer.subscribe_track(&Track::new("b")).unwrap_err(),
        Error::NotFound
    );
}

#[tokio::test]
async fn a_request_queued_when_the_broadcast_ends_without_a_handler_is_not_found() {
    let broadcast = BroadcastProducer::new();
    let requests = broadcast.requests();
    let consumer = broadcast.consume();
    let mut pending = consumer.subscribe_track(&Track::new("a")).unwrap();
    drop(broadcast);
    // The handler leaves without taking it: nobody will answer.
    drop(requests);
    assert_eq!(pending.next_group().await.unwrap_err(), Error::NotFound);
}

#[tokio::test]
async fn dropping_one_of_cloned_producers_keeps_the_broadcast() {
    let broadcast = BroadcastProducer::new();
    let clone = broadcast.clone();
    let mut consumer = broadcast.consume();
    drop(broadcast);
    assert!(consumer.is_closed().is_none());
    assert!(consumer.poll_closed(&mut noop_cx()).is_pending());
    drop(clone);
    assert_eq!(consumer.closed().await, Ok(()));
}

#[tokio::test]
async fn abort_propagates_to_consumers() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let clone = broadcast.clone();
    let mut consumer = broadcast.consume();
    let mut pending = consumer.subscribe_track(&Track::new("a")).unwrap();

    broadcast.abort(Error::App(3));
    assert_eq!(consumer.closed().await, Err(Error::App(3)));
    assert_eq!(consumer.is_closed(), Some(Err(Error::App(3))));
    assert_eq!(
        consumer.subscribe_track(&Track::new("a")).unwrap_err(),
        Error::App(3)
    );
    assert!(requests.requested_track().await.is_none());
    assert_eq!(pending.next_group().await.unwrap_err(), Error::NotFound);
    // A remaining producer clone does not reopen it.
    drop(clone);
    assert_eq!(consumer.closed().await, Err(Error::App(3)));
}

#[test]
fn create_track_replaces_the_track_for_new_subscribers_only() {
    let broadcast = BroadcastProducer::new();
    let consumer = broadcast.consume();
    let old = broadcast.create_track(Track::new("t"));
    let old_sub = consumer.subscribe_track(&Track::new("t")).unwrap();
    let new = broadcast.create_track(Track::new("t"));
    let new_sub = consumer.subscribe_track(&Track::new("t")).unwrap();
    assert!(old_sub.is_same_track(&old.consume()));
    assert!(new_sub.is_same_track(&new.consume()));
    assert!(!old_sub.is_same_track(&new_sub));
}

#[test]
fn removed_track_is_not_found_for_new_subscribers() {
    let broadcast = BroadcastProducer::new();
    let consumer = broadcast.consume();
    let mut track = broadcast.create_track(Track::new("t"));
    let mut sub = consumer.subscribe_track(&Track::new("t")).unwrap();
    assert!(broadcast.remove_track("t"));
    assert!(!broadcast.remove_track("t"));
    assert_eq!(
        consumer.subscribe_track(&Track::new("t")).unwrap_err(),
        Error::NotFound
    );
    // The current subscriber keeps reading.
    track.append_group().unwrap().write_frame("x".into()).unwrap();
    assert_eq!(first_frame_now(&mut sub).unwrap().unwrap(), "x");
}

#[test]
fn ended_track_is_not_found_without_a_handler() {
    let broadcast = BroadcastProducer::new();
    let consumer = broadcast.consume();
    let track = broadcast.create_track(Track::new("t"));
    drop(track);
    assert_eq!(
        consumer.subscribe_track(&Track::new("t")).unwrap_err(),
        Error::NotFound
    );

    let aborted = broadcast.create_track(Track::new("u"));
    aborted.abort(Error::Cancel);
    assert_eq!(
        consumer.subscribe_track(&Track::new("u")).unwrap_err(),
        Error::NotFound
    );
}

#[test]
fn finished_track_is_history_even_with_a_handler() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let mut track = broadcast.create_track(Track::new("t"));
    let old = track.consume();
    for payload in ["a", "b"] {
        let mut group = track.append_group().unwrap();
        group.write_frame(bytes::Bytes::from(payload)).unwrap();
        group.finish().unwrap();
    }
    track.finish().unwrap();
    // A late subscriber reads what the finished track still holds, from the
    // start it asks for, then the end; nothing is requested again.
    let mut sub = consumer.subscribe_track_from(&Track::new("t"), Some(0)).unwrap();
    assert!(sub.is_same_track(&old));
    assert!(matches!(poll_request(&mut requests), Poll::Pending));
    let read = futures::executor::block_on(async {
        let mut frames = Vec::new();
        while let Some(mut group) = sub.next_group().await.unwrap() {
            while let Some(frame) = group.read_frame().await.unwrap() {
                frames.push(frame);
            }
        }
        frames
    });
    assert_eq!(read, ["a", "b"]);
}

#[test]
fn aborted_track_is_requested_again_with_a_handler() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let track = broadcast.create_track(Track::new("t"));
    let old = track.consume();
    track.abort(Error::Cancel);
    let sub = consumer.subscribe_track(&Track::new("t")).unwrap();
    assert!(!sub.is_same_track(&old));
    assert!(matches!(poll_request(&mut requests), Poll::Ready(Some(_))));
}

#[test]
fn a_requested_start_reaches_the_producer_side() {
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    let _late = consumer.subscribe_track_from(&Track::new("t"), Some(7)).unwrap();
    // A second requester before the request is served: the earliest start wins.
    let _earlier = consumer.subscribe_track_from(&Track::new("t"), Some(3)).unwrap();
    let _live = consumer.subscribe_track(&Track::new("t")).unwrap();
    let Poll::Ready(Some(track)) = poll_request(&mut requests) else {
        panic!("the track is requested");
    };
    assert_eq!(track.requested_start(), Some(3));
    assert!(matches!(poll_request(&mut requests), Poll::Pending));
    let plain = consumer.subscribe_track(&Track::new("u")).unwrap();
    let Poll::Ready(Some(track)) = poll_request(&mut requests) else {
        panic!("the track is requested");
    };
    assert_eq!(track.requested_start(), None);
    drop(plain);
}

#[test]
fn pending_requests_are_bounded() {
    let broadcast = BroadcastProducer::new();
    let _requests = broadcast.requests();
    let consumer = broadcast.consume();
    let subs: Vec<_> = (0..MAX_PENDING_TRACK_REQUESTS)
        .map(|i| consumer.subscribe_track(&Track::new(format!("t{i}"))).unwrap())
        .collect();
    assert_eq!(
        consumer.subscribe_track(&Track::new("one-more")).unwrap_err(),
        Error::Bounds
    );
    // A name already requested still dedupes.
    assert!(
        consumer
            .subscribe_track(&Track::new("t0"))
            .unwrap()
            .is_same_track(&subs[0])
    );
}

#[tokio::test]
async fn producer_sees_when_every_consumer_is_gone() {
    let mut broadcast = BroadcastProducer::new();
    assert!(broadcast.is_unused());
    let a = broadcast.consume();
    let b = a.clone();
    assert!(!broadcast.is_unused());
    assert!(broadcast.poll_unused(&mut noop_cx()).is_pending());
    drop(a);
    assert!(!broadcast.is_unused());
    assert!(broadcast.poll_unused(&mut noop_cx()).is_pending());
    drop(b);
    assert!(broadcast.is_unused());
    broadcast.unused().await;
}

#[tokio::test]
async fn unused_resolves_for_a_waiting_producer() {
    let mut broadcast = BroadcastProducer::new();
    let consumer = broadcast.consume();
    let clone = broadcast.clone();
    let waiter = tokio::spawn(async move {
        broadcast.unused().await;
    });
    tokio::task::yield_now().await;
    drop(consumer);
    waiter.await.unwrap();
    drop(clone);
}

#[test]
fn is_same_tells_broadcasts_apart() {
    let a = BroadcastProducer::new();
    let b = BroadcastProducer::new();
    assert!(a.consume().is_same(&a.consume()));
    assert!(a.consume().is_same(&a.clone().consume()));
    assert!(!a.consume().is_same(&b.consume()));
}

#[test]
fn broadcast_from_an_origin_serves_tracks_and_requests() {
    let origin = OriginProducer::new();
    let broadcast = origin.create_broadcast("room").unwrap();
    let mut requests = broadcast.requests();
    let track = broadcast.create_track(Track::new("video"));
    let found = origin.consume().consume_broadcast("room").unwrap();
    assert!(
        found
            .subscribe_track(&Track::new("video"))
            .unwrap()
            .is_same_track(&track.consume())
    );
    let _sub = found.subscribe_track(&Track::new("audio")).unwrap();
    assert!(matches!(poll_request(&mut requests), Poll::Ready(Some(_))));
}

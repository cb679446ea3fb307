//! The `poll_*` twins, driven by hand with a counting waker and no runtime:
//! `Pending` first, the waker is woken by the write, then `Ready`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use moq_lite::Error;
use moq_lite::bytes::Bytes;
use moq_lite::model::{BroadcastProducer, GroupProducer, OriginProducer, Track, TrackProducer};

/// A waker that counts how often it was woken.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct CountingWaker {
    counter: Arc<Counter>,
    waker: Waker,
}

impl CountingWaker {
    fn new() -> Self {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        CountingWaker { counter, waker }
    }

    fn cx(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }

    fn count(&self) -> usize {
        self.counter.0.load(Ordering::SeqCst)
    }
}

/// Runs `body` on its own thread and fails, instead of hanging the test run,
/// if it has not returned after a generous while (a deadlock).
fn without_deadlock(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(()) => thread.join().unwrap(),
        // The body panicked: report its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("deadlocked"),
    }
}

#[test]
fn poll_next_group_wakes_on_a_new_group() {
    let w = CountingWaker::new();
    let mut track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    // Polled again and again before anything happens: one wake later, not many.
    for _ in 0..10 {
        assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
    }
    assert_eq!(w.count(), 0);

    let _group = track.append_group().unwrap();
    assert_eq!(w.count(), 1);
    let Poll::Ready(Ok(Some(group))) = consumer.poll_next_group(&mut w.cx()) else {
        panic!("no group after the wake");
    };
    assert_eq!(group.sequence(), 0);
    assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
}

#[test]
fn poll_next_group_wakes_on_finish_and_abort() {
    let w = CountingWaker::new();
    let track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
    track.finish().unwrap();
    assert_eq!(w.count(), 1);
    assert!(matches!(
        consumer.poll_next_group(&mut w.cx()),
        Poll::Ready(Ok(None))
    ));

    let w = CountingWaker::new();
    let track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
    track.abort(Error::Cancel);
    assert_eq!(w.count(), 1);
    assert!(matches!(
        consumer.poll_next_group(&mut w.cx()),
        Poll::Ready(Err(Error::Cancel))
    ));
}

#[test]
fn poll_next_group_wakes_when_the_last_producer_drops() {
    let w = CountingWaker::new();
    let track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
    drop(track);
    assert_eq!(w.count(), 1);
    assert!(matches!(
        consumer.poll_next_group(&mut w.cx()),
        Poll::Ready(Ok(None))
    ));
}

#[test]
fn poll_next_group_latest_waker_is_the_one_woken() {
    let first = CountingWaker::new();
    let second = CountingWaker::new();
    let mut track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_next_group(&mut first.cx()).is_pending());
    assert!(consumer.poll_next_group(&mut second.cx()).is_pending());
    let _g = track.append_group().unwrap();
    assert_eq!(second.count(), 1);
    assert!(matches!(
        consumer.poll_next_group(&mut second.cx()),
        Poll::Ready(Ok(Some(_)))
    ));
}

#[test]
fn every_waiting_consumer_is_woken() {
    let wakers: Vec<_> = (0..5).map(|_| CountingWaker::new()).collect();
    let mut track = TrackProducer::new(Track::new("t"));
    let mut consumers: Vec<_> = (0..5).map(|_| track.consume()).collect();
    for (c, w) in consumers.iter_mut().zip(&wakers) {
        assert!(c.poll_next_group(&mut w.cx()).is_pending());
    }
    let _g = track.append_group().unwrap();
    for (c, w) in consumers.iter_mut().zip(&wakers) {
        assert_eq!(w.count(), 1);
        assert!(matches!(c.poll_next_group(&mut w.cx()), Poll::Ready(Ok(Some(_)))));
    }
}

#[test]
fn poll_read_frame_wakes_on_a_frame_then_on_finish() {
    let w = CountingWaker::new();
    let mut group = GroupProducer::new(0);
    let mut reader = group.consume();
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());

    group.write_frame(Bytes::from_static(b"one")).unwrap();
    assert_eq!(w.count(), 1);
    assert!(matches!(reader.poll_read_frame(&mut w.cx()), Poll::Ready(Ok(Some(f))) if f == "one"));
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());

    group.finish().unwrap();
    assert_eq!(w.count(), 2);
    assert!(matches!(
        reader.poll_read_frame(&mut w.cx()),
        Poll::Ready(Ok(None))
    ));
}

#[test]
fn poll_read_frame_waits_for_a_chunked_frame_to_complete() {
    let w = CountingWaker::new();
    let mut group = GroupProducer::new(0);
    let mut reader = group.consume();
    let mut frame = group.create_frame(6).unwrap();
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());
    frame.write(Bytes::from_static(b"abc")).unwrap();
    // Woken (something changed), but the frame is not whole yet.
    assert!(w.count() >= 1);
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());
    let before = w.count();
    frame.write(Bytes::from_static(b"def")).unwrap();
    assert!(w.count() > before);
    assert!(matches!(reader.poll_read_frame(&mut w.cx()), Poll::Ready(Ok(Some(f))) if f == "abcdef"));
}

#[test]
fn poll_read_frame_wakes_on_abort() {
    let w = CountingWaker::new();
    let group = GroupProducer::new(0);
    let mut reader = group.consume();
    assert!(reader.poll_read_frame(&mut w.cx()).is_pending());
    group.abort(Error::App(1));
    assert_eq!(w.count(), 1);
    assert!(matches!(
        reader.poll_read_frame(&mut w.cx()),
        Poll::Ready(Err(Error::App(1)))
    ));
}

#[test]
fn poll_next_frame_wakes_when_a_frame_starts() {
    without_deadlock(|| {
        let w = CountingWaker::new();
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        assert!(reader.poll_next_frame(&mut w.cx()).is_pending());

        let _frame = group.create_frame(4).unwrap();
        assert_eq!(w.count(), 1);
        let Poll::Ready(Ok(Some(frame))) = reader.poll_next_frame(&mut w.cx()) else {
            panic!("no frame after the wake");
        };
        assert_eq!(frame.size(), 4);
        assert!(reader.poll_next_frame(&mut w.cx()).is_pending());
    });
}

#[test]
fn poll_read_chunk_wakes_on_each_chunk() {
    without_deadlock(|| {
        let w = CountingWaker::new();
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut writer = group.create_frame(5).unwrap();
        let Poll::Ready(Ok(Some(mut frame))) = reader.poll_next_frame(&mut w.cx()) else {
            panic!("no frame");
        };
        assert!(frame.poll_read_chunk(&mut w.cx()).is_pending());

        writer.write(Bytes::from_static(b"he")).unwrap();
        assert_eq!(w.count(), 1);
        assert!(matches!(frame.poll_read_chunk(&mut w.cx()), Poll::Ready(Ok(Some(c))) if c == "he"));
        assert!(frame.poll_read_chunk(&mut w.cx()).is_pending());

        writer.write(Bytes::from_static(b"llo")).unwrap();
        assert_eq!(w.count(), 2);
        assert!(matches!(frame.poll_read_chunk(&mut w.cx()), Poll::Ready(Ok(Some(c))) if c == "llo"));
        // Every declared byte read: the end, without waiting.
        assert!(matches!(
            frame.poll_read_chunk(&mut w.cx()),
            Poll::Ready(Ok(None))
        ));
    });
}

#[test]
fn poll_read_chunk_wakes_on_a_short_frame() {
    without_deadlock(|| {
        let w = CountingWaker::new();
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut writer = group.create_frame(5).unwrap();
        let Poll::Ready(Ok(Some(mut frame))) = reader.poll_next_frame(&mut w.cx()) else {
            panic!("no frame");
        };
        writer.write(Bytes::from_static(b"ab")).unwrap();
        assert!(matches!(
            frame.poll_read_chunk(&mut w.cx()),
            Poll::Ready(Ok(Some(_)))
        ));
        assert!(frame.poll_read_chunk(&mut w.cx()).is_pending());
        let before = w.count();
        drop(writer);
        assert!(w.count() > before);
        assert!(matches!(
            frame.poll_read_chunk(&mut w.cx()),
            Poll::Ready(Err(Error::WrongSize))
        ));
    });
}

#[test]
fn poll_read_all_wakes_when_the_frame_completes() {
    without_deadlock(|| {
        let w = CountingWaker::new();
        let mut group = GroupProducer::new(0);
        let mut reader = group.consume();
        let mut writer = group.create_frame(4).unwrap();
        let Poll::Ready(Ok(Some(mut frame))) = reader.poll_next_frame(&mut w.cx()) else {
            panic!("no frame");
        };
        assert!(frame.poll_read_all(&mut w.cx()).is_pending());
        writer.write(Bytes::from_static(b"ab")).unwrap();
        assert!(frame.poll_read_all(&mut w.cx()).is_pending());
        let before = w.count();
        writer.write(Bytes::from_static(b"cd")).unwrap();
        assert!(w.count() > before);
        assert!(matches!(frame.poll_read_all(&mut w.cx()), Poll::Ready(Ok(b)) if b == "abcd"));
    });
}

#[test]
fn track_poll_unused_wakes_when_the_last_consumer_drops() {
    let w = CountingWaker::new();
    let mut track = TrackProducer::new(Track::new("t"));
    assert!(track.poll_unused(&mut w.cx()).is_ready());
    let a = track.consume();
    let b = a.clone();
    assert!(track.poll_unused(&mut w.cx()).is_pending());
    drop(a);
    assert_eq!(w.count(), 0);
    assert!(track.poll_unused(&mut w.cx()).is_pending());
    drop(b);
    assert_eq!(w.count(), 1);
    assert!(track.poll_unused(&mut w.cx()).is_ready());
    assert!(track.is_unused());
}

#[test]
fn group_poll_unused_wakes_when_the_last_consumer_drops() {
    let w = CountingWaker::new();
    let mut group = GroupProducer::new(0);
    let reader = group.consume();
    assert!(group.poll_unused(&mut w.cx()).is_pending());
    drop(reader);
    assert_eq!(w.count(), 1);
    assert!(group.poll_unused(&mut w.cx()).is_ready());
    assert!(group.is_unused());
}

#[test]
fn broadcast_poll_unused_wakes_when_the_last_consumer_drops() {
    let w = CountingWaker::new();
    let mut broadcast = BroadcastProducer::new();
    let consumer = broadcast.consume();
    assert!(broadcast.poll_unused(&mut w.cx()).is_pending());
    drop(consumer);
    assert_eq!(w.count(), 1);
    assert!(broadcast.poll_unused(&mut w.cx()).is_ready());
}

#[test]
fn poll_announced_wakes_on_publish_and_on_end() {
    let w = CountingWaker::new();
    let origin = OriginProducer::new();
    let mut consumer = origin.consume();
    assert!(consumer.poll_announced(&mut w.cx()).is_pending());
    assert!(consumer.poll_announced(&mut w.cx()).is_pending());

    let broadcast = origin.create_broadcast("a").unwrap();
    assert_eq!(w.count(), 1);
    let Poll::Ready(Some(a)) = consumer.poll_announced(&mut w.cx()) else {
        panic!("no announcement after the wake");
    };
    assert!(a.broadcast.is_some());
    assert!(consumer.poll_announced(&mut w.cx()).is_pending());

    drop(broadcast);
    assert_eq!(w.count(), 2);
    assert!(matches!(consumer.poll_announced(&mut w.cx()), Poll::Ready(Some(a)) if a.broadcast.is_none()));
    assert!(consumer.poll_announced(&mut w.cx()).is_pending());

    drop(origin);
    assert_eq!(w.count(), 3);
    assert!(matches!(consumer.poll_announced(&mut w.cx()), Poll::Ready(None)));
}

#[test]
fn poll_requested_track_wakes_on_a_request_and_on_the_end() {
    let w = CountingWaker::new();
    let broadcast = BroadcastProducer::new();
    let mut requests = broadcast.requests();
    let consumer = broadcast.consume();
    assert!(requests.poll_requested_track(&mut w.cx()).is_pending());

    let _sub = consumer.subscribe_track(&Track::new("a")).unwrap();
    assert_eq!(w.count(), 1);
    let Poll::Ready(Some(track)) = requests.poll_requested_track(&mut w.cx()) else {
        panic!("no request after the wake");
    };
    assert_eq!(track.info().name, "a");
    assert!(requests.poll_requested_track(&mut w.cx()).is_pending());

    drop(broadcast);
    assert_eq!(w.count(), 2);
    assert!(matches!(
        requests.poll_requested_track(&mut w.cx()),
        Poll::Ready(None)
    ));
}

#[test]
fn broadcast_poll_closed_wakes_on_the_end() {
    let w = CountingWaker::new();
    let broadcast = BroadcastProducer::new();
    let mut consumer = broadcast.consume();
    assert!(consumer.poll_closed(&mut w.cx()).is_pending());
    drop(broadcast);
    assert_eq!(w.count(), 1);
    assert!(matches!(consumer.poll_closed(&mut w.cx()), Poll::Ready(Ok(()))));

    let w = CountingWaker::new();
    let broadcast = BroadcastProducer::new();
    let mut consumer = broadcast.consume();
    assert!(consumer.poll_closed(&mut w.cx()).is_pending());
    broadcast.abort(Error::Timeout);
    assert_eq!(w.count(), 1);
    assert!(matches!(
        consumer.poll_closed(&mut w.cx()),
        Poll::Ready(Err(Error::Timeout))
    ));
}

#[test]
fn track_poll_closed_wakes_on_the_end() {
    let w = CountingWaker::new();
    let track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_closed(&mut w.cx()).is_pending());
    track.abort(Error::Old);
    assert!(w.count() >= 1);
    assert!(matches!(
        consumer.poll_closed(&mut w.cx()),
        Poll::Ready(Err(Error::Old))
    ));
}

#[test]
fn group_poll_closed_wakes_on_the_end() {
    let w = CountingWaker::new();
    let mut group = GroupProducer::new(0);
    let mut reader = group.consume();
    assert!(reader.poll_closed(&mut w.cx()).is_pending());
    group.write_frame(Bytes::from_static(b"x")).unwrap();
    // A frame is not the end.
    assert!(reader.poll_closed(&mut w.cx()).is_pending());
    let before = w.count();
    group.finish().unwrap();
    assert!(w.count() > before);
    assert!(matches!(reader.poll_closed(&mut w.cx()), Poll::Ready(Ok(()))));
}

#[test]
fn wakers_are_woken_from_another_thread() {
    let w = CountingWaker::new();
    let mut track = TrackProducer::new(Track::new("t"));
    let mut consumer = track.consume();
    assert!(consumer.poll_next_group(&mut w.cx()).is_pending());
    std::thread::spawn(move || {
        track
            .append_group()
            .unwrap()
            .write_frame(Bytes::from_static(b"x"))
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(w.count(), 1);
    assert!(matches!(
        consumer.poll_next_group(&mut w.cx()),
        Poll::Ready(Ok(Some(_)))
    ));
}

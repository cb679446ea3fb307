//! Properties of the track cache under random sequences of operations, with
//! a small cache and virtual (paused) time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use moq_lite::Error;
use moq_lite::bytes::Bytes;
use moq_lite::model::{CacheConfig, GroupConsumer, GroupProducer, Track, TrackConsumer, TrackProducer};
use proptest::prelude::*;
use tokio::time::Instant;

const CONFIG: CacheConfig = CacheConfig {
    max_age: Duration::from_millis(100),
    max_bytes: 4096,
    max_group_bytes: 1024,
    max_group_frames: 8,
};

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Runs `body` on a current-thread runtime whose clock only moves when told.
fn paused<F: std::future::Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(body)
}

#[derive(Debug, Clone)]
enum Op {
    AppendGroup,
    CreateGroup(u64),
    WriteFrame { group: usize, size: usize },
    FinishGroup(usize),
    AdvanceTime(u64),
    Subscribe(Option<u64>),
    Poll(usize),
    DropConsumer(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::AppendGroup),
        3 => (0..40u64).prop_map(Op::CreateGroup),
        6 => (any::<usize>(), 0..600usize).prop_map(|(group, size)| Op::WriteFrame { group, size }),
        2 => any::<usize>().prop_map(Op::FinishGroup),
        2 => (0..80u64).prop_map(Op::AdvanceTime),
        1 => proptest::option::of(0..40u64).prop_map(Op::Subscribe),
        4 => any::<usize>().prop_map(Op::Poll),
        1 => any::<usize>().prop_map(Op::DropConsumer),
    ]
}

/// A group the model knows was created.
struct Created {
    arrival: u64,
    at: Instant,
    frames: u64,
    bytes: u64,
}

struct Reader {
    consumer: TrackConsumer,
    /// Sequences below this must not be delivered.
    start: Option<u64>,
    seen: HashSet<u64>,
    last_arrival: Option<u64>,
    /// Groups being read, with the index of the next frame.
    reading: Vec<(GroupConsumer, usize)>,
    /// Model of the consumer's cursor (an arrival number) and skip count.
    cursor: u64,
    skipped: u64,
    /// An explicit start reads the groups held at its first read in
    /// sequence order first: `Some(None)` until that read.
    catch_up: Option<Option<VecDeque<u64>>>,
}

struct Harness {
    track: TrackProducer,
    observer: TrackConsumer,
    writers: Vec<GroupProducer>,
    created: BTreeMap<u64, Created>,
    by_arrival: Vec<u64>,
    highest: Option<u64>,
    readers: Vec<Reader>,
    /// Address and length of every frame written, by (sequence, index).
    written: HashMap<(u64, usize), (usize, usize)>,
    check_skipped: bool,
}

impl Harness {
    fn new(check_skipped: bool) -> Self {
        let track = TrackProducer::with_cache(Track::new("t"), CONFIG);
        let observer = track.consume();
        let mut harness = Harness {
            track,
            observer,
            writers: Vec::new(),
            created: BTreeMap::new(),
            by_arrival: Vec::new(),
            highest: None,
            readers: Vec::new(),
            written: HashMap::new(),
            check_skipped,
        };
        harness.subscribe(None);
        harness
    }

    fn subscribe(&mut self, from: Option<u64>) {
        let (consumer, start) = match from {
            Some(seq) => (self.track.consume_from(seq), Some(seq)),
            None => (self.track.consume(), self.track.latest()),
        };
        // A new consumer starts at the oldest group held.
        let cursor = self
            .by_arrival
            .iter()
            .position(|seq| self.observer.group(*seq).is_some())
            .unwrap_or(self.by_arrival.len()) as u64;
        self.readers.push(Reader {
            consumer,
            start,
            seen: HashSet::new(),
            last_arrival: None,
            reading: Vec::new(),
            cursor,
            skipped: 0,
            catch_up: from.map(|_| None),
        });
    }

    fn created(&mut self, result: moq_lite::Result<GroupProducer>, sequence: Option<u64>) {
        let was_new = sequence.is_none_or(|s| !self.created.contains_key(&s));
        let above = sequence.is_none_or(|s| self.highest.is_none_or(|h| s > h));
        match result {
            Ok(group) => {
                let seq = group.sequence();
                if let Some(s) = sequence {
                    assert_eq!(seq, s);
                }
                assert!(!self.created.contains_key(&seq), "group {seq} created twice");
                self.created.insert(
                    seq,
                    Created {
                        arrival: self.by_arrival.len() as u64,
                        at: Instant::now(),
                        frames: 0,
                        bytes: 0,
                    },
                );
                self.by_arrival.push(seq);
                self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
                self.writers.push(group);
                self.check_expired();
            }
            Err(err) => {
                assert!(matches!(err, Error::Duplicate | Error::Old), "{err:?}");
                if err == Error::Duplicate {
                    assert!(!was_new, "fresh sequence {sequence:?} refused as a duplicate");
                }
                // A new highest sequence is always accepted.
                assert!(!(was_new && above), "new latest {sequence:?} refused: {err:?}");
            }
        }
    }

    /// Every group a newer group has outlived by more than `max_age` is gone.
    fn check_expired(&self) {
        let now = Instant::now();
        let mut newer_since: Option<Instant> = None;
        for (seq, created) in self.created.iter().rev() {
            if let Some(since) = newer_since {
                if now.duration_since(since) > CONFIG.max_age {
                    assert!(
                        self.observer.group(*seq).is_none(),
                        "group {seq} outlived max_age"
                    );
                }
            }
            newer_since = Some(newer_since.map_or(created.at, |t| t.min(created.at)));
        }
    }

    fn write(&mut self, index: usize, size: usize) {
        if self.writers.is_empty() {
            return;
        }
        let i = index % self.writers.len();
        let seq = self.writers[i].sequence();
        let payload = Bytes::from(vec![(seq % 251) as u8; size]);
        let address = payload.as_ptr() as usize;
        let info = &self.created[&seq];
        let fits =
            info.frames < CONFIG.max_group_frames && info.bytes + size as u64 <= CONFIG.max_group_bytes;
        match self.writers[i].write_frame(payload) {
            Ok(()) => {
                assert!(fits, "group {seq} accepted a frame past its bounds");
                let info = self.created.get_mut(&seq).unwrap();
                self.written.insert((seq, info.frames as usize), (address, size));
                info.frames += 1;
                info.bytes += size as u64;
            }
            Err(err) => {
                assert!(matches!(err, Error::Old | Error::CacheFull), "{err:?}");
                if err == Error::CacheFull {
                    assert!(!fits, "group {seq} refused a frame within its bounds");
                }
                self.writers.swap_remove(i);
            }
        }
    }

    fn poll(&mut self, index: usize) {
        if self.readers.is_empty() {
            return;
        }
        let i = index % self.readers.len();
        let total = self.by_arrival.len() as u64;
        loop {
            let polled = self.readers[i].consumer.poll_next_group(&mut noop_cx());
            let reader = &mut self.readers[i];
            if let (Some(None), Some(start)) = (&reader.catch_up, reader.start) {
                // The first read lists what is held from the start; what
                // arrived since the consumer began and is gone was skipped.
                for arrival in reader.cursor..total {
                    let seq = self.by_arrival[arrival as usize];
                    if seq >= start && self.observer.group(seq).is_none() {
                        reader.skipped += 1;
                    }
                }
                let held = self.created.range(start..).map(|(seq, _)| *seq);
                let held = held.filter(|seq| self.observer.group(*seq).is_some()).collect();
                reader.catch_up = Some(Some(held));
                reader.cursor = total;
            }
            if let Some(Some(list)) = &mut reader.catch_up {
                // Groups evicted before their turn are skipped.
                while list
                    .front()
                    .is_some_and(|seq| self.observer.group(*seq).is_none())
                {
                    list.pop_front();
                    reader.skipped += 1;
                }
                if let Some(expected) = list.pop_front() {
                    let Poll::Ready(Ok(Some(group))) = polled else {
                        panic!("held group {expected} not delivered: {polled:?}");
                    };
                    assert_eq!(group.sequence(), expected, "held groups out of sequence order");
                    assert!(reader.seen.insert(expected), "group {expected} delivered twice");
                    reader.reading.push((group, 0));
                    if self.check_skipped {
                        assert_eq!(reader.consumer.skipped(), reader.skipped, "skipped() miscounts");
                    }
                    continue;
                }
                reader.catch_up = Some(Some(VecDeque::new()));
            }
            let until = match polled {
                Poll::Ready(Ok(Some(group))) => {
                    let seq = group.sequence();
                    assert!(reader.seen.insert(seq), "group {seq} delivered twice");
                    if let Some(start) = reader.start {
                        assert!(seq >= start, "group {seq} delivered below start {start}");
                    }
                    let arrival = self.created.get(&seq).expect("unknown group").arrival;
                    assert!(
                        reader.last_arrival.is_none_or(|a| arrival > a),
                        "group {seq} delivered out of arrival order"
                    );
                    reader.last_arrival = Some(arrival);
                    reader.reading.push((group, 0));
                    Some(arrival)
                }
                Poll::Pending => None,
                other => panic!("unexpected {other:?}"),
            };
            // What the consumer passed over must have been evicted, and only
            // groups it would have read count as skipped.
            let end = until.unwrap_or(total);
            for arrival in reader.cursor..end {
                let seq = self.by_arrival[arrival as usize];
                if reader.start.is_none_or(|s| seq >= s) {
                    assert!(self.observer.group(seq).is_none(), "held group {seq} skipped");
                    reader.skipped += 1;
                }
            }
            reader.cursor = until.map_or(total, |a| a + 1);
            if self.check_skipped {
                assert_eq!(reader.consumer.skipped(), reader.skipped, "skipped() miscounts");
            }
            if until.is_none() {
                break;
            }
        }
        self.check_expired();
        self.read_frames(i);
    }

    /// Reads what is ready of the groups a reader holds; payloads must be the
    /// very bytes written (never copied).
    fn read_frames(&mut self, i: usize) {
        let written = &self.written;
        self.readers[i].reading.retain_mut(|(group, next)| {
            loop {
                match group.poll_read_frame(&mut noop_cx()) {
                    Poll::Ready(Ok(Some(frame))) => {
                        let (address, len) = written[&(group.sequence(), *next)];
                        assert_eq!(frame.len(), len);
                        if len > 0 {
                            assert_eq!(frame.as_ptr() as usize, address, "payload copied");
                        }
                        *next += 1;
                    }
                    Poll::Ready(Ok(None)) => return false,
                    Poll::Ready(Err(err)) => {
                        assert!(matches!(err, Error::Old | Error::CacheFull), "{err:?}");
                        return false;
                    }
                    Poll::Pending => return true,
                }
            }
        });
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::AppendGroup => {
                let expected = self.highest.map_or(0, |h| h + 1);
                let result = self.track.append_group();
                assert_eq!(result.as_ref().map(|g| g.sequence()).ok(), Some(expected));
                self.created(result, None);
            }
            Op::CreateGroup(seq) => {
                let result = self.track.create_group(seq);
                self.created(result, Some(seq));
            }
            Op::WriteFrame { group, size } => self.write(group, size),
            Op::FinishGroup(index) => {
                if !self.writers.is_empty() {
                    let group = self.writers.swap_remove(index % self.writers.len());
                    if let Err(err) = group.finish() {
                        assert!(matches!(err, Error::Old | Error::CacheFull), "{err:?}");
                    }
                }
            }
            Op::AdvanceTime(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
            Op::Subscribe(from) => self.subscribe(from),
            Op::Poll(index) => self.poll(index),
            Op::DropConsumer(index) => {
                if !self.readers.is_empty() {
                    self.readers.swap_remove(index % self.readers.len());
                }
            }
        }
    }

    fn check(&self) {
        let stats = self.track.cache_stats();
        assert!(stats.bytes <= CONFIG.max_bytes, "{stats:?}");
        if let Some(highest) = self.highest {
            let latest = self.observer.latest_group().expect("latest group evicted");
            assert_eq!(latest.sequence(), highest);
            assert_eq!(self.track.latest(), Some(highest));
            assert_eq!(self.observer.latest(), Some(highest));
            assert!(stats.groups >= 1);
        } else {
            assert!(self.observer.latest_group().is_none());
        }
    }
}

fn run(ops: &[Op], check_skipped: bool) {
    paused(async {
        let mut harness = Harness::new(check_skipped);
        for op in ops {
            harness.apply(op).await;
            harness.check();
        }
        // Every reader can drain what is left.
        for i in 0..harness.readers.len() {
            harness.poll(i);
        }
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Bytes stay bounded, the latest group stays readable, and no consumer
    /// sees a group twice, out of arrival order, or below its start.
    #[test]
    fn cache_bounds_hold_and_consumers_never_repeat_or_go_below_start(
        ops in proptest::collection::vec(op(), 1..150)
    ) {
        run(&ops, false);
    }
}

proptest! {
    #![proptest_config(config())]

    /// `skipped()` counts exactly the evicted groups the consumer would have read.
    #[test]
    fn skipped_counts_only_evicted_groups_the_consumer_would_have_read(
        ops in proptest::collection::vec(op(), 1..150)
    ) {
        run(&ops, true);
    }
}

#[test]
fn consumer_starting_at_the_latest_skips_nothing_when_older_groups_expire() {
    paused(async {
        let mut track = TrackProducer::with_cache(Track::new("t"), CONFIG);
        for _ in 0..3 {
            track.append_group().unwrap();
        }
        let mut consumer = track.consume();
        tokio::time::advance(Duration::from_millis(150)).await;
        // Groups 0 and 1 expire; the consumer never wanted them.
        track.append_group().unwrap();
        let group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.sequence(), 2);
        assert_eq!(consumer.skipped(), 0);
    });
}

#[test]
fn slow_consumer_skips_evicted_groups_and_says_how_many() {
    paused(async {
        let mut track = TrackProducer::with_cache(Track::new("t"), CONFIG);
        let mut slow = track.consume_from(0);
        let mut fast = track.consume_from(0);
        let mut fast_seen = 0;
        for _ in 0..100 {
            let mut group = track.append_group().unwrap();
            group.write_frame(Bytes::from(vec![0u8; 500])).unwrap();
            group.finish().unwrap();
            // The fast consumer keeps up; the slow one is never polled.
            while let Poll::Ready(Ok(Some(_))) = fast.poll_next_group(&mut noop_cx()) {
                fast_seen += 1;
            }
        }
        assert_eq!(fast_seen, 100);
        assert_eq!(fast.skipped(), 0);

        // 4096 bytes hold at most 8 groups of 500: the rest was evicted.
        let mut seen = Vec::new();
        while let Poll::Ready(Ok(Some(group))) = slow.poll_next_group(&mut noop_cx()) {
            seen.push(group.sequence());
        }
        assert!(!seen.is_empty() && seen.len() <= 8, "{seen:?}");
        assert_eq!(seen.last(), Some(&99));
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(slow.skipped() + seen.len() as u64, 100);
        assert_eq!(slow.skipped(), seen[0]);
    });
}

#[test]
fn groups_expire_once_a_newer_group_is_older_than_max_age_but_the_latest_stays() {
    paused(async {
        let mut track = TrackProducer::with_cache(Track::new("t"), CONFIG);
        let observer = track.consume();
        track.append_group().unwrap();
        tokio::time::advance(Duration::from_millis(50)).await;
        track.append_group().unwrap();
        tokio::time::advance(Duration::from_millis(90)).await;
        track.append_group().unwrap();
        // Group 1 has existed for 90ms: group 0 stays.
        assert!(observer.group(0).is_some());
        tokio::time::advance(Duration::from_millis(30)).await;
        track.append_group().unwrap();
        // Group 1 has existed for 120ms: group 0 is gone. Group 2 only 30ms: group 1 stays.
        assert!(observer.group(0).is_none());
        assert!(observer.group(1).is_some());
        assert!(observer.group(2).is_some());
        assert!(observer.group(3).is_some());

        // Time alone never evicts the latest group.
        tokio::time::advance(Duration::from_secs(3600)).await;
        let mut late = track.consume();
        assert_eq!(late.next_group().await.unwrap().unwrap().sequence(), 3);
        assert_eq!(observer.latest_group().unwrap().sequence(), 3);

        // An evicted sequence cannot come back.
        assert_eq!(track.create_group(0).unwrap_err(), Error::Old);
    });
}

#[test]
fn a_late_group_older_than_max_age_is_refused() {
    paused(async {
        let mut track = TrackProducer::with_cache(Track::new("t"), CONFIG);
        track.create_group(10).unwrap();
        tokio::time::advance(Duration::from_millis(150)).await;
        // Group 5 would have been superseded by 10 for 150ms already.
        assert_eq!(track.create_group(5).unwrap_err(), Error::Old);
        assert_eq!(track.create_group(10).unwrap_err(), Error::Duplicate);
        assert_eq!(track.append_group().unwrap().sequence(), 11);
    });
}

//! Fan-out of one track to `N` consumers.
//!
//! One [`TrackProducer`] writes groups of [`FRAMES_PER_GROUP`] frames; `N`
//! [`TrackConsumer`]s read every frame. A "delivered frame" is one frame read
//! by one consumer, so an iteration that writes `F` frames delivers `F * N`
//! and criterion's `Throughput::Elements(F * N)` reports delivered frames/s.
//!
//! Three groups:
//!
//! - `poll_group`: per iteration the producer writes one whole group (append,
//!   30 frames, finish), then each consumer is polled until `Pending`. This
//!   is the model's best case: each consumer reads a run of frames in a row
//!   and waits once per group, on the track.
//! - `poll_frame`: per iteration the producer writes one frame (a new group
//!   every 30), then each consumer is polled until `Pending`. The live case:
//!   every frame wakes every consumer, which then registers its waker again.
//! - `tokio_group`: `poll_group` with real tasks: `N` consumer tasks await
//!   `next_group`/`read_frame` on a current-thread runtime, so the difference
//!   from `poll_group` is the cost of the async layer (task wake-ups and
//!   scheduling).
//!
//! The poll groups run on the bench thread with the `poll_*` twins and one
//! counting waker per consumer (what a task's waker costs at least: an `Arc`
//! clone to register, an atomic add to wake), so the model is what is
//! measured, not an executor. The payload is one pre-allocated [`Bytes`]
//! cloned per frame, so no payload is allocated or copied per frame.
//!
//! The track's cache keeps [`CACHED_GROUPS`] groups' worth of bytes, so its
//! size is the same at every iteration (a live track in steady state).
//!
//! Every consumer checks each iteration that it read exactly the frames just
//! written (one integer compare, inside the timed loop); after each benchmark
//! the totals are checked against what was written and the wake-ups per
//! delivered frame are printed.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use moq_lite::model::{CacheConfig, GroupConsumer, GroupProducer, Track, TrackConsumer, TrackProducer};

/// Frames per group: a new group (a "keyframe") every 30 frames.
const FRAMES_PER_GROUP: u64 = 30;
/// How many groups' worth of bytes the track's cache keeps.
const CACHED_GROUPS: u64 = 8;
/// Consumers per track in the poll groups.
const CONSUMERS: [usize; 4] = [1, 10, 100, 1000];
/// Consumers per track in the tokio group.
const TASKS: [usize; 2] = [1, 100];
/// Frame payload sizes, in bytes.
const SIZES: [usize; 2] = [100, 10 * 1024];

/// Writes frames to one track, starting a group every [`FRAMES_PER_GROUP`]
/// frames and finishing it after its last frame.
struct Writer {
    track: Option<TrackProducer>,
    group: Option<GroupProducer>,
    payload: Bytes,
    written: u64,
}

impl Writer {
    fn new(size: usize) -> Self {
        let config = CacheConfig {
            max_bytes: CACHED_GROUPS * FRAMES_PER_GROUP * size as u64,
            ..CacheConfig::default()
        };
        Writer {
            track: Some(TrackProducer::with_cache(Track::new("bench"), config)),
            group: None,
            payload: Bytes::from(vec![0x5a; size]),
            written: 0,
        }
    }

    fn consume(&self) -> TrackConsumer {
        self.track.as_ref().expect("track finished").consume()
    }

    fn write(&mut self, frames: u64) {
        for _ in 0..frames {
            if self.written % FRAMES_PER_GROUP == 0 {
                let track = self.track.as_mut().expect("track finished");
                self.group = Some(track.append_group().expect("append_group"));
            }
            let group = self.group.as_mut().expect("no open group");
            group.write_frame(self.payload.clone()).expect("write_frame");
            self.written += 1;
            if self.written % FRAMES_PER_GROUP == 0 {
                self.group
                    .take()
                    .expect("no open group")
                    .finish()
                    .expect("finish");
            }
        }
    }

    /// Ends the track, so that consumers see its end.
    fn finish(&mut self) {
        if let Some(group) = self.group.take() {
            group.finish().expect("finish");
        }
        self.track
            .take()
            .expect("track finished")
            .finish()
            .expect("finish");
    }
}

/// A waker that counts its wake-ups: the least a task's waker costs.
#[derive(Default)]
struct CountingWaker(AtomicU64);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One consumer driven by hand through the `poll_*` twins.
struct Reader {
    track: TrackConsumer,
    group: Option<GroupConsumer>,
    waker: Waker,
    wakes: Arc<CountingWaker>,
    frames: u64,
}

impl Reader {
    fn new(track: TrackConsumer) -> Self {
        let wakes = Arc::new(CountingWaker::default());
        Reader {
            track,
            group: None,
            waker: Waker::from(wakes.clone()),
            wakes,
            frames: 0,
        }
    }

    /// Reads until nothing is ready; returns the frames read.
    fn drain(&mut self) -> u64 {
        let mut cx = Context::from_waker(&self.waker);
        let mut read = 0;
        loop {
            if let Some(group) = &mut self.group {
                match group.poll_read_frame(&mut cx) {
                    Poll::Ready(Ok(Some(frame))) => {
                        black_box(frame);
                        read += 1;
                        continue;
                    }
                    Poll::Ready(Ok(None)) => self.group = None,
                    Poll::Ready(Err(err)) => panic!("read_frame: {err}"),
                    Poll::Pending => break,
                }
            }
            match self.track.poll_next_group(&mut cx) {
                Poll::Ready(Ok(Some(group))) => self.group = Some(group),
                Poll::Ready(Ok(None)) | Poll::Pending => break,
                Poll::Ready(Err(err)) => panic!("next_group: {err}"),
            }
        }
        self.frames += read;
        read
    }
}

/// The poll groups: `frames` frames written per iteration.
fn poll_fanout(group: &mut BenchmarkGroup<'_, WallTime>, frames: u64) {
    for size in SIZES {
        for n in CONSUMERS {
            let mut writer = Writer::new(size);
            let mut readers: Vec<Reader> = (0..n).map(|_| Reader::new(writer.consume())).collect();

            group.throughput(Throughput::Elements(frames * n as u64));
            group.bench_function(BenchmarkId::new(format!("{size}B"), n), |b| {
                b.iter(|| {
                    writer.write(frames);
                    for reader in &mut readers {
                        assert_eq!(reader.drain(), frames, "a consumer missed frames");
                    }
                })
            });

            // Outside the timed region: everything delivered, nothing skipped.
            writer.finish();
            let mut wakes = 0;
            for reader in &mut readers {
                assert_eq!(reader.drain(), 0);
                assert_eq!(reader.frames, writer.written, "a consumer missed frames");
                assert_eq!(reader.track.skipped(), 0, "a consumer skipped groups");
                wakes += reader.wakes.0.load(Ordering::Relaxed);
            }
            let delivered = writer.written * n as u64;
            println!(
                "  check: {n} consumers x {} frames delivered, {:.3} wake-ups per delivered frame",
                writer.written,
                wakes as f64 / delivered as f64
            );
        }
    }
}

fn poll_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_group");
    poll_fanout(&mut group, FRAMES_PER_GROUP);
    group.finish();
}

fn poll_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_frame");
    poll_fanout(&mut group, 1);
    group.finish();
}

/// Reads the whole track in a task; returns the frames read.
async fn read_track(mut track: TrackConsumer, groups_done: Arc<AtomicU64>) -> u64 {
    let mut frames = 0;
    while let Some(mut group) = track.next_group().await.expect("next_group") {
        while let Some(frame) = group.read_frame().await.expect("read_frame") {
            black_box(frame);
            frames += 1;
        }
        groups_done.fetch_add(1, Ordering::Release);
    }
    frames
}

fn tokio_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("tokio_group");
    for size in SIZES {
        for n in TASKS {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let mut writer = Writer::new(size);
            let groups_done = Arc::new(AtomicU64::new(0));
            let tasks: Vec<_> = (0..n)
                .map(|_| rt.spawn(read_track(writer.consume(), groups_done.clone())))
                .collect();

            group.throughput(Throughput::Elements(FRAMES_PER_GROUP * n as u64));
            group.bench_function(BenchmarkId::new(format!("{size}B"), n), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            writer.write(FRAMES_PER_GROUP);
                            // Every task has read the group once `groups_done`
                            // reaches one per task per group written.
                            let target = writer.written / FRAMES_PER_GROUP * n as u64;
                            while groups_done.load(Ordering::Acquire) < target {
                                tokio::task::yield_now().await;
                            }
                        }
                        start.elapsed()
                    })
                })
            });

            writer.finish();
            let frames: Vec<u64> = rt.block_on(async {
                let mut frames = Vec::with_capacity(tasks.len());
                for task in tasks {
                    frames.push(task.await.expect("consumer task"));
                }
                frames
            });
            assert!(
                frames.iter().all(|&f| f == writer.written),
                "a consumer task missed frames"
            );
            println!("  check: {n} tasks x {} frames delivered", writer.written);
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = poll_group, poll_frame, tokio_group
}
criterion_main!(benches);

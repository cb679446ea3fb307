//! The load: publishing and subscribing connections against a relay.
//!
//! Broadcasts are named `{prefix}/{connection}/{index}`, each with one track,
//! `data`. Connection `i` rolls its knobs once (broadcasts, subscriptions,
//! fps, frame size, group size). The broadcasts a subscriber watches are
//! chosen round-robin over all broadcasts of the run (never its own), so that
//! each gets an even share of subscribers; the subscriber waits for each to be
//! announced by the relay and subscribes then.
//!
//! Each frame starts with its send time (8 bytes, little-endian microseconds
//! since [`crate::stats::epoch`]); the rest is filler. A subscriber measures
//! latency only for frames sent after it subscribed: the first group a late
//! joiner gets is partly history (counted in `backlog_frames`).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use moq_lite::endpoint::{Client, ClientConfig};
use moq_lite::model::{BroadcastConsumer, GroupConsumer, OriginProducer, Path, Track, TrackProducer};
use tokio::task::JoinSet;
use url::Url;

use crate::knobs::{Rng, Scenario};
use crate::procfs::{self, Probe};
use crate::stats::{Stats, Summary, now_us};

/// The track every bench broadcast carries.
pub const TRACK: &str = "data";

/// Where to send the load.
#[derive(Clone, Debug)]
pub struct Target {
    /// The relay's URL (`moql://`, `https://` or `http://`).
    pub url: Url,
    /// Client settings (TLS roots, pinned fingerprints, bind address) for
    /// every connection.
    pub client: ClientConfig,
}

/// What to do besides the load itself.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Sample this process's CPU and RSS (the relay's).
    pub relay_pid: Option<u32>,
    /// The relay runs inside this process.
    pub shared_process: bool,
    /// JSON lines: one per interval, then the summary.
    pub output: Option<PathBuf>,
    /// No live line on stderr.
    pub quiet: bool,
}

/// One connection's rolled knobs.
#[derive(Clone, Debug)]
struct Plan {
    index: u64,
    /// Paths this connection publishes.
    publish: Vec<Path>,
    /// Paths it watches.
    watch: Vec<Path>,
    /// Whether its session takes announcements (a subscribing connection).
    subscriber: bool,
    fps: f64,
    frame_size: u64,
    group_size: u64,
}

fn plans(s: &Scenario, prefix: &str) -> Vec<Plan> {
    let mut rng = Rng::new(s.seed);
    let split = s.publishers > 0;
    let mut plans = Vec::new();
    for index in 0..s.connections {
        let publishes = !split || index < s.publishers;
        let subscribes = !split || index >= s.publishers;
        let broadcasts = if publishes { s.broadcasts.roll(&mut rng) } else { 0 };
        let watch = if subscribes { s.subscribe.roll(&mut rng) } else { 0 };
        plans.push((
            Plan {
                index,
                publish: (0..broadcasts)
                    .map(|b| Path::new(format!("{prefix}/{index}/{b}")))
                    .collect(),
                watch: Vec::new(),
                subscriber: subscribes,
                fps: s.fps.roll(&mut rng),
                frame_size: s.frame_size.roll(&mut rng),
                group_size: s.group_size.roll(&mut rng),
            },
            watch,
        ));
    }
    let all: Vec<(u64, Path)> = plans
        .iter()
        .flat_map(|(p, _)| p.publish.iter().map(|path| (p.index, path.clone())))
        .collect();
    // Round-robin: each subscriber continues where the previous one stopped
    // (mixed mode: right after its own broadcasts).
    let mut cursor = 0usize;
    let mut first_own = 0usize;
    let mut out = Vec::new();
    for (mut plan, want) in plans {
        if !split {
            cursor = first_own + plan.publish.len();
            first_own += plan.publish.len();
        }
        let others = all.iter().filter(|(owner, _)| *owner != plan.index).count();
        let want = (want as usize).min(others);
        let mut taken = 0;
        while taken < want && !all.is_empty() {
            let (owner, path) = &all[cursor % all.len()];
            cursor += 1;
            if *owner != plan.index && !plan.watch.contains(path) {
                plan.watch.push(path.clone());
                taken += 1;
            }
        }
        out.push(plan);
    }
    out
}

/// Runs `scenario` against `target`; returns the summary of the
/// measurement window (the `duration` after the ramp).
pub async fn run(target: &Target, scenario: &Scenario, options: &Options) -> anyhow::Result<Summary> {
    let stats = Arc::new(Stats::default());
    let prefix = format!("bench-{:x}", std::process::id() as u64 ^ now_us() ^ scenario.seed);
    let plans = plans(scenario, &prefix);
    let broadcasts: usize = plans.iter().map(|p| p.publish.len()).sum();
    let watches: usize = plans.iter().map(|p| p.watch.len()).sum();
    if !options.quiet {
        eprintln!(
            "moq-bench: {} connections, {broadcasts} broadcasts, {watches} subscriptions -> {}",
            scenario.connections, target.url
        );
    }

    let probe = options.relay_pid.map(Probe::process);
    let sample = |probe: &Option<Probe>| probe.as_ref().and_then(|p| p.sample().ok());
    let idle = sample(&probe);
    let me = Some(Probe::process(std::process::id()));

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let count = plans.len().max(1) as u32;
    for (i, plan) in plans.into_iter().enumerate() {
        let delay = scenario.ramp.mul_f64(i as f64 / count as f64);
        let target = target.clone();
        let stats = stats.clone();
        let lifetime = scenario.lifetime;
        let seed = scenario.seed ^ (plan.index.wrapping_mul(0x9e37_79b9));
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let mut rng = Rng::new(seed);
            loop {
                let life = lifetime.filter(|_| plan.subscriber).map(|l| l.roll(&mut rng).0);
                let result = connection(&target, &plan, &stats, life).await;
                if let Err(err) = result {
                    stats.error("connection", format!("{err:#}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                } else if life.is_some() {
                    stats.connections_churned.fetch_add(1, Ordering::Relaxed);
                } else {
                    return;
                }
            }
        });
    }

    let mut output = match &options.output {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let window_at = started + scenario.ramp;
    let end_at = window_at + scenario.duration;
    let mut window = None;
    let mut window_sample = None;
    let mut load_sample = None;
    let mut last = stats.counters();
    let mut next_report = started + scenario.report;
    loop {
        let now = Instant::now();
        if window.is_none() && now >= window_at {
            window = Some(stats.open_window());
            window_sample = sample(&probe);
            load_sample = sample(&me);
        }
        if now >= end_at {
            break;
        }
        let wake = [
            next_report,
            end_at,
            if window.is_none() { window_at } else { end_at },
        ]
        .into_iter()
        .min()
        .unwrap_or(end_at);
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= next_report {
            next_report += scenario.report;
            let (line, now) = stats.interval(&last, started.elapsed().as_secs_f64());
            last = now;
            if !options.quiet {
                eprintln!("{line}");
            }
            if let Some(out) = &mut output {
                serde_json::to_writer(&mut *out, &line)?;
                writeln!(out)?;
            }
        }
    }
    let end_sample = sample(&probe);
    let load_end = sample(&me);
    let window = window.unwrap_or_default();
    let mut summary = stats.summary(&window);
    if let (Some(start), Some(end)) = (load_sample, load_end) {
        summary.load_cpu_pct =
            Some((end.cpu_s - start.cpu_s).max(0.0) * 100.0 / summary.duration_s.max(1e-9));
    }
    if let (Some(probe), Some(idle), Some(start), Some(end)) = (&probe, idle, window_sample, end_sample) {
        summary.relay = Some(procfs::figures(
            probe,
            idle,
            start,
            end,
            summary.duration_s,
            summary.bytes_received,
            summary.connections,
            options.shared_process,
        ));
    }
    summary.scenario = scenario.flags();
    summary.target = target.url.to_string();
    tasks.shutdown().await;
    if let Some(out) = &mut output {
        serde_json::to_writer(&mut *out, &summary)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(summary)
}

/// Counts a connection as up while alive.
struct Up(Arc<Stats>);

impl Drop for Up {
    fn drop(&mut self) {
        self.0.connections_up.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection, for as long as it lives: publishes and/or subscribes.
/// With a `lifetime` (churn), it closes after that long and returns `Ok`.
async fn connection(
    target: &Target,
    plan: &Plan,
    stats: &Arc<Stats>,
    lifetime: Option<Duration>,
) -> anyhow::Result<()> {
    let begin = Instant::now();
    let client = Client::new(target.client.clone())?;
    let publish = (!plan.publish.is_empty() || !plan.subscriber).then(OriginProducer::new);
    let subscribe = plan.subscriber.then(OriginProducer::new);
    // Whichever version was negotiated, moq-lite or an IETF draft.
    let config = moq_lite::SessionConfig {
        publish: publish.as_ref().map(|o| o.consume()),
        subscribe: subscribe.clone(),
        ..Default::default()
    };
    let session = if matches!(target.url.scheme(), "ws" | "wss") {
        let connected = client.connect_websocket(&target.url).await?;
        moq_transport_compat::connect(connected.session, config).await?
    } else {
        let connected = client.connect(&target.url).await?;
        moq_transport_compat::connect(connected.session, config).await?
    };
    stats.record_setup(begin.elapsed().as_micros() as u64);
    stats.connections_opened.fetch_add(1, Ordering::Relaxed);
    stats.connections_up.fetch_add(1, Ordering::Relaxed);
    let _up = Up(stats.clone());

    // Dropping the set (on return or cancellation) stops every task.
    let mut tasks = JoinSet::new();
    if let Some(origin) = &publish {
        for path in &plan.publish {
            let broadcast = origin.create_broadcast(path.clone())?;
            let track = broadcast.create_track(Track::new(TRACK));
            let stats = stats.clone();
            let plan = plan.clone();
            tasks.spawn(async move {
                let _broadcast = broadcast;
                publish_track(track, &plan, &stats).await;
            });
        }
    }
    if let Some(origin) = subscribe {
        let stats = stats.clone();
        let watch = plan.watch.clone();
        let shard = plan.index as usize;
        tasks.spawn(async move { watch_broadcasts(origin, watch, stats, shard).await });
    }
    let Some(lifetime) = lifetime else {
        let err = session.closed().await;
        anyhow::bail!("session closed: {err}")
    };
    tokio::select! {
        err = session.closed() => anyhow::bail!("session closed: {err}"),
        _ = tokio::time::sleep(lifetime) => {}
    }
    // Leaving: stop reading before the connection closes, so that the group
    // in flight is not counted as cut off.
    tasks.shutdown().await;
    drop(session);
    Ok(())
}

/// Writes frames at the plan's rate until cancelled.
async fn publish_track(mut track: TrackProducer, plan: &Plan, stats: &Stats) {
    let period = Duration::from_secs_f64(1.0 / plan.fps);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let filler = vec![0x5a; plan.frame_size as usize - 8];
    let mut group = None;
    let mut written = 0u64;
    loop {
        interval.tick().await;
        if written % plan.group_size == 0 {
            if let Some(old) = group.take() {
                let _ = moq_lite::model::GroupProducer::finish(old);
            }
            match track.append_group() {
                Ok(g) => group = Some(g),
                Err(err) => return stats.error("append_group", err),
            }
            stats.sent_groups.fetch_add(1, Ordering::Relaxed);
        }
        let mut frame = BytesMut::with_capacity(plan.frame_size as usize);
        frame.put_u64_le(now_us());
        frame.extend_from_slice(&filler);
        let Some(g) = group.as_mut() else { return };
        if let Err(err) = g.write_frame(frame.freeze()) {
            return stats.error("write_frame", err);
        }
        written += 1;
        stats.sent_frames.fetch_add(1, Ordering::Relaxed);
        stats.sent_bytes.fetch_add(plan.frame_size, Ordering::Relaxed);
        if written % plan.group_size == 0 {
            if let Some(old) = group.take() {
                let _ = moq_lite::model::GroupProducer::finish(old);
            }
        }
    }
}

/// Subscribes to each watched path whenever it is announced.
async fn watch_broadcasts(origin: OriginProducer, watch: Vec<Path>, stats: Arc<Stats>, shard: usize) {
    let mut announced = origin.consume();
    let mut active: HashMap<Path, tokio::task::AbortHandle> = HashMap::new();
    let mut tasks = JoinSet::new();
    while let Some(next) = announced.announced().await {
        if !watch.contains(&next.path) {
            continue;
        }
        if let Some(old) = active.remove(&next.path) {
            old.abort();
        }
        if let Some(broadcast) = next.broadcast {
            let stats = stats.clone();
            let handle = tasks.spawn(async move { read_broadcast(broadcast, &stats, shard).await });
            active.insert(next.path, handle);
        }
        while tasks.try_join_next().is_some() {}
    }
}

/// Reads the broadcast's track until it ends.
async fn read_broadcast(broadcast: BroadcastConsumer, stats: &Stats, shard: usize) {
    let mut track = match broadcast.subscribe_track(&Track::new(TRACK)) {
        Ok(track) => track,
        Err(err) => return stats.error("subscribe", err),
    };
    stats.subscriptions.fetch_add(1, Ordering::Relaxed);
    let since = now_us();
    let mut last: Option<u64> = None;
    // Recent gaps, so that a late group can be taken back out of the loss.
    let mut missing = BTreeSet::new();
    let mut skipped = 0;
    let mut groups = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = track.next_group() => match next {
                Ok(Some(group)) => {
                    let seq = group.sequence();
                    match last {
                        Some(prev) if seq > prev + 1 => {
                            stats.groups_lost.fetch_add(seq - prev - 1, Ordering::Relaxed);
                            missing.extend((prev + 1..seq).take(1024));
                            while missing.len() > 1024 {
                                missing.pop_first();
                            }
                        }
                        Some(prev) if seq <= prev => {
                            stats.groups_late.fetch_add(1, Ordering::Relaxed);
                            if missing.remove(&seq) {
                                stats.groups_lost.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    }
                    last = Some(last.map_or(seq, |prev| prev.max(seq)));
                    let now_skipped = track.skipped();
                    stats.groups_skipped_local.fetch_add(now_skipped - skipped, Ordering::Relaxed);
                    skipped = now_skipped;
                    groups.push(read_group(group, stats, shard, since));
                }
                Ok(None) => break,
                Err(err) => {
                    stats.error("next_group", err);
                    break;
                }
            },
            Some(()) = groups.next(), if !groups.is_empty() => {}
        }
    }
    while groups.next().await.is_some() {}
}

async fn read_group(mut group: GroupConsumer, stats: &Stats, shard: usize, since: u64) {
    loop {
        match group.read_frame().await {
            Ok(Some(frame)) => {
                let now = now_us();
                stats.recv_frames.fetch_add(1, Ordering::Relaxed);
                stats.recv_bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
                let Some(sent) = timestamp(&frame) else {
                    stats.error("frame", "shorter than its 8-byte timestamp");
                    continue;
                };
                if sent < since {
                    stats.backlog_frames.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.record_latency(shard, now.saturating_sub(sent));
                }
            }
            Ok(None) => {
                stats.recv_groups.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(_) => {
                stats.groups_incomplete.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The send time at the head of a frame.
pub fn timestamp(frame: &Bytes) -> Option<u64> {
    let head: [u8; 8] = frame.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::Range;

    fn count_watchers(plans: &[Plan]) -> HashMap<Path, usize> {
        let mut out = HashMap::new();
        for p in plans {
            for w in &p.watch {
                *out.entry(w.clone()).or_default() += 1;
            }
        }
        out
    }

    #[test]
    fn fanout_plan() {
        let s = Scenario {
            connections: 11,
            publishers: 1,
            ..Default::default()
        };
        let plans = plans(&s, "x");
        assert_eq!(plans[0].publish.len(), 1);
        assert!(plans[0].watch.is_empty());
        assert!(
            plans[1..]
                .iter()
                .all(|p| p.publish.is_empty() && p.watch.len() == 1)
        );
        assert_eq!(count_watchers(&plans)[&Path::new("x/0/0")], 10);
    }

    #[test]
    fn mixed_plan_is_even_and_never_self() {
        let s = Scenario {
            connections: 50,
            subscribe: Range::one(4),
            ..Default::default()
        };
        let plans = plans(&s, "x");
        for p in &plans {
            assert_eq!(p.watch.len(), 4);
            assert!(p.watch.iter().all(|w| !p.publish.contains(w)));
        }
        let counts = count_watchers(&plans);
        assert_eq!(counts.len(), 50);
        assert!(counts.values().all(|&n| n == 4));
    }
}

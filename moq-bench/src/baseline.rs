//! `moq-bench baseline`: the fan-out shape over raw QUIC, without MoQ.
//!
//! One sender writes the same frames to N QUIC connections (quinn, through
//! `moq_lite::endpoint`, with the relay's default transport settings): each
//! group is a new unidirectional stream on every connection, starting with
//! the group's sequence (8 bytes), then each frame as a 4-byte length and
//! the frame (timestamp first, as in the MoQ load). The frame is built once
//! and handed to every connection's stream as the same `Bytes`.
//!
//! The sender runs on a current-thread runtime of its own thread, so that
//! its CPU time (`/proc/thread-self`) is the cost of sending alone: what the
//! relay's CPU per GB is compared with. The receivers run on the caller's
//! runtime and measure as the MoQ subscribers do.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use moq_lite::endpoint::quinn;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls, Server, ServerConfig, ServerTls};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::knobs::{Rng, Scenario};
use crate::procfs::{self, Probe};
use crate::stats::{Stats, Summary, now_us};

/// The ALPN the baseline's endpoints speak.
const ALPN: &str = "moq-bench-baseline";

/// What the sender hands each connection's task.
#[derive(Clone)]
enum Item {
    /// Start group `sequence` (finishing the previous one).
    Group(u64),
    /// One length-prefixed frame.
    Frame(Bytes),
}

/// Runs the baseline: `connections - publishers` receivers (all of them if
/// `publishers` is 0) of one track with the scenario's fps, frame size and
/// group size (the low end of each range).
pub async fn run(scenario: &Scenario, quiet: bool) -> anyhow::Result<Summary> {
    let receivers = scenario.connections - scenario.publishers;
    anyhow::ensure!(receivers > 0, "the baseline needs at least one receiver");
    let mut rng = Rng::new(scenario.seed);
    let fps = scenario.fps.roll(&mut rng);
    let frame_size = scenario.frame_size.roll(&mut rng);
    let group_size = scenario.group_size.roll(&mut rng);
    let stats = Arc::new(Stats::default());
    if !quiet {
        eprintln!(
            "moq-bench baseline: 1 sender -> {receivers} raw QUIC connections, {fps} fps x {frame_size} B, \
             {group_size} frames per group"
        );
    }

    // The sender: its own thread and runtime.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sender_stats = stats.clone();
    let sender = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let server = Server::bind(ServerConfig {
                bind: "127.0.0.1:0".parse()?,
                tls: ServerTls {
                    generate: vec!["localhost".into()],
                    ..Default::default()
                },
                protocols: vec![ALPN.into()],
                ..Default::default()
            })?;
            let _ = addr_tx.send((server.local_addr()?, Probe::this_thread()));
            send(
                server,
                receivers,
                fps,
                frame_size,
                group_size,
                &sender_stats,
                stop_rx,
            )
            .await;
            anyhow::Ok(())
        })
    });
    let (addr, sender_probe): (SocketAddr, Option<Probe>) = addr_rx.await?;

    let url: url::Url = format!("moql://127.0.0.1:{}/", addr.port()).parse()?;
    let config = ClientConfig {
        tls: ClientTls {
            disable_verify: true,
            system_roots: false,
            ..Default::default()
        },
        protocols: vec![ALPN.into()],
        ..Default::default()
    };
    let idle = sender_probe.as_ref().and_then(|p| p.sample().ok());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..receivers {
        let delay = scenario.ramp.mul_f64(i as f64 / receivers as f64);
        let (url, config, stats) = (url.clone(), config.clone(), stats.clone());
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(err) = receive(&url, config, &stats, i as usize).await {
                stats.error("receiver", format!("{err:#}"));
            }
        });
    }

    let window_at = started + scenario.ramp;
    let end_at = window_at + scenario.duration;
    let mut last = stats.counters();
    let mut next_report = started + scenario.report;
    let mut window = None;
    let mut window_sample = None;
    loop {
        let now = Instant::now();
        if window.is_none() && now >= window_at {
            window = Some(stats.open_window());
            window_sample = sender_probe.as_ref().and_then(|p| p.sample().ok());
        }
        if now >= end_at {
            break;
        }
        let wake = next_report
            .min(end_at)
            .min(if window.is_none() { window_at } else { end_at });
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= next_report {
            next_report += scenario.report;
            let (line, now) = stats.interval(&last, started.elapsed().as_secs_f64());
            last = now;
            if !quiet {
                eprintln!("{line}");
            }
        }
    }
    let end_sample = sender_probe.as_ref().and_then(|p| p.sample().ok());
    let mut summary = stats.summary(&window.unwrap_or_default());
    if let (Some(probe), Some(idle), Some(start), Some(end)) =
        (&sender_probe, idle, window_sample, end_sample)
    {
        summary.sender = Some(procfs::figures(
            probe,
            idle,
            start,
            end,
            summary.duration_s,
            summary.bytes_received,
            summary.connections,
            false,
        ));
    }
    summary.scenario = format!("baseline {}", scenario.flags());
    summary.target = "baseline (raw QUIC)".into();
    let _ = stop_tx.send(());
    tasks.shutdown().await;
    match sender.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("the baseline sender panicked"),
    }
    Ok(summary)
}

/// Accepts `receivers` connections and feeds each from one frame loop.
async fn send(
    server: Server,
    receivers: u64,
    fps: f64,
    frame_size: u64,
    group_size: u64,
    stats: &Arc<Stats>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    // Deep enough for a few seconds of frames: a connection that falls
    // further behind loses frames (counted as lagged groups).
    let (tx, _) = broadcast::channel::<Item>(4096);
    let mut conns = JoinSet::new();
    let mut accepted = 0;
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let filler = vec![0x5a; frame_size as usize - 8];
    let mut written = 0u64;
    let mut sequence = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            incoming = server.accept(), if accepted < receivers => {
                let Some(incoming) = incoming else { break };
                accepted += 1;
                let rx = tx.subscribe();
                let stats = stats.clone();
                conns.spawn(async move {
                    match incoming.accept().await {
                        Ok(accepted) => {
                            let conn: quinn::Connection = (**accepted.session).clone();
                            if let Err(err) = feed(conn, rx).await {
                                stats.error("baseline send", err);
                            }
                        }
                        Err(err) => stats.error("baseline accept", err),
                    }
                });
            }
            _ = interval.tick() => {
                if written % group_size == 0 {
                    let _ = tx.send(Item::Group(sequence));
                    sequence += 1;
                    stats.sent_groups.fetch_add(1, Ordering::Relaxed);
                }
                let mut frame = BytesMut::with_capacity(4 + frame_size as usize);
                frame.put_u32(frame_size as u32);
                frame.put_u64_le(now_us());
                frame.extend_from_slice(&filler);
                let _ = tx.send(Item::Frame(frame.freeze()));
                written += 1;
                stats.sent_frames.fetch_add(1, Ordering::Relaxed);
                stats.sent_bytes.fetch_add(frame_size, Ordering::Relaxed);
            }
        }
    }
    server.close();
    conns.shutdown().await;
}

/// One connection's sender: a stream per group, every frame written as is.
async fn feed(conn: quinn::Connection, mut rx: broadcast::Receiver<Item>) -> anyhow::Result<()> {
    let mut stream: Option<quinn::SendStream> = None;
    loop {
        match rx.recv().await {
            Ok(Item::Group(sequence)) => {
                if let Some(mut old) = stream.take() {
                    let _ = old.finish();
                }
                let mut send = conn.open_uni().await?;
                send.write_chunk(Bytes::copy_from_slice(&sequence.to_le_bytes()))
                    .await?;
                stream = Some(send);
            }
            Ok(Item::Frame(frame)) => {
                if let Some(send) = stream.as_mut() {
                    send.write_chunk(frame).await?;
                }
            }
            // Fell behind: drop the group in progress; the receiver sees the
            // next group's sequence and counts the gap.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if let Some(mut old) = stream.take() {
                    let _ = old.reset(quinn::VarInt::from_u32(1));
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// One receiver: every stream is a group.
async fn receive(
    url: &url::Url,
    config: ClientConfig,
    stats: &Arc<Stats>,
    shard: usize,
) -> anyhow::Result<()> {
    let begin = Instant::now();
    let client = Client::new(config)?;
    let connected = client.connect(url).await?;
    let conn: quinn::Connection = (**connected.session).clone();
    stats.record_setup(begin.elapsed().as_micros() as u64);
    stats.connections_opened.fetch_add(1, Ordering::Relaxed);
    stats.connections_up.fetch_add(1, Ordering::Relaxed);
    let since = now_us();
    let mut last: Option<u64> = None;
    let mut missing = BTreeSet::new();
    let mut groups = JoinSet::new();
    let result = loop {
        let mut recv = match conn.accept_uni().await {
            Ok(recv) => recv,
            Err(err) => break Err(err.into()),
        };
        let mut head = [0u8; 8];
        if recv.read_exact(&mut head).await.is_err() {
            stats.groups_incomplete.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let seq = u64::from_le_bytes(head);
        match last {
            Some(prev) if seq > prev + 1 => {
                stats.groups_lost.fetch_add(seq - prev - 1, Ordering::Relaxed);
                missing.extend((prev + 1..seq).take(1024));
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
        let stats = stats.clone();
        groups.spawn(async move {
            let mut len = [0u8; 4];
            loop {
                match recv.read_exact(&mut len).await {
                    Ok(()) => {}
                    Err(quinn::ReadExactError::FinishedEarly(0)) => {
                        stats.recv_groups.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(_) => {
                        stats.groups_incomplete.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
                if recv.read_exact(&mut frame).await.is_err() {
                    stats.groups_incomplete.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let now = now_us();
                stats.recv_frames.fetch_add(1, Ordering::Relaxed);
                stats.recv_bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
                let sent = crate::load::timestamp(&Bytes::from(frame)).unwrap_or(0);
                if sent < since {
                    stats.backlog_frames.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.record_latency(shard, now.saturating_sub(sent));
                }
            }
        });
        while groups.try_join_next().is_some() {}
    };
    stats.connections_up.fetch_sub(1, Ordering::Relaxed);
    result
}

//! `moq subscribe`: one track's frames to stdout.
//!
//! Waits (up to a timeout) for the broadcast to be announced, subscribes,
//! and writes each frame in the chosen [`Format`], in group order. Exits
//! when the track ends, after `count` frames, or with an error.
//!
//! When the session is lost (the relay restarts) or the broadcast goes away
//! before its track finished (the publisher reconnects), it reconnects with
//! backoff and waits for the broadcast again, with no timeout this time,
//! then carries on after the last frame it wrote: frames are never written
//! twice.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use moq_lite::model::{
    BroadcastConsumer, GroupConsumer, OriginProducer, Path, Track, TrackConsumer, TrackNext,
};
use tokio::io::AsyncWrite;

use moq_lite::endpoint::Client;

use crate::connection::{Backoff, Connection, Live, reconnect};
use crate::error::explain;
use crate::format::{Format, FrameWriter};
use crate::stats::{Stats, StatsGuard};

/// How long a group that arrived ahead of a missing one waits for it.
const REORDER_WINDOW: Duration = Duration::from_millis(1000);

/// How long the first group to arrive waits for an older one.
const FIRST_WINDOW: Duration = Duration::from_millis(200);

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The latest group: the live edge.
    Latest,
    /// The oldest group the relay or the publisher still holds (the
    /// default): a subscriber that was waiting before the broadcast appeared
    /// gets it from its first group, and one that joins later gets what is
    /// still cached before the live groups.
    #[default]
    Oldest,
    /// Group `n` (or the first after it that is available).
    Group(u64),
}

impl FromStr for Start {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "latest" => Ok(Start::Latest),
            "oldest" => Ok(Start::Oldest),
            n => n
                .parse()
                .map(Start::Group)
                .map_err(|_| format!("bad --start `{s}`: expected latest, oldest or a group number")),
        }
    }
}

/// What `moq subscribe` does.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// The broadcast path.
    pub broadcast: String,
    /// The track name.
    pub track: String,
    /// How frames are written.
    pub format: Format,
    /// Where to start.
    pub start: Start,
    /// Exit after this many frames.
    pub count: Option<u64>,
    /// How long to wait for the broadcast to be announced at first.
    pub timeout: Duration,
    /// Print a live stats line and a summary on stderr.
    pub stats: bool,
    /// The first frame of each group is a prefix of its other frames, not
    /// a frame of its own (the clock's format): each later frame is written
    /// after it.
    pub group_prefix: bool,
}

impl SubscribeOptions {
    /// Subscribe to track `data` of `broadcast`, one line per frame.
    pub fn new(broadcast: impl Into<String>) -> Self {
        SubscribeOptions {
            broadcast: broadcast.into(),
            track: crate::publish::DEFAULT_TRACK.into(),
            format: Format::Lines,
            start: Start::default(),
            count: None,
            timeout: Duration::from_secs(5),
            stats: false,
            group_prefix: false,
        }
    }
}

/// The last frame written: (group, frames of it written), and how many
/// groups were passed over without being written.
#[derive(Debug, Default, Clone, Copy)]
struct Position {
    group: Option<u64>,
    frames: u64,
    skipped: u64,
}

/// How reading the track stopped.
enum Stop {
    /// The track ended or `count` was reached.
    Done,
    /// Whoever reads our output went away (`| head`): a normal end.
    ReaderGone,
    /// The session or the broadcast went away first.
    Interrupted(String),
}

/// Subscribes according to `options`, writing frames to stdout.
pub async fn subscribe(connection: &Connection, options: SubscribeOptions) -> anyhow::Result<()> {
    subscribe_to(connection, options, tokio::io::stdout()).await
}

/// Subscribes according to `options`, writing frames to `output`.
pub async fn subscribe_to<W: AsyncWrite + Unpin>(
    connection: &Connection,
    options: SubscribeOptions,
    output: W,
) -> anyhow::Result<()> {
    let mut out = FrameWriter::new(output, options.format);
    let stats = Stats::new();
    let _guard = StatsGuard::start(&stats, options.stats);

    connection
        .with_client(async |client| read_broadcast(connection, client, options, &mut out, &stats).await)
        .await
}

/// Subscribes through `client` until the track ends, reconnecting when the
/// session is lost (unless disabled).
async fn read_broadcast<W: AsyncWrite + Unpin>(
    connection: &Connection,
    client: &Client,
    options: SubscribeOptions,
    out: &mut FrameWriter<W>,
    stats: &Arc<Stats>,
) -> anyhow::Result<()> {
    let path = Path::new(&options.broadcast);
    let info = Track::new(options.track.clone());
    let origin = OriginProducer::new();
    let mut live = connection.connect(client, None, Some(origin.clone())).await?;
    let mut backoff = Backoff::default();
    let mut position = Position::default();
    let mut timeout = Some(options.timeout);

    loop {
        let stop = match wait_broadcast(&origin, &path, &live, timeout).await {
            Wait::Found(broadcast) => {
                timeout = None;
                read(&live, &broadcast, &info, &options, &mut position, out, stats).await?
            }
            Wait::TimedOut => anyhow::bail!(
                "broadcast `{path}` is not announced on {} (waited {:?}); check the name (`moq announced {}` \
                 lists what is there) or start the publisher first",
                connection.url,
                options.timeout,
                connection.url
            ),
            Wait::Closed(err) => Stop::Interrupted(format!("lost the session: {}", explain(&err))),
        };
        let reason = match stop {
            // A track that ended before `--count` frames is not a success:
            // the subscriber asked for more than it got.
            Stop::Done => match options.count {
                Some(count) if stats.frames() < count => anyhow::bail!(
                    "the track ended after {} of the {count} frames asked for{} ({})",
                    stats.frames(),
                    skipped_note(position.skipped),
                    connection.url
                ),
                // Everything asked for arrived, but not everything sent:
                // a gap is a failure the user must hear of.
                _ if position.skipped > 0 => anyhow::bail!(
                    "{} group(s) of the track never arrived and were skipped ({})",
                    position.skipped,
                    connection.url
                ),
                _ => return Ok(()),
            },
            Stop::ReaderGone => return Ok(()),
            Stop::Interrupted(reason) => reason,
        };
        if !connection.reconnect {
            anyhow::bail!("{reason} ({})", connection.url);
        }
        tracing::warn!("{reason}; waiting for it to come back");
        if live.is_closed() {
            let err = live.closed().await;
            if err == moq_lite::Error::Unauthorized {
                anyhow::bail!("{}", explain(&err));
            }
            drop(live);
            live = reconnect(connection, client, &mut backoff, || None, || Some(origin.clone())).await?;
        }
    }
}

enum Wait {
    Found(BroadcastConsumer),
    TimedOut,
    Closed(moq_lite::Error),
}

/// Waits for `path` to be announced in `origin`.
async fn wait_broadcast(
    origin: &OriginProducer,
    path: &Path,
    live: &Live,
    timeout: Option<Duration>,
) -> Wait {
    let mut announced = origin.consume();
    let deadline = async {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    tracing::info!(broadcast = %path, "waiting for the broadcast");
    loop {
        tokio::select! {
            next = announced.announced() => match next {
                Some(next) if next.path == *path => {
                    if let Some(broadcast) = next.broadcast {
                        return Wait::Found(broadcast);
                    }
                }
                Some(_) => {}
                None => return Wait::Closed(moq_lite::Error::Closed),
            },
            err = live.closed() => return Wait::Closed(err),
            _ = &mut deadline => return Wait::TimedOut,
        }
    }
}

/// Reads the track from `broadcast`, writing frames after `position`.
async fn read<W: AsyncWrite + Unpin>(
    live: &Live,
    broadcast: &BroadcastConsumer,
    info: &Track,
    options: &SubscribeOptions,
    position: &mut Position,
    out: &mut FrameWriter<W>,
    stats: &Arc<Stats>,
) -> anyhow::Result<Stop> {
    // The start travels upstream (a SUBSCRIBE start group), so the relay
    // and the publisher send what they still hold from there; after a
    // reconnect, from where the output stopped.
    let start = match options.start {
        Start::Latest => None,
        Start::Oldest => Some(0),
        Start::Group(n) => Some(n),
    };
    let mut track: TrackConsumer = match broadcast.subscribe_track_from(info, start.max(position.group)) {
        Ok(track) => track,
        Err(err) => return not_found(err, options),
    };
    tracing::info!(broadcast = %options.broadcast, track = %info.name, "subscribed");
    let lost = |err: moq_lite::Error| Ok(Stop::Interrupted(format!("lost the session: {}", explain(&err))));
    // Groups travel on separate streams and may arrive out of order: hold
    // the ones ahead of the next expected sequence for a moment.
    let mut pending: BTreeMap<u64, GroupConsumer> = BTreeMap::new();
    let mut expected = position.group;
    let mut ended = false;
    let mut gap_deadline: Option<tokio::time::Instant> = None;
    // Groups the relay or the publisher said will not come (SUBSCRIBE_DROP),
    // or our own cache evicted unread: a gap of those is reported as such.
    let mut dropped = std::collections::BTreeSet::new();
    loop {
        let ready = match (expected, pending.first_key_value()) {
            (Some(e), Some((&first, _))) if first <= e => true,
            // The gap is groups said not to come: no reason to wait.
            (Some(e), Some((&first, _))) if (e..first).all(|s| dropped.contains(&s)) => true,
            // Nothing comes before group 0.
            (None, Some((&0, _))) => true,
            (_, Some(_)) => ended || gap_deadline.is_some_and(|d| tokio::time::Instant::now() >= d),
            (_, None) => false,
        };
        let group = if ready {
            let group = pending.pop_first().map(|(_, g)| g);
            if let Some(g) = &group {
                // Where the track should continue: after the last group, or
                // at the group asked for. (`oldest` is whatever is held.)
                let from = match (expected, options.start) {
                    (Some(e), _) => Some(e),
                    (None, Start::Group(n)) => Some(n),
                    (None, _) => None,
                };
                if let Some(from) = from.filter(|&from| g.sequence() > from) {
                    position.skipped += g.sequence() - from;
                    let all_dropped = (from..g.sequence()).all(|s| dropped.contains(&s));
                    dropped = dropped.split_off(&g.sequence());
                    match expected {
                        Some(_) if all_dropped => tracing::warn!(
                            "groups {from}..{} were dropped upstream (not kept long enough to be sent); skipping them",
                            g.sequence() - 1
                        ),
                        Some(_) => tracing::warn!(
                            "groups {from}..{} did not arrive; skipping them",
                            g.sequence() - 1
                        ),
                        None => tracing::warn!(
                            "groups {from}..{} are no longer held by the relay or the publisher; \
                             starting at group {}",
                            g.sequence() - 1,
                            g.sequence()
                        ),
                    }
                }
            }
            group
        } else if ended {
            return Ok(track_ended(live, broadcast).await);
        } else {
            // Wait for more; once something is pending, only for a moment.
            if !pending.is_empty() && gap_deadline.is_none() {
                // At first nothing is missing yet: only wait for a group
                // that raced ahead of its predecessor.
                let window = if expected.is_some() {
                    REORDER_WINDOW
                } else {
                    FIRST_WINDOW
                };
                gap_deadline = Some(tokio::time::Instant::now() + window);
            }
            let window = async {
                match gap_deadline {
                    None => std::future::pending().await,
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                }
            };
            let next = tokio::select! {
                next = track.next_or_skipped() => next,
                err = live.closed() => return lost(err),
                // The gap did not fill in time: move on to what is there.
                _ = window => continue,
            };
            match next {
                Ok(TrackNext::Skipped) => {
                    dropped.extend(track.take_skipped_groups());
                    continue;
                }
                Ok(TrackNext::Group(group)) => {
                    dropped.extend(track.take_skipped_groups());
                    if expected.is_some_and(|e| group.sequence() < e) {
                        continue; // Older than what was written: too late.
                    }
                    pending.insert(group.sequence(), group);
                    continue;
                }
                Ok(TrackNext::End) => {
                    ended = true;
                    continue;
                }
                Err(moq_lite::Error::NotFound) => return not_found(moq_lite::Error::NotFound, options),
                Err(err) => {
                    return Ok(Stop::Interrupted(format!(
                        "the subscription ended: {}",
                        explain(&err)
                    )));
                }
            }
        };
        let Some(mut group) = group else { continue };
        gap_deadline = None;
        let sequence = group.sequence();
        expected = Some(sequence + 1);
        let skip = if position.group == Some(sequence) {
            position.frames
        } else {
            position.group = Some(sequence);
            position.frames = 0;
            0
        };
        let mut index = 0u64;
        let mut prefix = bytes::Bytes::new();
        loop {
            let frame = tokio::select! {
                frame = group.read_frame() => frame,
                err = live.closed() => return lost(err),
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(sequence, %err, "group ended early");
                    break;
                }
            };
            index += 1;
            if options.group_prefix && index == 1 {
                prefix = frame;
                continue;
            }
            if index <= skip {
                continue;
            }
            let frame = match options.group_prefix {
                true => [&prefix[..], &frame[..]].concat().into(),
                false => frame,
            };
            match out.write(&frame).await {
                Ok(()) => {}
                // The reader went away (`| head`): that is a normal end.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Stop::ReaderGone),
                Err(err) => return Err(anyhow::anyhow!("cannot write to stdout: {err}")),
            }
            position.frames = index;
            stats.frame(sequence, frame.len());
            if options.count.is_some_and(|count| stats.frames() >= count) {
                return Ok(Stop::Done);
            }
        }
    }
}

/// ", N groups skipped" for an error message, or nothing.
fn skipped_note(skipped: u64) -> String {
    match skipped {
        0 => String::new(),
        n => format!(", {n} group(s) skipped"),
    }
}

fn not_found(err: moq_lite::Error, options: &SubscribeOptions) -> anyhow::Result<Stop> {
    match err {
        moq_lite::Error::NotFound => anyhow::bail!(
            "track `{}` not found in broadcast `{}`; check the track name (--track)",
            options.track,
            options.broadcast
        ),
        err => anyhow::bail!("cannot subscribe to `{}`: {}", options.track, explain(&err)),
    }
}

/// The track reported its end: a real end if the broadcast and the session
/// are still there, an interruption if either went away (a lost upstream
/// also ends the track).
async fn track_ended(live: &Live, broadcast: &BroadcastConsumer) -> Stop {
    let mut broadcast = broadcast.clone();
    // Both go away together with the track; give them a moment to show it.
    let gone = tokio::select! {
        _ = broadcast.closed() => true,
        _ = live.closed() => true,
        _ = tokio::time::sleep(Duration::from_millis(100)) => false,
    };
    if gone {
        Stop::Interrupted("the broadcast went away before its track ended".into())
    } else {
        tracing::info!("the track ended");
        Stop::Done
    }
}

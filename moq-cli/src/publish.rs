//! `moq publish`: stdin (or files) as tracks of one broadcast.
//!
//! Each input is split into frames (see [`Format`]) and the frames into
//! groups: a new group every `group_frames` frames and/or every `group_ms`.
//! At the end of input the track is finished, so subscribers see its end.
//!
//! Several tracks: `--track NAME=FILE` (repeatable) reads each track from
//! its own file (a FIFO works: `--track video=<(ffmpeg ...)`); a `--track
//! NAME` without a file, or `NAME=-`, reads stdin, which at most one track
//! may do.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moq_lite::endpoint::Client;
use moq_lite::model::{BroadcastProducer, GroupProducer, OriginProducer, Path, Track, TrackProducer};
use tokio::io::AsyncRead;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connection::{Backoff, Connection, Live, reconnect};
use crate::error::explain;
use crate::format::{Format, FrameReader};
use crate::stats::{Stats, StatsGuard};

/// The track name when none is given.
pub const DEFAULT_TRACK: &str = "data";

/// How long the end of a track takes to reach subscribers once the
/// publisher's last stream is written: the relay and the subscriber each
/// keep a finished subscription open 500 ms for late group streams.
const DELIVERY_GRACE: Duration = Duration::from_millis(1500);

/// Where a track's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file (or FIFO).
    File(PathBuf),
}

/// One `--track`: a name and its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// The track name.
    pub name: String,
    /// Where its frames come from.
    pub input: Input,
}

impl FromStr for TrackSpec {
    type Err = String;

    /// `NAME` (stdin), `NAME=FILE`, or `NAME=-` (stdin).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, input) = match s.split_once('=') {
            None => (s, Input::Stdin),
            Some((name, "-")) => (name, Input::Stdin),
            Some((name, file)) => (name, Input::File(file.into())),
        };
        if name.is_empty() {
            return Err(format!("bad --track `{s}`: expected NAME or NAME=FILE"));
        }
        Ok(TrackSpec {
            name: name.to_string(),
            input,
        })
    }
}

/// What `moq publish` does.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The broadcast path.
    pub broadcast: String,
    /// The tracks; empty means one track [`DEFAULT_TRACK`] from stdin.
    pub tracks: Vec<TrackSpec>,
    /// How input splits into frames.
    pub format: Format,
    /// A new group every this many frames (`None`: 1 for lines and length,
    /// unbounded for raw).
    pub group_frames: Option<u64>,
    /// A new group once the current one is this old (`None`: never for
    /// lines and length, 1 s for raw).
    pub group_ms: Option<u64>,
    /// Read a track's input only once someone subscribes to it, so a
    /// subscriber started first sees everything.
    pub wait_subscriber: bool,
    /// After the end of input, how long to wait at most for subscribers to
    /// receive everything before closing.
    pub linger: Duration,
    /// Print a live stats line and a summary on stderr.
    pub stats: bool,
}

impl PublishOptions {
    /// Publish stdin as track `data` of `broadcast`, one line per frame and
    /// group.
    pub fn new(broadcast: impl Into<String>) -> Self {
        PublishOptions {
            broadcast: broadcast.into(),
            tracks: Vec::new(),
            format: Format::Lines,
            group_frames: None,
            group_ms: None,
            wait_subscriber: false,
            linger: Duration::from_secs(5),
            stats: false,
        }
    }
}

/// When to start a new group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    frames: u64,
    age: Option<Duration>,
}

impl Grouping {
    fn new(format: Format, frames: Option<u64>, ms: Option<u64>) -> Self {
        let frames = frames
            .unwrap_or(if format == Format::Raw { u64::MAX } else { 1 })
            .max(1);
        let ms = ms.or(if format == Format::Raw { Some(1000) } else { None });
        Grouping {
            frames,
            age: ms.map(Duration::from_millis),
        }
    }
}

/// The tracks being published, for draining at the end.
pub(crate) type Tracks = Arc<Mutex<Vec<TrackProducer>>>;

/// Publishes according to `options`, reading stdin and/or files, until
/// every input ends.
pub async fn publish(connection: &Connection, options: PublishOptions) -> anyhow::Result<()> {
    let mut specs = options.tracks.clone();
    if specs.is_empty() {
        specs.push(TrackSpec {
            name: DEFAULT_TRACK.into(),
            input: Input::Stdin,
        });
    }
    if specs.iter().filter(|s| s.input == Input::Stdin).count() > 1 {
        anyhow::bail!("only one --track can read stdin; give the others a file: --track NAME=FILE");
    }
    let mut inputs: Vec<(String, Box<dyn AsyncRead + Unpin + Send>)> = Vec::new();
    for spec in specs {
        if inputs.iter().any(|(name, _)| *name == spec.name) {
            anyhow::bail!("--track {} is given twice", spec.name);
        }
        let input: Box<dyn AsyncRead + Unpin + Send> = match &spec.input {
            Input::Stdin => Box::new(tokio::io::stdin()),
            Input::File(path) => Box::new(tokio::fs::File::open(path).await.map_err(|err| {
                anyhow::anyhow!("cannot open {} for --track {}: {err}", path.display(), spec.name)
            })?),
        };
        inputs.push((spec.name, input));
    }
    publish_inputs(connection, &options, inputs).await
}

/// Publishes `inputs` (track name, byte stream) as the tracks of
/// `options.broadcast`.
pub async fn publish_inputs(
    connection: &Connection,
    options: &PublishOptions,
    inputs: Vec<(String, Box<dyn AsyncRead + Unpin + Send>)>,
) -> anyhow::Result<()> {
    let origin = OriginProducer::new();
    let path = Path::new(&options.broadcast);
    if path.is_empty() {
        anyhow::bail!("the broadcast name is empty");
    }
    let broadcast = origin.create_broadcast(path.clone())?;
    let grouping = Grouping::new(options.format, options.group_frames, options.group_ms);
    let stats = Stats::new();
    let _guard = StatsGuard::start(&stats, options.stats);
    let tracks: Tracks = Arc::default();

    let mut feeders = JoinSet::new();
    let mut waiting = HashMap::new();
    for (name, input) in inputs {
        let source = FrameReader::new(input, options.format);
        if options.wait_subscriber {
            let (tx, rx) = tokio::sync::oneshot::channel::<TrackProducer>();
            waiting.insert(name.clone(), tx);
            let (tracks, stats) = (tracks.clone(), stats.clone());
            feeders.spawn(async move {
                let Ok(track) = rx.await else {
                    return Ok(());
                };
                tracing::info!(track = %name, "subscribed; reading input");
                tracks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(track.clone());
                feed(track, source, grouping, stats).await
            });
        } else {
            let track = broadcast.create_track(Track::new(name));
            tracks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(track.clone());
            feeders.spawn(feed(track, source, grouping, stats.clone()));
        }
    }
    let requests = options
        .wait_subscriber
        .then(|| tokio::spawn(serve_requests(broadcast.clone(), waiting)));

    let work = async move {
        while let Some(done) = feeders.join_next().await {
            done??;
        }
        anyhow::Ok(())
    };
    let result = serve(connection, &origin, &path, work, &tracks, options.linger).await;
    if let Some(requests) = requests {
        requests.abort();
    }
    drop(broadcast);
    result
}

/// Hands requested tracks to the feeders waiting for them; refuses other
/// names.
async fn serve_requests(
    broadcast: BroadcastProducer,
    mut waiting: HashMap<String, tokio::sync::oneshot::Sender<TrackProducer>>,
) {
    let mut requests = broadcast.requests();
    drop(broadcast);
    while let Some(track) = requests.requested_track().await {
        match waiting.remove(&track.info().name) {
            Some(tx) => {
                let _ = tx.send(track);
            }
            None => {
                tracing::debug!(track = %track.info().name, "request for an unknown track");
                track.abort(moq_lite::Error::NotFound);
            }
        }
    }
}

/// Copies frames from `source` into `track`, then finishes it.
async fn feed<R: AsyncRead + Unpin>(
    mut track: TrackProducer,
    mut source: FrameReader<R>,
    grouping: Grouping,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    let mut group: Option<(GroupProducer, u64, Instant)> = None;
    while let Some(frame) = source.next().await? {
        let rotate = match &group {
            None => true,
            Some((_, frames, started)) => {
                *frames >= grouping.frames || grouping.age.is_some_and(|age| started.elapsed() >= age)
            }
        };
        if rotate {
            if let Some((old, ..)) = group.take() {
                let _ = old.finish();
            }
            group = Some((track.append_group()?, 0, Instant::now()));
        }
        let Some((current, frames, _)) = group.as_mut() else {
            unreachable!("a group was just created");
        };
        let size = frame.len();
        current.write_frame(frame).map_err(|err| {
            anyhow::anyhow!(
                "cannot write a {size}-byte frame into group {}: {}; use smaller groups (--group-frames, \
                 --group-ms)",
                current.sequence(),
                explain(&err)
            )
        })?;
        *frames += 1;
        stats.frame(current.sequence(), size);
    }
    if let Some((last, ..)) = group.take() {
        let _ = last.finish();
    }
    tracing::info!(track = %track.info().name, "end of input; track finished");
    let _ = track.finish();
    Ok(())
}

/// Keeps `origin` published through `connection` (reconnecting unless
/// disabled) while `work` runs; once it is done, lets subscribers drain and
/// closes.
pub(crate) async fn serve(
    connection: &Connection,
    origin: &OriginProducer,
    path: &Path,
    work: impl Future<Output = anyhow::Result<()>>,
    tracks: &Tracks,
    linger: Duration,
) -> anyhow::Result<()> {
    connection
        .with_client(async |client| serve_with(connection, client, origin, path, work, tracks, linger).await)
        .await
}

/// [`serve`] through `client`.
async fn serve_with(
    connection: &Connection,
    client: &Client,
    origin: &OriginProducer,
    path: &Path,
    work: impl Future<Output = anyhow::Result<()>>,
    tracks: &Tracks,
    linger: Duration,
) -> anyhow::Result<()> {
    let mut live = connection.connect(client, Some(origin.consume()), None).await?;
    tracing::info!(broadcast = %path, "publishing");
    let mut backoff = Backoff::default();
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => {
                done?;
                break;
            }
            (_, err) = live.session.refused() => {
                return Err(refused(connection, path, &err));
            }
            err = live.closed() => {
                if !connection.reconnect || err == moq_lite::Error::Unauthorized {
                    anyhow::bail!("lost the session with {}: {}", connection.url, explain(&err));
                }
                tracing::warn!("lost the session with {}: {}", connection.url, explain(&err));
                tokio::select! {
                    next = reconnect(connection, client, &mut backoff, || Some(origin.consume()), || None) => {
                        live = next?;
                        tracing::info!(broadcast = %path, "publishing again");
                    }
                    done = &mut work => {
                        done?;
                        tracing::warn!("the input ended while disconnected");
                        return Ok(());
                    }
                }
            }
        }
    }
    tokio::select! {
        _ = drain(&live, tracks, linger) => {}
        (_, err) = live.session.refused() => {
            return Err(refused(connection, path, &err));
        }
    }
    // A relay that refuses the session (no token, or one that does not
    // cover this path) closes it at once, possibly after all the input was
    // read: that is a failure to publish, not a quiet success.
    if live.is_closed() {
        let err = live.closed().await;
        if err == moq_lite::Error::Unauthorized {
            return Err(refused(connection, path, &err));
        }
    }
    Ok(())
}

/// The error for a relay that refused this session or `path`.
fn refused(connection: &Connection, path: &Path, err: &moq_lite::Error) -> anyhow::Error {
    anyhow::anyhow!("{} refused to take `{path}`: {}", connection.url, explain(err))
}

/// Waits (at most `linger`) until the relay has read every finished track,
/// then long enough for the end to reach its subscribers.
async fn drain(live: &Live, tracks: &Tracks, linger: Duration) {
    let deadline = Instant::now() + linger;
    let in_use = || {
        tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|t| t.consumer_count() > 0)
    };
    let sent = || live.session.stats().snapshot().groups_out > 0;
    // The model has no event for "a consumer came" or "every consumer of a
    // finished track left": poll, briefly. Nothing sent yet: a subscriber
    // may be on its way (one that waited for the broadcast is told of it
    // only now), so wait for one, within `linger`.
    while !in_use() && !sent() && Instant::now() < deadline && !live.is_closed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !in_use() && !sent() {
        tracing::warn!("nobody subscribed within {linger:?} of the end of input: nothing was delivered");
        return;
    }
    while in_use() && Instant::now() < deadline && !live.is_closed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let grace = deadline
        .saturating_duration_since(Instant::now())
        .min(DELIVERY_GRACE);
    tokio::select! {
        _ = tokio::time::sleep(grace) => {}
        _ = live.closed() => {}
    }
}

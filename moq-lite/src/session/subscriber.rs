//! The subscribing half of a moq-lite session: brings the peer's broadcasts
//! into an [`OriginProducer`].
//!
//! One Announce stream asks for everything the peer has; each announced
//! broadcast is published into the origin, and serves requests for its tracks
//! on demand: the first local consumer of a track opens a Subscribe stream,
//! later ones share it, and the subscription is cancelled when the last one
//! leaves. The peer's Group streams land in those tracks' caches.
//!
//! A later consumer asking for a start older than what the subscription
//! covers gets the gap fetched (-03+: a Fetch stream per group, newest first,
//! stopping at the first group the peer no longer has), into the same cache.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use web_transport_trait::Session;

use super::handshake::PeerSetup;
use super::stream::{Reader, StreamError, Writer, transport_error};
use super::{Fatal, GoawayFlag, SessionStats};
use crate::Error;
use crate::lite::{
    Announce, AnnounceEvent, AnnounceInit, AnnounceInterest, AnnounceOk, AnnounceStatus, ControlStream,
    DEFAULT_MAX_LATENCY, Datagram, Fetch, FrameHeader, FrameTimestamps, Group, HopId, Message, RouteCost,
    Subscribe, SubscribeResponse, TIMESCALE_MICROS, TrackInfo, TrackRequest, Version, to_micros,
};
use crate::model::{
    BackfillRequest, BroadcastProducer, BroadcastRequests, GroupProducer, OriginProducer, Path, TrackProducer,
};

/// How long a subscription's track stays writable after the publisher
/// finished the Subscribe stream: QUIC may deliver the last Group streams
/// after that FIN.
const FIN_GRACE: Duration = Duration::from_millis(500);

/// The largest payload chunk read at once from a group stream.
const MAX_CHUNK: usize = 64 * 1024;

/// Fetch streams one backfill keeps open at once.
const BACKFILL_CONCURRENCY: usize = 4;

/// How long one backfill group may take to arrive: consumers wait for the
/// backfill before reading, so a peer that never answers must not hold them.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(5);

/// An open subscription, by Subscribe ID: where its groups go, and (-05+)
/// the timescale of its frames' timestamps.
#[derive(Clone)]
struct Subscribed {
    track: TrackProducer,
    timescale: u64,
}

type Subscriptions = Arc<std::sync::Mutex<HashMap<u64, Subscribed>>>;

/// Brings the peer's broadcasts into our origin.
pub(crate) struct Subscriber<S: Session> {
    transport: S,
    version: Version,
    origin: OriginProducer,
    subscriptions: Subscriptions,
    next_id: Arc<AtomicU64>,
    /// Protocol violations found in tasks the session's run loop does not
    /// own (subscriptions live under their broadcast): they must still
    /// close the session.
    fatal: Fatal,
    goaway: GoawayFlag,
    /// Ours: announcements through it are loops (relays only).
    hop_id: Option<HopId>,
    /// The most broadcasts the peer may have announced at once.
    max_announced: usize,
    stats: Arc<SessionStats>,
    /// -05+: what the peer said in its SETUP.
    peer: PeerSetup,
    /// Our price for this link, if configured (else the peer's, else 1).
    link_cost: Option<u64>,
}

impl<S: Session> Clone for Subscriber<S> {
    fn clone(&self) -> Self {
        Subscriber {
            transport: self.transport.clone(),
            version: self.version,
            origin: self.origin.clone(),
            subscriptions: self.subscriptions.clone(),
            next_id: self.next_id.clone(),
            fatal: self.fatal.clone(),
            goaway: self.goaway.clone(),
            hop_id: self.hop_id,
            max_announced: self.max_announced,
            stats: self.stats.clone(),
            peer: self.peer.clone(),
            link_cost: self.link_cost,
        }
    }
}

fn lock(subscriptions: &Subscriptions) -> std::sync::MutexGuard<'_, HashMap<u64, Subscribed>> {
    subscriptions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// -06: the paths of the live announcements on one stream, by implicit ID
/// (the n-th ANNOUNCE_START has ID n).
#[derive(Default)]
struct AnnouncedIds {
    live: HashMap<u64, Path>,
    /// The paths of `live`, to refuse a second START in O(1).
    paths: HashSet<Path>,
    next: u64,
}

impl AnnouncedIds {
    /// The announcement an event means, in the older form (a restart is a
    /// second active for the path); `None` for an unknown type, skipped.
    /// Naming an ID that is not live, or starting a path that is, breaks
    /// the protocol (shipped notes, section 5).
    fn apply(&mut self, event: AnnounceEvent) -> Result<Option<Announce>, Error> {
        Ok(Some(match event {
            AnnounceEvent::Start {
                suffix,
                hops,
                cost: _,
            } => {
                if !self.paths.insert(suffix.clone()) {
                    return Err(Error::ProtocolViolation);
                }
                self.live.insert(self.next, suffix.clone());
                self.next += 1;
                Announce {
                    status: AnnounceStatus::Active,
                    suffix,
                    hops,
                }
            }
            AnnounceEvent::End { id } => {
                let suffix = self.live.remove(&id).ok_or(Error::ProtocolViolation)?;
                self.paths.remove(&suffix);
                Announce {
                    status: AnnounceStatus::Ended,
                    suffix,
                    hops: Vec::new(),
                }
            }
            AnnounceEvent::Restart { id, hops, cost: _ } => Announce {
                status: AnnounceStatus::Active,
                suffix: self.live.get(&id).cloned().ok_or(Error::ProtocolViolation)?,
                hops,
            },
            AnnounceEvent::Unknown(_) => return Ok(None),
        }))
    }
}

/// The next announcement on an Announce stream, whatever the version's
/// form; `None` at its end.
async fn next_announce<R: web_transport_trait::RecvStream>(
    reader: &mut Reader<R>,
    version: Version,
    ids: &mut AnnouncedIds,
) -> Result<Option<(Announce, RouteCost)>, StreamError> {
    if !version.has_typed_announces() {
        let msg = reader.decode(|b| Announce::decode(b, version)).await?;
        return Ok(msg.map(|msg| (msg, RouteCost::UNKNOWN)));
    }
    loop {
        let Some(event) = reader.decode(|b| AnnounceEvent::decode(b, version)).await? else {
            return Ok(None);
        };
        let cost = match &event {
            AnnounceEvent::Start { cost, .. } | AnnounceEvent::Restart { cost, .. } => *cost,
            _ => RouteCost::UNKNOWN,
        };
        if let Some(msg) = ids.apply(event).map_err(StreamError::Protocol)? {
            return Ok(Some((msg, cost)));
        }
    }
}

/// Removes a subscription from the table however its task ends.
struct Registered {
    subscriptions: Subscriptions,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.subscriptions).remove(&self.id);
    }
}

impl<S: Session> Subscriber<S> {
    pub fn new(
        transport: S,
        version: Version,
        origin: OriginProducer,
        hop_id: Option<HopId>,
        fatal: Fatal,
        goaway: GoawayFlag,
    ) -> Self {
        Subscriber {
            transport,
            version,
            origin,
            subscriptions: Arc::default(),
            next_id: Arc::default(),
            fatal,
            goaway,
            hop_id,
            max_announced: super::DEFAULT_MAX_ANNOUNCED,
            stats: Arc::default(),
            peer: PeerSetup::default(),
            link_cost: None,
        }
    }

    /// Prices this link at `cost` (see `SessionConfig::link_cost`).
    pub fn with_link_cost(mut self, cost: Option<u64>) -> Self {
        self.link_cost = cost;
        self
    }

    /// Reads the peer's SETUP (-05+) from `peer`.
    pub fn with_peer(mut self, peer: PeerSetup) -> Self {
        self.peer = peer;
        self
    }

    /// Counts what this half receives into `stats`.
    pub fn with_stats(mut self, stats: Arc<SessionStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Caps how many broadcasts the peer may have announced at once.
    pub fn with_max_announced(mut self, max: usize) -> Self {
        self.max_announced = max;
        self
    }

    /// A new bidirectional stream to the peer, framed.
    async fn open_stream(&self) -> Result<(Writer<S::SendStream>, Reader<S::RecvStream>), StreamError> {
        if self.goaway.is_set() {
            // After GOAWAY we open no new streams (subscriptions, track
            // info, backfill fetches alike).
            return Err(StreamError::Closed(Error::Cancel));
        }
        let (send, recv) = self
            .transport
            .open_bi()
            .await
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        Ok((Writer::new(send), Reader::new(recv)))
    }

    /// Follows the peer's announcements, publishing each active broadcast
    /// into the origin until it ends (or this stream does: then all end).
    // Not an async fn: one keeps its arguments twice for as long as it
    // runs, and this runs as long as the session.
    #[allow(clippy::manual_async_fn)]
    pub fn run_announce(self) -> impl std::future::Future<Output = Result<(), StreamError>> {
        async move {
            let version = self.version;
            let (mut writer, mut reader) = self.open_stream().await?;
            let interest = AnnounceInterest {
                prefix: Path::root(),
                exclude_hop: self.hop_id,
            };
            writer
                .encode(|b| {
                    ControlStream::Announce.encode(version, b)?;
                    interest.encode(version, b)
                })
                .await?;

            // -05: ANNOUNCE_OK first; its hop ID belongs at the end of every list.
            let mut responder = None;
            if version.has_announce_ok() {
                let ok = reader.decode_required(|b| AnnounceOk::decode(b, version)).await?;
                responder = Some(ok.hop).filter(|hop| !hop.is_unknown());
            }
            let mut active: HashMap<Path, BroadcastProducer> = HashMap::new();
            // -06: the live announcements' implicit IDs.
            let mut ids = AnnouncedIds::default();
            // Announced paths we ignore (loops through us), so that their end
            // is ignored too.
            let mut ignored: HashSet<Path> = HashSet::new();
            let mut tasks = JoinSet::new();
            if version.uses_setup() {
                let init = reader
                    .decode_required(|b| AnnounceInit::decode(b, version))
                    .await?;
                for path in init.suffixes {
                    if active.contains_key(&path) || ignored.contains(&path) {
                        continue;
                    }
                    if active.len() + ignored.len() >= self.max_announced {
                        tracing::warn!(max = self.max_announced, "peer announced too many broadcasts");
                        reader.stop(Error::Bounds.code());
                        writer.reset(Error::Bounds.code());
                        return Err(StreamError::Closed(Error::Bounds));
                    }
                    if !self.activate(
                        &mut active,
                        &mut tasks,
                        path.clone(),
                        (Vec::new(), RouteCost::UNKNOWN),
                    ) {
                        ignored.insert(path);
                    }
                }
            }
            loop {
                tokio::select! {
                    msg = next_announce(&mut reader, version, &mut ids) => {
                        let Some((mut msg, cost)) = msg? else {
                            return Ok(());
                        };
                        // The price of the link it came over: ours if configured,
                        // else what the peer declared in SETUP, else 1 (shipped
                        // notes, section 5).
                        let cost = cost.plus(self.link_cost.or(self.peer.cost()).unwrap_or(1));
                        if msg.status == AnnounceStatus::Active {
                            msg.hops.extend(responder);
                        }
                        // -05: a second active for a live path is a restart.
                        if version.has_announce_ok() && msg.status == AnnounceStatus::Active {
                            let was_active = active.remove(&msg.suffix).is_some();
                            if ignored.remove(&msg.suffix) || was_active {
                                tracing::debug!(path = %msg.suffix, "announcement restarted");
                            }
                        }
                                            let known = active.contains_key(&msg.suffix) || ignored.contains(&msg.suffix);
                        if !known && active.len() + ignored.len() >= self.max_announced {
                            tracing::warn!(max = self.max_announced, "peer announced too many broadcasts");
                            reader.stop(Error::Bounds.code());
                            writer.reset(Error::Bounds.code());
                            return Err(StreamError::Closed(Error::Bounds));
                        }
                        match (msg.status, known) {
                            (AnnounceStatus::Active, false) if self.hop_id.is_some_and(|id| msg.hops.contains(&id)) => {
                                                            tracing::debug!(path = %msg.suffix, "announcement loops through us");
                                ignored.insert(msg.suffix);
                            }
                            (AnnounceStatus::Active, false) => {
                                let hops = msg.hops.iter().map(|hop| hop.into_inner()).collect();
                                if !self.activate(&mut active, &mut tasks, msg.suffix.clone(), (hops, cost)) {
                                    ignored.insert(msg.suffix);
                                }
                            }
                            (AnnounceStatus::Ended, true) if ignored.remove(&msg.suffix) => {}
                                                    // Unpublished at once; its subscriptions end as the
                            // publisher ends them (their FINs may still be coming).
                            (AnnounceStatus::Ended, true) => {
                                active.remove(&msg.suffix);
                            }
                            // Statuses must alternate (section "Announce").
                            _ => {
                                reader.stop(Error::ProtocolViolation.code());
                                writer.reset(Error::ProtocolViolation.code());
                                return Err(StreamError::Protocol(Error::ProtocolViolation));
                            }
                        }
                    }
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            }
        }
    }

    fn activate(
        &self,
        active: &mut HashMap<Path, BroadcastProducer>,
        tasks: &mut JoinSet<()>,
        path: Path,
        (hops, cost): (Vec<u64>, RouteCost),
    ) -> bool {
        tracing::debug!(%path, ?hops, "announced");
        // Requests are served before the broadcast is visible, so that no
        // consumer can find it without a handler (and get NotFound).
        let broadcast = self.origin.new_broadcast();
        broadcast.set_hops(hops);
        broadcast.set_route_cost(cost);
        let requests = broadcast.requests();
        match self.origin.publish(path.clone(), &broadcast.consume()) {
            Ok(()) => {
                tasks.spawn(self.clone().serve_requests(path.clone(), requests));
                active.insert(path, broadcast);
                true
            }
            // Outside what this session may publish: ignore it (and its end).
            Err(err) => {
                tracing::debug!(%path, %err, "announcement refused");
                false
            }
        }
    }

    /// Subscribes upstream to each track a local consumer asks for, all
    /// driven from this task. When the broadcast ends no request comes any
    /// more, but the open subscriptions finish normally (the session ending
    /// cancels them all instead).
    async fn serve_requests(self, path: Path, requests: BroadcastRequests) {
        use futures::StreamExt;
        requests
            .for_each_concurrent(None, |track| self.clone().run_subscription(path.clone(), track))
            .await
    }

    /// One Subscribe stream feeding `track` until the publisher ends it, or
    /// every local consumer leaves (then we cancel it).
    async fn run_subscription(self, path: Path, mut track: TrackProducer) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Subscribed {
            track: track.clone(),
            timescale: TIMESCALE_MICROS,
        };
        lock(&self.subscriptions).insert(id, entry);
        let registered = Registered {
            subscriptions: self.subscriptions.clone(),
            id,
        };
        // If this task is cancelled (the session ended), the track is
        // aborted: losing the upstream must not read as the track's end.
        track.abort_on_drop(Error::Cancel);
        match self.subscription(id, &path, &mut track).await {
            Ok(()) => {
                // Finished by the publisher: from here the track ends cleanly
                // even if this task is cancelled while late Group streams land.
                track.cancel_abort_on_drop();
                tokio::time::sleep(FIN_GRACE).await;
                drop(registered);
                let _ = track.finish();
            }
            Err(err) => {
                drop(registered);
                track.abort(err.error().clone());
                if let StreamError::Protocol(err) = err {
                    self.fatal.report(err);
                }
            }
        }
    }

    async fn subscription(&self, id: u64, path: &Path, track: &mut TrackProducer) -> Result<(), StreamError> {
        let version = self.version;
        if version.has_track_stream() {
            // -05: the track's timescale first (and whether it exists at all),
            // before any group can arrive.
            let info = self.track_info(path, track.info().name.clone()).await?;
            if let Some(entry) = lock(&self.subscriptions).get_mut(&id) {
                entry.timescale = info.timescale;
            }
        }
        let (mut writer, mut reader) = self.open_stream().await?;
        let start = track.requested_start();
        let msg = Subscribe {
            id,
            broadcast: path.clone(),
            track: track.info().name.clone(),
            priority: track.info().priority,
            // -06: no start floor and a Max Age means "from the oldest group
            // still fresh"; the live edge is asked for with Max Age 0.
            max_latency: match start {
                None if version.has_frame_bounds() => Duration::ZERO,
                _ => DEFAULT_MAX_LATENCY,
            },
            start_group: start,
            ..Default::default()
        };
        tracing::debug!(id, broadcast = %path, track = %msg.track, "subscribing");
        writer
            .encode(|b| {
                ControlStream::Subscribe.encode(version, b)?;
                msg.encode(version, b)
            })
            .await?;
        if Fetch::exists_in(version) {
            // Older groups a later consumer asks for are fetched.
            track.serve_backfill(start);
        }
        let mut backfills = JoinSet::new();
        // A second handle to wait on for backfill requests beside `unused`.
        let mut backfill_requests = track.clone();

        // Up to -04 the first reply must be SUBSCRIBE_OK (section
        // "Subscribe"); later ones (more OKs, drops) are informational here.
        // From -05 the publisher ends with SUBSCRIBE_END before its FIN.
        let mut first = true;
        let mut ended = false;
        loop {
            tokio::select! {
                reply = reader.decode(|b| SubscribeResponse::decode(b, version)) => match reply? {
                    Some(SubscribeResponse::Drop(_)) if first && !version.has_subscribe_end() => {
                        return Err(StreamError::Protocol(Error::ProtocolViolation));
                    }
                    Some(SubscribeResponse::Drop(drop)) => {
                        // Groups the publisher will not send: our consumers
                        // count them as skipped (and a relay says so on).
                        tracing::debug!(id, start = drop.start, end = drop.end, "groups dropped upstream");
                        if drop.start <= drop.end {
                            track.drop_groups(drop.start..=drop.end);
                        }
                        first = false;
                    }
                    Some(SubscribeResponse::End(end)) => {
                        tracing::trace!(id, end = end.group, "subscription ends");
                        ended = true;
                    }
                    Some(reply) => {
                        tracing::trace!(id, ?reply, "subscribe reply");
                        first = false;
                    }
                    None if version.has_subscribe_end() && !ended => {
                        // The track cannot be trusted complete: it errors, the
                        // session goes on (shipped notes, section 6).
                        tracing::debug!(id, "subscription finished without SUBSCRIBE_END");
                        return Err(StreamError::Closed(Error::ProtocolViolation));
                    }
                    None => {
                        writer.finish()?;
                        return Ok(());
                    }
                },
                request = backfill_requests.backfill() => {
                    let info = track.info().clone();
                    backfills.spawn(self.clone().backfill(id, path.clone(), info, request));
                }
                Some(_) = backfills.join_next(), if !backfills.is_empty() => {}
                _ = track.unused() => {
                    // A subscriber that found the track since the wake-up
                    // keeps it; otherwise it ends here, before anyone else can
                    // find it, and the next subscriber asks afresh.
                    if !track.abort_if_unused(Error::Cancel) {
                        continue;
                    }
                    tracing::debug!(id, "unsubscribing");
                    writer.reset(Error::Cancel.code());
                    reader.stop(Error::Cancel.code());
                    return Err(StreamError::Closed(Error::Cancel));
                }
            }
        }
    }

    /// A Track stream (-05+): TRACK, then the publisher's TRACK_INFO. A reset
    /// (the track does not exist) ends the subscription with its error.
    async fn track_info(&self, path: &Path, track: String) -> Result<TrackInfo, StreamError> {
        let version = self.version;
        let (mut writer, mut reader) = self.open_stream().await?;
        let request = TrackRequest {
            broadcast: path.clone(),
            track,
        };
        writer
            .encode(|b| {
                ControlStream::Track.encode(version, b)?;
                request.encode(version, b)
            })
            .await?;
        // Our side stays open until the answer: the shipped publisher reads
        // an early FIN as a cancel.
        let info = reader.decode_required(|b| TrackInfo::decode(b, version)).await?;
        writer.finish()?;
        tracing::trace!(broadcast = %path, ?info, "track info");
        Ok(info)
    }

    /// Fetches the groups of `request` (-03+), newest first, a few at a
    /// time, until one is no longer held upstream (caches evict oldest
    /// first, so the older ones are gone too). Dropping the request at the
    /// end releases the consumers waiting for it.
    async fn backfill(self, id: u64, path: Path, info: crate::model::Track, request: BackfillRequest) {
        use futures::StreamExt;
        tracing::debug!(id, range = ?request.range(), "backfilling");
        let mut wanted = request.range().rev();
        let mut inflight = futures::stream::FuturesUnordered::new();
        let mut exhausted = false;
        loop {
            while !exhausted && inflight.len() < BACKFILL_CONCURRENCY {
                let Some(sequence) = wanted.next() else { break };
                let fetch = self.fetch_group(id, &path, &info, sequence, &request);
                inflight.push(async move { (sequence, tokio::time::timeout(BACKFILL_TIMEOUT, fetch).await) });
            }
            let Some((sequence, fetched)) = inflight.next().await else {
                break;
            };
            match fetched {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    tracing::debug!(id, sequence, "no longer held upstream");
                    exhausted = true;
                }
                Ok(Err(err)) => {
                    tracing::debug!(id, sequence, err = %err.error(), "backfill failed");
                    exhausted = true;
                    if let StreamError::Protocol(err) = err {
                        self.fatal.report(err);
                    }
                }
                Err(_) => {
                    tracing::debug!(id, sequence, "backfill timed out");
                    exhausted = true;
                }
            }
        }
    }

    /// A Fetch stream for group `sequence`: its frames go into the track as
    /// a backfilled group. `Ok(false)`: the peer does not hold it.
    async fn fetch_group(
        &self,
        id: u64,
        path: &Path,
        info: &crate::model::Track,
        sequence: u64,
        request: &BackfillRequest,
    ) -> Result<bool, StreamError> {
        let version = self.version;
        let (mut writer, mut reader) = self.open_stream().await?;
        let msg = Fetch {
            broadcast: path.clone(),
            track: info.name.clone(),
            priority: info.priority,
            group: sequence,
            ..Default::default()
        };
        writer
            .encode(|b| {
                ControlStream::Fetch.encode(version, b)?;
                msg.encode(version, b)
            })
            .await?;
        // The group is created once the peer answers with a frame (or an
        // empty group's FIN): a reset means it does not hold the group.
        let first = match reader.decode(|b| FrameHeader::decode(b, version)).await {
            Ok(first) => first,
            Err(StreamError::Closed(_)) => return Ok(false),
            Err(err) => return Err(err),
        };
        let _ = writer.finish();
        let Some(timescale) = lock(&self.subscriptions).get(&id).map(|s| s.timescale) else {
            return Ok(true); // The subscription is over.
        };
        let group = match request.create_group(sequence) {
            Ok(mut group) => {
                group.abort_on_drop(Error::Cancel);
                group
            }
            Err(err) => {
                // Already here (a live group raced it), or too old to keep.
                reader.stop(err.code());
                return Ok(true);
            }
        };
        self.stats.group_in();
        self.read_frames(&mut reader, group, timescale, first).await?;
        Ok(true)
    }

    /// A datagram (-05+): a group of one frame for an open subscription;
    /// anything else is dropped, as the text says.
    pub fn recv_datagram(&self, datagram: bytes::Bytes) {
        let Ok(datagram) = Datagram::decode(datagram) else {
            tracing::trace!("malformed datagram");
            return;
        };
        let Some(entry) = lock(&self.subscriptions).get(&datagram.subscribe).cloned() else {
            return;
        };
        let Subscribed { mut track, timescale } = entry;
        let size = datagram.payload.len() as u64;
        let timestamp = to_micros(datagram.timestamp, timescale);
        // Kept a datagram: a relay forwards it as one.
        if track
            .insert_datagram(datagram.sequence, datagram.payload, timestamp)
            .is_ok()
        {
            self.stats.group_in();
            self.stats.frame_in(size);
        }
    }

    /// A Group stream from the peer: its frames go into the subscribed
    /// track's cache as they arrive.
    pub async fn recv_group(self, mut reader: Reader<S::RecvStream>) -> Result<(), StreamError> {
        let version = self.version;
        let header = reader.decode_required(|b| Group::decode(b, version)).await?;
        let entry = lock(&self.subscriptions).get(&header.subscribe).cloned();
        let Some(Subscribed { mut track, timescale }) = entry else {
            // A subscription we already cancelled, most likely.
            reader.stop(Error::NotFound.code());
            return Ok(());
        };
        let created = track.create_group(header.sequence);
        // Holding a producer would keep the track open after it should end.
        drop(track);
        self.stats.group_in();
        let group = match created {
            // If this task is cancelled (the session ends), the group is
            // aborted: a group cut short must not read as complete.
            Ok(mut group) => {
                group.abort_on_drop(Error::Cancel);
                group
            }
            Err(err) => {
                reader.stop(err.code());
                return Ok(());
            }
        };

        let first = match reader.decode(|b| FrameHeader::decode(b, version)).await {
            Ok(first) => first,
            Err(err) => {
                group.abort(err.error().clone());
                return Err(err);
            }
        };
        self.read_frames(&mut reader, group, timescale, first).await
    }

    /// The frames of a Group or Fetch stream into `group`, starting with the
    /// already decoded header `first` (`None`: the stream ended there), until
    /// the stream's FIN finishes the group.
    async fn read_frames(
        &self,
        reader: &mut Reader<S::RecvStream>,
        mut group: GroupProducer,
        timescale: u64,
        first: Option<FrameHeader>,
    ) -> Result<(), StreamError> {
        let version = self.version;
        let mut next = Some(first);
        let mut stamps = FrameTimestamps::default();
        loop {
            let decoded = match next.take() {
                Some(first) => Ok(first),
                None => reader.decode(|b| FrameHeader::decode(b, version)).await,
            };
            let frame = match decoded {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    let _ = group.finish();
                    return Ok(());
                }
                Err(err) => {
                    group.abort(err.error().clone());
                    return Err(err);
                }
            };
            let timestamp = if version.has_timestamps() {
                match stamps.timestamp(frame.delta) {
                    Ok(timestamp) => Some(to_micros(timestamp, timescale)),
                    Err(err) => {
                        group.abort(Error::ProtocolViolation);
                        return Err(err.into());
                    }
                }
            } else {
                None
            };
            let mut writer = match group.create_frame_at(frame.size, timestamp) {
                Ok(writer) => writer,
                Err(err) => {
                    reader.stop(err.code());
                    return Ok(());
                }
            };
            self.stats.frame_in(frame.size);
            let mut remaining = frame.size;
            while remaining > 0 {
                let max = usize::try_from(remaining).unwrap_or(usize::MAX).min(MAX_CHUNK);
                match reader.read_chunk(max).await {
                    Ok(Some(chunk)) => {
                        remaining -= chunk.len() as u64;
                        if let Err(err) = writer.write(chunk) {
                            reader.stop(err.code());
                            return Ok(());
                        }
                    }
                    // The stream ended inside a frame.
                    Ok(None) => {
                        group.abort(Error::WrongSize);
                        return Err(StreamError::Protocol(Error::WrongSize));
                    }
                    Err(err) => {
                        group.abort(err.error().clone());
                        return Err(err);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::RouteCost;

    fn start(path: &str) -> AnnounceEvent {
        AnnounceEvent::Start {
            suffix: Path::new(path),
            hops: vec![],
            cost: RouteCost::default(),
        }
    }

    #[test]
    fn lite06_ids_name_live_announcements() {
        let mut ids = AnnouncedIds::default();
        let a = ids.apply(start("a")).unwrap().unwrap();
        assert_eq!((a.status, a.suffix), (AnnounceStatus::Active, Path::new("a")));
        ids.apply(start("b")).unwrap();
        // An unknown type takes no ID.
        assert_eq!(ids.apply(AnnounceEvent::Unknown(7)), Ok(None));
        let restart = AnnounceEvent::Restart {
            id: 1,
            hops: vec![HopId::from_wire(3)],
            cost: RouteCost::default(),
        };
        let b = ids.apply(restart).unwrap().unwrap();
        assert_eq!(
            (b.status, b.suffix, b.hops),
            (AnnounceStatus::Active, Path::new("b"), vec![HopId::from_wire(3)])
        );
        let ended = ids.apply(AnnounceEvent::End { id: 0 }).unwrap().unwrap();
        assert_eq!(
            (ended.status, ended.suffix),
            (AnnounceStatus::Ended, Path::new("a"))
        );
        // The next START is ID 2 (IDs are never reused).
        ids.apply(start("a")).unwrap();
        assert!(ids.apply(AnnounceEvent::End { id: 2 }).is_ok());
    }

    #[test]
    fn lite06_id_misuse_is_a_protocol_violation() {
        let mut ids = AnnouncedIds::default();
        ids.apply(start("a")).unwrap();
        // A second START for a live path, END or RESTART of an ID not live.
        assert_eq!(ids.apply(start("a")), Err(Error::ProtocolViolation));
        assert_eq!(
            ids.apply(AnnounceEvent::End { id: 5 }),
            Err(Error::ProtocolViolation)
        );
        ids.apply(AnnounceEvent::End { id: 0 }).unwrap();
        assert_eq!(
            ids.apply(AnnounceEvent::End { id: 0 }),
            Err(Error::ProtocolViolation)
        );
        let restart = AnnounceEvent::Restart {
            id: 0,
            hops: vec![],
            cost: RouteCost::default(),
        };
        assert_eq!(ids.apply(restart), Err(Error::ProtocolViolation));
    }
}

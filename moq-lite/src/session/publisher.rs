//! The publishing half of a moq-lite session: serves the broadcasts of an
//! [`OriginConsumer`] to the peer.
//!
//! The peer (the subscriber) opens every control stream: Announce streams are
//! answered from the origin's live announcements, Subscribe streams with one
//! unidirectional Group stream per group, Fetch streams with one cached group,
//! Probe streams with bitrate / RTT estimates. Group streams get QUIC send
//! priorities from the subscriber's and publisher's priority and the group's
//! age, so that under congestion the newest, most important data goes first;
//! groups older than the subscriber's max latency are reset, not queued.

use crate::model::Path;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use web_transport_trait::{Session, Stats};

use super::events::Events;
use super::handshake::PeerSetup;
use super::stream::{Reader, StreamError, Writer, transport_error};
use super::{GoawayFlag, SessionStats};
use crate::Error;
use crate::delivery::{InflightGroups, stream_priority};
use crate::lite::{
    Announce, AnnounceEvent, AnnounceInit, AnnounceInterest, AnnounceOk, AnnounceStatus, DEFAULT_MAX_LATENCY,
    DataStream, Fetch, FrameHeader, FrameTimestamps, Group, HopId, MAX_HOPS, Message, Probe, RouteCost,
    Subscribe, SubscribeDrop, SubscribeEnd, SubscribeOk, SubscribeResponse, SubscribeStart, SubscribeUpdate,
    TIMESCALE_MICROS, TrackInfo, TrackRequest, Version,
};
use crate::model::{BroadcastConsumer, FETCH_WAIT, GroupConsumer, OriginConsumer, Track, TrackNext};

/// How often a Probe stream reports estimates when the subscriber is quiet.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Serves our broadcasts to the peer.
pub(crate) struct Publisher<S: Session> {
    transport: S,
    version: Version,
    origin: OriginConsumer,
    /// Ours, appended to every announced broadcast's hops (relays only).
    hop_id: Option<HopId>,
    goaway: GoawayFlag,
    stats: Arc<SessionStats>,
    /// Subscribe IDs of the subscriptions open now.
    subscribe_ids: Arc<std::sync::Mutex<HashSet<u64>>>,
    /// Where announce interests the peer refused what we announced on go,
    /// with why.
    events: Arc<Events>,
    /// -05+: what the peer said in its SETUP.
    peer: PeerSetup,
}

/// How many refusals a session remembers.
const MAX_REFUSALS: usize = 64;

impl<S: Session> Clone for Publisher<S> {
    fn clone(&self) -> Self {
        Publisher {
            transport: self.transport.clone(),
            version: self.version,
            origin: self.origin.clone(),
            hop_id: self.hop_id,
            goaway: self.goaway.clone(),
            stats: self.stats.clone(),
            subscribe_ids: self.subscribe_ids.clone(),
            events: self.events.clone(),
            peer: self.peer.clone(),
        }
    }
}

impl<S: Session> Publisher<S> {
    pub fn new(
        transport: S,
        version: Version,
        origin: OriginConsumer,
        hop_id: Option<HopId>,
        goaway: GoawayFlag,
        stats: Arc<SessionStats>,
    ) -> Self {
        Publisher {
            transport,
            version,
            origin,
            hop_id,
            goaway,
            stats,
            subscribe_ids: Arc::default(),
            events: Arc::default(),
            peer: PeerSetup::default(),
        }
    }

    /// Reads the peer's SETUP (-05+) from `peer`.
    pub fn with_peer(mut self, peer: PeerSetup) -> Self {
        self.peer = peer;
        self
    }

    /// The session's events, which this publisher's refusals go to: see
    /// [`crate::Session::refused`].
    pub fn events(&self) -> Arc<Events> {
        self.events.clone()
    }

    /// The hop list to announce for `broadcast`, or `None` to keep it from
    /// this peer: it came through the peer's excluded hop (a loop), or
    /// through more relays than a message may list.
    fn announced_hops(&self, broadcast: &BroadcastConsumer, exclude: Option<HopId>) -> Option<Vec<HopId>> {
        let raw = broadcast.hops();
        if exclude.is_some_and(|hop| raw.contains(&hop.into_inner())) {
            return None;
        }
        let mut hops = raw
            .into_iter()
            .map(|hop| HopId::new(hop).unwrap_or(HopId::UNKNOWN))
            .collect::<Vec<_>>();
        // From -05 our own ID goes once, in ANNOUNCE_OK, not in every list.
        if !self.version.has_announce_ok() {
            hops.extend(self.hop_id);
        }
        (hops.len() <= MAX_HOPS).then_some(hops)
    }

    /// An Announce stream: replay what is active under the prefix, then
    /// every change, until either side closes the stream.
    // Not an async fn (nor is `announce`): an async fn keeps each argument
    // twice, as passed and rebound, for as long as it runs, and an Announce
    // stream runs as long as the session.
    #[allow(clippy::manual_async_fn)]
    pub fn serve_announce(
        self,
        writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> impl std::future::Future<Output = Result<(), StreamError>> {
        async move {
            let version = self.version;
            let interest = reader
                .decode_required(|b| AnnounceInterest::decode(b, version))
                .await?;
            let prefix = interest.prefix.clone();
            let events = self.events.clone();
            let result = self.announce(interest, writer, reader).await;
            // A peer that ends the stream with Bounds (we announced more than it
            // takes) or Unauthorized refused what we announce under `prefix`.
            if let Err(StreamError::Closed(err @ (Error::Bounds | Error::Unauthorized))) = &result {
                tracing::warn!(%prefix, %err, "the peer refused our announcements");
                events.refuse(prefix, err.clone(), MAX_REFUSALS);
            }
            result
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn announce(
        self,
        mut interest: AnnounceInterest,
        mut writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> impl std::future::Future<Output = Result<(), StreamError>> {
        async move {
            let version = self.version;
            // -05: an Exclude Hop of 0 means the peer's own ID, from its SETUP.
            if interest.exclude_hop.is_none() {
                interest.exclude_hop = self.peer.hop();
            }
            let ok = |active_count| AnnounceOk {
                hop: self.hop_id.unwrap_or(HopId::UNKNOWN),
                active_count,
            };
            let Some(mut origin) = self.origin.with_root(interest.prefix.clone()) else {
                // Outside what this peer may see: the answer is "nothing there",
                // not a reset, which deployed peers treat as fatal to the session.
                tracing::debug!(prefix = %interest.prefix, "announce interest outside our origin");
                if version.uses_setup() {
                    let empty = AnnounceInit { suffixes: Vec::new() };
                    writer.encode(|b| empty.encode(version, b)).await?;
                }
                if version.has_announce_ok() {
                    writer.encode(|b| ok(0).encode(version, b)).await?;
                }
                reader.finished().await?;
                return writer.finish();
            };
            // Paths whose active broadcast we keep from this peer, so that their
            // end is not announced either (statuses must alternate).
            let mut withheld = HashSet::new();
            tracing::debug!(prefix = %interest.prefix, "announce interest");

            if version.uses_setup() {
                // -01/02 open with ANNOUNCE_INIT: the whole active set at once.
                let mut suffixes = Vec::new();
                while let Some(announced) = origin.try_announced() {
                    match announced.broadcast {
                        Some(broadcast)
                            if self.announced_hops(&broadcast, interest.exclude_hop).is_some() =>
                        {
                            suffixes.push(announced.path)
                        }
                        Some(_) => {
                            withheld.insert(announced.path);
                        }
                        None => {
                            withheld.remove(&announced.path);
                            suffixes.retain(|p| *p != announced.path)
                        }
                    }
                }
                writer
                    .encode(|b| AnnounceInit { suffixes }.encode(version, b))
                    .await?;
            }

            // -06: the implicit IDs of what this stream announced.
            let mut ids = AnnounceIds::default();
            if version.has_announce_ok() {
                // -05: ANNOUNCE_OK counts the initial set, which follows at once.
                let mut initial: Vec<(Path, (Vec<HopId>, RouteCost))> = Vec::new();
                while let Some(announced) = origin.try_announced() {
                    initial.retain(|(path, _)| *path != announced.path);
                    match announced.broadcast {
                        Some(broadcast) => match self.announced_hops(&broadcast, interest.exclude_hop) {
                            Some(hops) => {
                                withheld.remove(&announced.path);
                                initial.push((announced.path, (hops, broadcast.route_cost())));
                            }
                            None => {
                                withheld.insert(announced.path);
                            }
                        },
                        None => {
                            withheld.remove(&announced.path);
                        }
                    }
                }
                writer
                    .encode(|b| {
                        ok(initial.len() as u64).encode(version, b)?;
                        for (suffix, route) in initial {
                            ids.encode(version, suffix, Some(route), b)?;
                        }
                        Ok(())
                    })
                    .await?;
            }

            loop {
                tokio::select! {
                    announced = origin.announced() => {
                        let Some(announced) = announced else {
                            return writer.finish();
                        };
                        let route = match announced.broadcast {
                            Some(broadcast) => match self.announced_hops(&broadcast, interest.exclude_hop) {
                                Some(hops) => Some((hops, broadcast.route_cost())),
                                None => {
                                    withheld.insert(announced.path);
                                    continue;
                                }
                            },
                            None if withheld.remove(&announced.path) => continue,
                            None => None,
                        };
                        writer.encode(|b| ids.encode(version, announced.path, route, b)).await?;
                    }
                    done = reader.finished() => return done,
                }
            }
        }
    }

    /// A Subscribe stream: SUBSCRIBE_OK, then a Group stream per group until
    /// the track ends, the range is done, or the subscriber cancels.
    pub async fn serve_subscribe(
        self,
        mut writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> Result<(), StreamError> {
        let version = self.version;
        let msg = reader.decode_required(|b| Subscribe::decode(b, version)).await?;
        tracing::debug!(id = msg.id, broadcast = %msg.broadcast, track = %msg.track, "subscribe");
        // Group streams name their subscription by ID: two open subscriptions
        // with one ID would be indistinguishable (section "SUBSCRIBE").
        let Some(_id) = SubscribeId::claim(&self.subscribe_ids, msg.id) else {
            writer.reset(Error::Duplicate.code());
            reader.stop(Error::Duplicate.code());
            return Ok(());
        };
        let info = Track::new(msg.track.clone()).with_priority(msg.priority);
        // -06: Group Start is a floor, and the start is the oldest group the
        // subscriber's Max Age still takes (shipped notes, section 6): with
        // no floor and a Max Age, the oldest we hold; Max Age 0 asks for the
        // live edge. (We start at the oldest held group, not the oldest
        // within Max Age: the cache bounds how far back that reaches.)
        let requested = match msg.start_group {
            None if version.has_frame_bounds() && !msg.max_latency.is_zero() => Some(0),
            start => start,
        };
        let found = self
            .origin
            .consume_broadcast(msg.broadcast.clone())
            .ok_or(Error::NotFound)
            .and_then(|broadcast| broadcast.subscribe_track_from(&info, requested));
        let mut track = match found {
            Ok(track) => track,
            Err(err) => {
                writer.reset(err.code());
                reader.stop(err.code());
                return Ok(());
            }
        };
        let publisher_priority = track.info().priority;
        // The start SUBSCRIBE_OK states: the explicit one, else the latest
        // group now. Only an explicit start filters groups: the consumer
        // already starts at the latest group as of its creation, and more
        // may have arrived since (they are the subscriber's, not skipped).
        let start = requested.or(track.latest());
        let ok = |start_group: Option<u64>, end_group: Option<u64>| {
            SubscribeResponse::Ok(SubscribeOk {
                priority: publisher_priority,
                ordered: false,
                max_latency: DEFAULT_MAX_LATENCY,
                start_group,
                end_group,
            })
        };
        // -05: SUBSCRIBE_START names the first group delivered, with it (a
        // requested start may lie before what is held); SUBSCRIBE_END closes
        // the range.
        let mut start_sent = false;
        if !version.has_subscribe_end() {
            // Exactly one SUBSCRIBE_OK, even when the start is not known yet (0
            // on the wire): the text asks for a second one resolving it, but
            // deployed lite-03/04 subscribers read one and fail on anything
            // after it, and the reference publisher never sends a second.
            writer
                .encode(|b| ok(start, msg.end_group).encode(version, b))
                .await?;
        }
        let _subscribed = Subscribed::new(&self.stats);
        // One past the newest group we served or passed over (-05's END).
        let mut end_next = start.unwrap_or(0);

        let mut sub = Subscription {
            id: msg.id,
            priority: msg.priority,
            publisher_priority,
            ordered: msg.ordered,
            max_latency: msg.max_latency,
            start: msg.start_group,
            end: msg.end_group,
            frame_start: msg.frame_start,
            frame_end: msg.frame_end,
            skipped: 0,
        };
        let mut groups: JoinSet<u64> = JoinSet::new();
        // Each group's task, and the group (for its first timestamp).
        let mut inflight: InflightGroups<(AbortHandle, GroupConsumer)> = InflightGroups::new();
        // An end before the start is an empty range: every group is accounted for.
        let mut ending = sub.range_is_empty();

        loop {
            if ending && groups.is_empty() {
                if version.has_subscribe_end() {
                    if let Some(end) = sub.end {
                        end_next = end_next.max(end.saturating_add(1));
                    }
                    let msg = SubscribeResponse::End(SubscribeEnd { group: end_next });
                    writer.encode(|b| msg.encode(version, b)).await?;
                }
                return writer.finish();
            }
            tokio::select! {
                update = reader.decode(|b| SubscribeUpdate::decode(b, version)) => match update {
                    Ok(Some(update)) => {
                        sub.update(update, &mut inflight);
                        ending |= sub.range_is_empty();
                    }
                    // The subscriber closed or reset its side: unsubscribe.
                    Ok(None) | Err(StreamError::Closed(_)) => return Ok(()),
                    Err(err) => return Err(err),
                },
                // Ordered delivery waits for room; live delivery makes room below.
                next = track.next_or_skipped(), if !ending && (!sub.ordered || inflight.has_room()) => match next {
                    // Skipped groups with no group to send yet: said at once.
                    Ok(TrackNext::Skipped) => report_drops(&mut writer, version, &mut track, sub.end).await?,
                    Ok(TrackNext::Group(group)) => {
                        // Groups the cache evicted before we could send them
                        // (or said not to come): -05+ says which.
                        let skipped = track.skipped();
                        self.stats.dropped(skipped - sub.skipped);
                        sub.skipped = skipped;
                        report_drops(&mut writer, version, &mut track, sub.end).await?;
                        let sequence = group.sequence();
                        if sub.end.is_some_and(|end| sequence > end) {
                            // Groups past the end arrive: the range is done.
                            ending = true;
                            continue;
                        }
                        if sub.start.is_some_and(|start| sequence < start) {
                            // Before a start an update moved forward.
                            continue;
                        }
                        end_next = end_next.max(sequence.saturating_add(1));
                        if !start_sent && version.has_subscribe_end() {
                            let msg = SubscribeResponse::Start(SubscribeStart { group: sequence });
                            writer.encode(|b| msg.encode(version, b)).await?;
                            start_sent = true;
                        }
                        if self.goaway.is_set() {
                            // After GOAWAY we open no new streams.
                            continue;
                        }
                        let now = Instant::now();
                        // Expired by arrival age, or (-05+) by media age.
                        let mut dropped = inflight.expire(sequence, now, sub.max_latency);
                        if version.has_timestamps() {
                            dropped.extend(inflight.expire_by_timestamp(sub.max_latency, |(_, g)| g.first_timestamp()));
                        }
                        dropped.extend(inflight.make_room());
                        self.stats.dropped(dropped.len() as u64);
                        // Aborting drops the task's Writer, which resets the stream.
                        dropped.iter().for_each(|(task, _)| task.abort());
                        let watched = group.clone();
                        let task = serve_group(
                            self.transport.clone(),
                            version,
                            sub.id,
                            sub.stream_priority(sequence),
                            group,
                            self.stats.clone(),
                            sub.frames(sequence),
                        );
                        inflight.insert(sequence, now, (groups.spawn(task), watched));
                        ending = sub.end == Some(sequence);
                    }
                    Ok(TrackNext::End) => {
                        ending = true;
                        report_drops(&mut writer, version, &mut track, sub.end).await?;
                    }
                    Err(err) => {
                        writer.reset(err.code());
                        return Ok(());
                    }
                },
                Some(done) = groups.join_next(), if !groups.is_empty() => {
                    if let Ok(sequence) = done {
                        inflight.remove(sequence);
                    }
                }
            }
        }
    }

    /// A Fetch stream (-03+): the frames of one cached group, then FIN.
    pub async fn serve_fetch(
        self,
        mut writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> Result<(), StreamError> {
        let version = self.version;
        let fetch = reader.decode_required(|b| Fetch::decode(b, version)).await?;
        let info = Track::new(fetch.track.clone()).with_priority(fetch.priority);
        // Starting at the group makes a relay ask its upstream for it (a
        // backfill, or a subscription from there) when it does not hold it.
        let track = self
            .origin
            .consume_broadcast(fetch.broadcast.clone())
            .ok_or(Error::NotFound)
            .and_then(|broadcast| broadcast.subscribe_track_from(&info, Some(fetch.group)));
        let group = match track {
            Ok(mut track) => tokio::time::timeout(FETCH_WAIT, track.wait_group(fetch.group))
                .await
                .ok()
                .flatten()
                .ok_or(Error::NotFound),
            Err(err) => Err(err),
        };
        let mut group = match group {
            Ok(group) => group,
            Err(err) => {
                writer.reset(err.code());
                return Ok(());
            }
        };
        writer.set_priority(stream_priority(fetch.priority, 0, fetch.group, false));
        // -06: the frames from Frame Start to Frame End (inclusive).
        let range = (fetch.frame_start, fetch.frame_end);
        match write_frames(&mut writer, &mut group, version, &self.stats, range).await {
            Ok(()) => writer.finish(),
            Err(err) => {
                writer.reset(err.error().code());
                Ok(())
            }
        }
    }

    /// A Track stream (-05+): TRACK_INFO for the named track, then FIN; a
    /// track we cannot serve resets the stream.
    ///
    /// Our timestamps are microseconds, so that is the timescale we state;
    /// the priority is the publisher's where the track is here. Asking is
    /// not subscribing: nothing is requested upstream and the publisher does
    /// not see a subscriber (a relay answers a track it would have to ask
    /// for with the defaults; the SUBSCRIBE that follows learns whether it
    /// exists).
    pub async fn serve_track(
        self,
        mut writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> Result<(), StreamError> {
        let version = self.version;
        let request = reader
            .decode_required(|b| TrackRequest::decode(b, version))
            .await?;
        tracing::debug!(broadcast = %request.broadcast, track = %request.track, "track info");
        let found = self
            .origin
            .consume_broadcast(request.broadcast.clone())
            .ok_or(Error::NotFound)
            .and_then(|broadcast| broadcast.track_info(&request.track));
        let track = match found {
            Ok(track) => track,
            Err(err) => {
                writer.reset(err.code());
                reader.stop(err.code());
                return Ok(());
            }
        };
        let info = TrackInfo {
            priority: track.map_or(TrackInfo::default().priority, |t| t.priority),
            timescale: TIMESCALE_MICROS,
            ..TrackInfo::default()
        };
        writer.encode(|b| info.encode(version, b)).await?;
        writer.finish()
    }

    /// A Probe stream: answer each target with our estimate, and report it
    /// periodically. Our estimate is quinn's congestion state; we do not pad.
    pub async fn serve_probe(
        self,
        mut writer: Writer<S::SendStream>,
        mut reader: Reader<S::RecvStream>,
    ) -> Result<(), StreamError> {
        let version = self.version;
        let mut interval = tokio::time::interval(PROBE_INTERVAL);
        loop {
            tokio::select! {
                // Some peers open the stream and never send PROBE: not an error.
                target = reader.decode(|b| Probe::decode(b, version)) => match target {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(StreamError::Closed(_)) => return Ok(()),
                    Err(err) => return Err(err),
                },
                _ = interval.tick() => {}
            }
            let estimate = {
                let stats = self.transport.stats();
                Probe {
                    bitrate: stats.estimated_send_rate().unwrap_or(0),
                    rtt_ms: stats
                        .rtt()
                        .map_or(0, |rtt| rtt.as_millis().try_into().unwrap_or(u64::MAX)),
                }
            };
            writer.encode(|b| estimate.encode(version, b)).await?;
        }
    }
}

/// The announcements of one Announce stream as they go on the wire: -06
/// names them by implicit IDs (the n-th ANNOUNCE_START is ID n), older
/// versions by path with a status.
#[derive(Default)]
struct AnnounceIds {
    live: HashMap<Path, u64>,
    next: u64,
}

impl AnnounceIds {
    /// Writes that `suffix` is active with `hops` over a route costing
    /// `cost`, or ended (`None`).
    fn encode(
        &mut self,
        version: Version,
        suffix: Path,
        route: Option<(Vec<HopId>, RouteCost)>,
        buf: &mut bytes::BytesMut,
    ) -> Result<(), crate::coding::EncodeError> {
        let hops = route.as_ref().map(|(hops, _)| hops.clone());
        let cost = route.map_or(RouteCost::LOCAL, |(_, cost)| cost);
        if !version.has_typed_announces() {
            let msg = match hops {
                Some(hops) => Announce {
                    status: AnnounceStatus::Active,
                    suffix,
                    hops,
                },
                None => Announce {
                    status: AnnounceStatus::Ended,
                    suffix,
                    hops: Vec::new(),
                },
            };
            return msg.encode(version, buf);
        }
        // The route's cost as it reached us; the receiver adds the link's price.
        let event = match (hops, self.live.get(&suffix).copied()) {
            // A new route for a live path: a second START would be a violation.
            (Some(hops), Some(id)) => AnnounceEvent::Restart { id, hops, cost },
            (Some(hops), None) => {
                self.live.insert(suffix.clone(), self.next);
                self.next += 1;
                AnnounceEvent::Start { suffix, hops, cost }
            }
            (None, Some(id)) => {
                self.live.remove(&suffix);
                AnnounceEvent::End { id }
            }
            (None, None) => return Ok(()),
        };
        event.encode(version, buf)
    }
}

/// What a subscriber asked for, as updated by SUBSCRIBE_UPDATE.
struct Subscription {
    id: u64,
    priority: u8,
    publisher_priority: u8,
    ordered: bool,
    max_latency: Duration,
    /// The first group to send, when the subscriber named one (or an
    /// update moved it); `None`: wherever the track consumer started.
    start: Option<u64>,
    end: Option<u64>,
    /// -06: the first frame of the start group, the last of the end group.
    frame_start: u64,
    frame_end: Option<u64>,
    /// The track consumer's skip count last time we looked.
    skipped: u64,
}

impl Subscription {
    /// Applies a SUBSCRIBE_UPDATE: "The start and end group can be changed
    /// in either direction". A later start resets the streams of groups
    /// before it still in flight; an earlier one applies to groups still to
    /// come (those already passed are not sent again). A start of 0 (none)
    /// keeps the current one.
    fn update(
        &mut self,
        update: SubscribeUpdate,
        inflight: &mut InflightGroups<(AbortHandle, GroupConsumer)>,
    ) {
        self.priority = update.priority;
        self.ordered = update.ordered;
        self.max_latency = update.max_latency;
        self.end = update.end_group;
        self.frame_end = update.frame_end;
        if let Some(start) = update.start_group {
            self.start = Some(start);
            self.frame_start = update.frame_start;
            // Aborting drops the task's Writer, which resets the stream.
            inflight
                .drop_before(start)
                .iter()
                .for_each(|(task, _)| task.abort());
        }
    }

    /// The frames of group `sequence` to send (-06 frame bounds): from
    /// Frame Start in the start group, up to Frame End in the end group,
    /// whole otherwise (shipped notes, section 6).
    fn frames(&self, sequence: u64) -> (u64, Option<u64>) {
        let first = if self.start == Some(sequence) {
            self.frame_start
        } else {
            0
        };
        let last = if self.end == Some(sequence) {
            self.frame_end
        } else {
            None
        };
        (first, last)
    }

    /// Whether the range from the start to the end holds no group.
    fn range_is_empty(&self) -> bool {
        matches!((self.start, self.end), (Some(start), Some(end)) if end < start)
    }

    fn stream_priority(&self, sequence: u64) -> i32 {
        stream_priority(self.priority, self.publisher_priority, sequence, self.ordered)
    }
}

/// Writes one group on a new unidirectional stream; returns its sequence
/// whatever happened (a stream the subscriber stopped is not our error).
async fn serve_group<S: Session>(
    transport: S,
    version: Version,
    subscribe: u64,
    priority: i32,
    mut group: GroupConsumer,
    stats: Arc<SessionStats>,
    (first, last): (u64, Option<u64>),
) -> u64 {
    let sequence = group.sequence();
    // A transport without datagrams (max size 0) carries it as a stream.
    if version.has_timestamps() && group.is_datagram() && transport.max_datagram_size() > 0 {
        send_datagram(&transport, subscribe, &mut group, &stats).await;
        return sequence;
    }
    // If the cache evicts (aborts) the group while we wait for stream credit
    // or flow control, give it up at once rather than pin its memory.
    let mut watch = group.clone();
    let aborted = async move {
        match watch.closed().await {
            Err(err) => err,
            Ok(()) => std::future::pending().await,
        }
    };
    tokio::pin!(aborted);
    let stream = tokio::select! {
        opened = transport.open_uni() => match opened {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(%sequence, error = %transport_error(err), "cannot open group stream");
                return sequence;
            }
        },
        _ = &mut aborted => return sequence,
    };
    stats.group_out();
    let mut writer = Writer::new(stream);
    writer.set_priority(priority);
    let header = Group {
        subscribe,
        sequence,
        frame_start: first,
    };
    let transfer = async {
        writer
            .encode(|b| {
                DataStream::Group.encode(version, b)?;
                header.encode(version, b)
            })
            .await?;
        write_frames(&mut writer, &mut group, version, &stats, (first, last)).await
    };
    let result = tokio::select! {
        result = transfer => result,
        err = &mut aborted => Err(StreamError::Closed(err)),
    };
    match result {
        // Held until acknowledged, so that expiry can still reset it.
        Ok(()) => {
            let _ = writer.finish_acked().await;
        }
        Err(err) => writer.reset(err.error().code()),
    }
    sequence
}

/// Sends a datagram group (-05+) as one QUIC datagram: `Subscribe ID |
/// Sequence | Timestamp | Payload`, the timestamp in microseconds (our
/// timescale). Best effort, as the shipped code does: one that does not fit
/// the path's datagram size, or that the transport refuses, is dropped and
/// counted, never turned into a stream (shipped notes, section 11).
async fn send_datagram<S: Session>(
    transport: &S,
    subscribe: u64,
    group: &mut GroupConsumer,
    stats: &SessionStats,
) {
    let sequence = group.sequence();
    let frame = match group.next_frame().await {
        Ok(Some(mut frame)) => {
            let timestamp = frame.timestamp().unwrap_or(0);
            frame.read_all().await.map(|payload| (timestamp, payload))
        }
        Ok(None) | Err(_) => return,
    };
    let Ok((timestamp, payload)) = frame else {
        return;
    };
    let size = payload.len() as u64;
    let datagram = crate::lite::Datagram {
        subscribe,
        sequence,
        timestamp,
        payload,
    };
    let mut buf = bytes::BytesMut::new();
    if datagram.encode(&mut buf).is_err() || buf.len() > transport.max_datagram_size() {
        stats.dropped(1);
        return;
    }
    match transport.send_datagram(buf.freeze()) {
        Ok(()) => {
            stats.group_out();
            stats.frame_out(size);
        }
        Err(_) => stats.dropped(1),
    }
}

/// Copies every frame of `group` to `writer`, chunk by chunk, without copying
/// payloads.
async fn write_frames<W: web_transport_trait::SendStream>(
    writer: &mut Writer<W>,
    group: &mut GroupConsumer,
    version: Version,
    stats: &SessionStats,
    (first, last): (u64, Option<u64>),
) -> Result<(), StreamError> {
    // -05+: timestamps in microseconds, the timescale our TRACK_INFO states.
    let mut stamps = FrameTimestamps::default();
    let mut index = 0u64;
    while let Some(mut frame) = group.next_frame().await? {
        index += 1;
        if index - 1 < first {
            continue;
        }
        if last.is_some_and(|last| index - 1 > last) {
            break;
        }
        let delta = if version.has_timestamps() {
            stamps
                .delta(frame.timestamp())
                .map_err(|e| StreamError::Closed(Error::from(e)))?
        } else {
            0
        };
        let header = FrameHeader {
            size: frame.size(),
            delta,
        };
        stats.frame_out(frame.size());
        writer.encode(|b| header.encode(version, b)).await?;
        while let Some(chunk) = frame.read_chunk().await? {
            writer.write_chunk(chunk).await?;
        }
    }
    Ok(())
}

/// Counts a subscription the peer holds for as long as it lives.
struct Subscribed<'a>(&'a SessionStats);

impl<'a> Subscribed<'a> {
    fn new(stats: &'a SessionStats) -> Self {
        stats.subscription_started();
        Subscribed(stats)
    }
}

/// -05+: SUBSCRIBE_DROP for the groups `track` skipped since last asked
/// (up to -04 deployed subscribers fail on anything after SUBSCRIBE_OK, so
/// they learn of gaps from the sequence numbers alone).
async fn report_drops<W: web_transport_trait::SendStream>(
    writer: &mut Writer<W>,
    version: Version,
    track: &mut crate::model::TrackConsumer,
    end: Option<u64>,
) -> Result<(), StreamError> {
    let lost = track.take_skipped_groups();
    if !version.has_subscribe_end() {
        return Ok(());
    }
    for drop in drop_ranges(lost, end) {
        let msg = SubscribeResponse::Drop(drop);
        writer.encode(|b| msg.encode(version, b)).await?;
    }
    Ok(())
}

/// SUBSCRIBE_DROPs for `lost` groups (in any order, maybe repeated): one per
/// run of consecutive sequences, ascending, none past the subscription's
/// `end`.
fn drop_ranges(mut lost: Vec<u64>, end: Option<u64>) -> Vec<SubscribeDrop> {
    lost.retain(|&sequence| end.is_none_or(|end| sequence <= end));
    lost.sort_unstable();
    lost.dedup();
    let mut drops: Vec<SubscribeDrop> = Vec::new();
    for sequence in lost {
        match drops.last_mut() {
            Some(run) if run.end.checked_add(1) == Some(sequence) => run.end = sequence,
            _ => drops.push(SubscribeDrop {
                start: sequence,
                end: sequence,
                error: 0,
            }),
        }
    }
    drops
}

impl Drop for Subscribed<'_> {
    fn drop(&mut self) {
        self.0.subscription_ended();
    }
}

/// A subscribe ID held by an open subscription, released when it ends.
struct SubscribeId {
    ids: Arc<std::sync::Mutex<HashSet<u64>>>,
    id: u64,
}

impl SubscribeId {
    /// Takes `id`, or `None` if an open subscription already has it.
    fn claim(ids: &Arc<std::sync::Mutex<HashSet<u64>>>, id: u64) -> Option<SubscribeId> {
        let fresh = ids.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        fresh.then(|| SubscribeId { ids: ids.clone(), id })
    }
}

impl Drop for SubscribeId {
    fn drop(&mut self) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_groups_become_one_drop_per_run_within_the_range() {
        let runs = |lost: Vec<u64>, end| {
            drop_ranges(lost, end)
                .into_iter()
                .map(|d| (d.start, d.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(runs(vec![7, 3, 4, 5, 9, 4], None), vec![(3, 5), (7, 7), (9, 9)]);
        assert_eq!(runs(vec![1, 2, 8, 9], Some(8)), vec![(1, 2), (8, 8)]);
        assert_eq!(
            runs(vec![u64::MAX, u64::MAX - 1], None),
            vec![(u64::MAX - 1, u64::MAX)]
        );
        assert!(runs(Vec::new(), None).is_empty());
    }

    fn encode(ids: &mut AnnounceIds, version: Version, path: &str, hops: Option<Vec<HopId>>) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        let route = hops.map(|hops| (hops, RouteCost::LOCAL));
        ids.encode(version, Path::new(path), route, &mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn lite06_announcements_carry_the_route_cost() {
        let mut ids = AnnounceIds::default();
        let mut buf = bytes::BytesMut::new();
        let route = (vec![], RouteCost { warm: 2, cold: 300 });
        ids.encode(Version::Lite06, Path::new("a"), Some(route), &mut buf)
            .unwrap();
        // warm 2, cold 300 (0x412c)
        assert_eq!(&buf[..], [0x00, 0x06, 0x01, b'a', 0x00, 0x02, 0x41, 0x2c]);
    }

    #[test]
    fn lite06_announcements_take_implicit_ids() {
        let mut ids = AnnounceIds::default();
        let v = Version::Lite06;
        // START a (ID 0), START b (ID 1), a again (RESTART 0), END b, END a.
        assert_eq!(
            encode(&mut ids, v, "a", Some(vec![])),
            [0x00, 0x05, 0x01, b'a', 0x00, 0x00, 0x00]
        );
        assert_eq!(
            encode(&mut ids, v, "b", Some(vec![])),
            [0x00, 0x05, 0x01, b'b', 0x00, 0x00, 0x00]
        );
        let hop = HopId::from_wire(9);
        assert_eq!(
            encode(&mut ids, v, "a", Some(vec![hop])),
            [0x02, 0x05, 0x00, 0x01, 0x09, 0x00, 0x00]
        );
        assert_eq!(encode(&mut ids, v, "b", None), [0x01, 0x01, 0x01]);
        assert_eq!(encode(&mut ids, v, "a", None), [0x01, 0x01, 0x00]);
        // Ended already: nothing to say. A new START takes the next ID (2),
        // which the peer counts too.
        assert!(encode(&mut ids, v, "a", None).is_empty());
        assert_eq!(
            encode(&mut ids, v, "c", Some(vec![])),
            [0x00, 0x05, 0x01, b'c', 0x00, 0x00, 0x00]
        );
        assert_eq!(encode(&mut ids, v, "c", None), [0x01, 0x01, 0x02]);
    }

    #[test]
    fn older_versions_announce_by_path() {
        let mut ids = AnnounceIds::default();
        let v = Version::Lite05;
        assert_eq!(
            encode(&mut ids, v, "a", Some(vec![])),
            [0x04, 0x01, 0x01, b'a', 0x00]
        );
        assert_eq!(encode(&mut ids, v, "a", None), [0x04, 0x00, 0x01, b'a', 0x00]);
    }
}

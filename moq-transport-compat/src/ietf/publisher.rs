//! The publisher half of an IETF session: what a peer may ask of our
//! origin. PUBLISH_NAMESPACE for every broadcast we serve; SUBSCRIBE
//! answered from the track cache under every filter, one sub-group 0
//! stream per group (held until acknowledged, so a publisher that leaves
//! once its track is unused leaves nothing in flight); FETCH (standalone
//! and joining) from the cache on one stream; TRACK_STATUS; and
//! SUBSCRIBE_NAMESPACE with NAMESPACE / NAMESPACE_DONE from draft-16.

use super::*;

use std::collections::BTreeMap;

use moq_lite::lite::MAX_INFLIGHT_GROUPS;

/// What a subscription asks for now: SUBSCRIBE sets it, SUBSCRIBE_UPDATE /
/// REQUEST_UPDATE change it, the task serving it reads it per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Wanted {
    /// The first location to send; `None`: wherever the track consumer
    /// starts (a LargestObject filter).
    pub start: Option<Location>,
    /// The last group to send, inclusive; `None`: open ended.
    pub end: Option<u64>,
    /// The Forward State: at 0 no objects are sent.
    pub forward: bool,
    /// Subscriber Priority: a lower value is sent first.
    pub subscriber_priority: u8,
    /// Oldest group first (Group Order ascending) rather than newest first.
    pub ascending: bool,
}

/// Subscriber Priority when the subscriber gives none (drafts 15+: "If
/// omitted ... the default value is 128").
const DEFAULT_SUBSCRIBER_PRIORITY: u8 = 128;

impl Wanted {
    /// From a SUBSCRIBE: its fields in draft-14, its parameters after.
    fn of(m: &Subscribe, start: Option<Location>, end: Option<u64>, draft: Draft) -> Self {
        let (forward, subscriber_priority, order) = match draft {
            Draft::D14 => (m.forward, m.subscriber_priority, m.group_order),
            _ => (
                m.parameters.get_int(param::FORWARD) != Some(0),
                m.parameters
                    .get_int(param::SUBSCRIBER_PRIORITY)
                    .map_or(DEFAULT_SUBSCRIBER_PRIORITY, |p| p.min(255) as u8),
                m.parameters.get_int(param::GROUP_ORDER).unwrap_or(0) as u8,
            ),
        };
        Wanted {
            start,
            end,
            forward,
            subscriber_priority,
            ascending: order == crate::common::group_order::ASCENDING,
        }
    }

    /// From the PUBLISH_OK answering our PUBLISH: its fields in draft-14,
    /// its parameters after; delivery starts at the latest group either way.
    pub(super) fn of_publish_ok(m: &PublishOk, draft: Draft) -> Self {
        let (forward, subscriber_priority, order) = match draft {
            Draft::D14 => (m.forward, m.subscriber_priority, m.group_order),
            _ => (
                m.parameters.get_int(param::FORWARD) != Some(0),
                m.parameters
                    .get_int(param::SUBSCRIBER_PRIORITY)
                    .map_or(DEFAULT_SUBSCRIBER_PRIORITY, |p| p.min(255) as u8),
                m.parameters.get_int(param::GROUP_ORDER).unwrap_or(0) as u8,
            ),
        };
        Wanted {
            start: None,
            end: None,
            forward,
            subscriber_priority,
            ascending: order == crate::common::group_order::ASCENDING,
        }
    }

    /// The Group Order we deliver in, for SUBSCRIBE_OK: newest first unless
    /// the subscriber asked for ascending.
    fn group_order(&self) -> u8 {
        match self.ascending {
            true => crate::common::group_order::ASCENDING,
            false => crate::common::group_order::DESCENDING,
        }
    }

    /// The QUIC send priority (higher first) of group `sequence`: moq-lite's
    /// policy, with the Subscriber Priority inverted (IETF: "Lower numbers
    /// get higher priority").
    fn stream_priority(&self, track_priority: u8, sequence: u64) -> i32 {
        moq_lite::lite::stream_priority(
            255 - self.subscriber_priority,
            track_priority,
            sequence,
            self.ascending,
        )
    }
}

impl<T: Transport> Inner<T> {
    /// The track `name` in `namespace`: of the broadcast at the namespace's
    /// path, or else of the one at its longest published prefix, with the
    /// remaining fields carried in the track's name ([`RoutedName`]), as
    /// Namespace Prefix Matching routes a SUBSCRIBE or FETCH to whoever
    /// published a prefix of its namespace (draft-16 section "Relays").
    pub(super) fn find_track(&self, namespace: &TrackNamespace, name: &Bytes) -> Option<TrackConsumer> {
        let origin = self.publish.as_ref()?;
        let fields = &namespace.0;
        for len in (1..=fields.len()).rev() {
            let Ok(path) = TrackNamespace(fields[..len].to_vec()).to_path() else {
                continue;
            };
            let Some(broadcast) = origin.consume_broadcast(path) else {
                continue;
            };
            let track = RoutedName::encode(&fields[len..], name)?;
            return broadcast.subscribe_track(&Track::new(track)).ok();
        }
        None
    }

    pub(super) fn on_subscribe(self: &Arc<Self>, m: Subscribe) -> Result<(), SessionError> {
        let draft = self.draft;
        let Some(mut track) = self.find_track(&m.namespace, &m.name) else {
            let err = self.request_error(m.request_id, RequestFailure::DoesNotExist, "track does not exist");
            self.send(ControlMessage::RequestError(err));
            return Ok(());
        };
        let filter = match draft {
            Draft::D14 => m.filter,
            _ => crate::control::filter(&m.parameters, draft)
                .map_err(|e| SessionError::protocol(e.to_string()))?
                .unwrap_or_default(),
        };
        let largest = largest_location(&track);
        let (start, end) = match filter {
            SubscriptionFilter::LargestObject => {
                (largest.map(|l| Location::new(l.group, l.object + 1)), None)
            }
            SubscriptionFilter::NextGroupStart => (largest.map(|l| Location::new(l.group + 1, 0)), None),
            SubscriptionFilter::AbsoluteStart(s) => (Some(s), None),
            SubscriptionFilter::AbsoluteRange { start, end_group } => {
                if end_group < start.group {
                    let err =
                        self.request_error(m.request_id, RequestFailure::InvalidRange, "end before start");
                    self.send(ControlMessage::RequestError(err));
                    return Ok(());
                }
                (Some(start), Some(end_group))
            }
        };
        // The consumer already starts at the latest group as of the moment
        // it was created. Restarting it from `largest`, read afterwards, would
        // skip what the publisher wrote in between (waking it is what
        // creating the consumer does), so LargestObject keeps that start:
        // the whole current group is sent, a superset of "the next object".
        let largest_object = filter == SubscriptionFilter::LargestObject;
        let start = start.filter(|_| !largest_object);
        if let Some(start) = start {
            track.restart_from(start.group);
        }
        let wanted = Wanted::of(&m, start, end, draft);
        let alias = {
            let mut state = self.lock();
            let alias = state.next_alias;
            state.next_alias += 1;
            alias
        };
        let mut parameters = Parameters::new();
        if draft > Draft::D14 {
            if let Some(l) = largest {
                let _ = crate::control::set_location(&mut parameters, param::LARGEST_OBJECT, l, draft);
            }
        }
        if draft == Draft::D15 {
            // Draft-15 moved Group Order into a parameter ("MAY appear in a
            // SUBSCRIBE, SUBSCRIBE_OK, ..."); 16 dropped it from SUBSCRIBE_OK.
            parameters.set_int(param::GROUP_ORDER, wanted.group_order() as u64);
        }
        self.send(ControlMessage::SubscribeOk(SubscribeOk {
            request_id: m.request_id,
            track_alias: alias,
            expires: 0,
            group_order: wanted.group_order(),
            largest,
            parameters,
            track_extensions: KeyValuePairs::new(),
        }));
        self.serve(m.request_id, alias, track, largest, largest_object, wanted);
        Ok(())
    }

    /// Serves `track` to the peer under request `id` and `alias` (after
    /// SUBSCRIBE_OK, or PUBLISH_OK for a track we pushed), until it ends, the
    /// peer unsubscribes, or the session does.
    pub(super) fn serve(
        self: &Arc<Self>,
        id: u64,
        alias: u64,
        track: TrackConsumer,
        largest: Option<Location>,
        largest_object: bool,
        wanted: Wanted,
    ) {
        let (wanted_tx, wanted_rx) = watch::channel(wanted);
        let mut state = self.lock();
        let task = tokio::spawn(
            self.clone()
                .serve_subscription(id, alias, track.clone(), wanted_rx),
        );
        state.served.insert(
            id,
            Served {
                _counted: CountedSubscription::new(&self.stats),
                task: Some(task.abort_handle()),
                track,
                largest,
                largest_object,
                wanted: wanted_tx,
            },
        );
    }

    pub(super) async fn serve_subscription(
        self: Arc<Self>,
        id: u64,
        alias: u64,
        mut track: TrackConsumer,
        mut wanted: watch::Receiver<Wanted>,
    ) {
        let track_priority = track.info().priority;
        let mut groups = JoinSet::new();
        // Group streams in flight, by sequence: a subscriber that stops
        // reading pins what they hold, so they are bounded as in moq-lite
        // (live: the oldest is reset to make room; ascending: wait).
        let mut inflight: BTreeMap<u64, AbortHandle> = BTreeMap::new();
        let mut count = 0u64;
        // The newest group this subscription has seen.
        let mut last: Option<u64> = None;
        let (status, reason) = loop {
            let room = !wanted.borrow().ascending || inflight.len() < MAX_INFLIGHT_GROUPS;
            tokio::select! {
                next = track.next_group(), if room => match next {
                    Ok(Some(group)) => {
                        let seq = group.sequence();
                        let w = *wanted.borrow();
                        if w.end.is_some_and(|e| seq > e) {
                            break (done_code::SUBSCRIPTION_ENDED, "end of range");
                        }
                        last = last.max(Some(seq));
                        if w.start.is_some_and(|s| seq < s.group) || !w.forward {
                            continue;
                        }
                        let skip = match w.start {
                            Some(s) if s.group == seq => s.object,
                            _ => 0,
                        };
                        count += 1;
                        while inflight.len() >= MAX_INFLIGHT_GROUPS {
                            if let Some((_, oldest)) = inflight.pop_first() {
                                // Dropping its writer resets the stream.
                                oldest.abort();
                                self.stats.dropped(1);
                            }
                        }
                        let priority = w.stream_priority(track_priority, seq);
                        let send = self.clone().send_group(alias, group, skip, priority);
                        let task = groups.spawn(async move {
                            send.await;
                            seq
                        });
                        inflight.insert(seq, task);
                        if w.end == Some(seq) {
                            break (done_code::SUBSCRIPTION_ENDED, "end of range");
                        }
                    }
                    Ok(None) => break (done_code::TRACK_ENDED, "track ended"),
                    Err(err) => {
                        tracing::debug!(%err, "track aborted");
                        break (done_code::INTERNAL_ERROR, "track aborted");
                    }
                },
                Some(done) = groups.join_next(), if !groups.is_empty() => {
                    if let Ok(seq) = done {
                        inflight.remove(&seq);
                    }
                }
                // An update narrowed the end to a group already seen.
                Ok(()) = wanted.changed() => {
                    let end = wanted.borrow().end;
                    if end.is_some_and(|e| last.is_some_and(|l| l >= e)) {
                        break (done_code::SUBSCRIPTION_ENDED, "end of range");
                    }
                }
            }
        };
        while groups.join_next().await.is_some() {}
        self.lock().served.remove(&id);
        self.send(ControlMessage::PublishDone(PublishDone {
            request_id: id,
            status_code: status,
            stream_count: count,
            reason: reason.to_string(),
        }));
    }

    pub(super) async fn send_group(
        self: Arc<Self>,
        alias: u64,
        mut group: GroupConsumer,
        skip: u64,
        priority: i32,
    ) {
        if let Err(err) = self.send_group_inner(alias, &mut group, skip, priority).await {
            tracing::debug!(?err, "group stream ended early");
        }
    }

    pub(super) async fn send_group_inner(
        &self,
        alias: u64,
        group: &mut GroupConsumer,
        skip: u64,
        priority: i32,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let send = self
            .transport
            .open_uni()
            .await
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        self.stats.group_out();
        let mut writer = Writer::new(send);
        writer.set_priority(priority);
        let header = SubgroupHeader {
            track_alias: alias,
            group_id: group.sequence(),
            subgroup_id: SubgroupId::Zero,
            publisher_priority: Some(PUBLISHER_PRIORITY),
            extensions: false,
            end_of_group: false,
        };
        writer.encode(|b| header.encode(draft, b)).await?;
        let mut objects = SubgroupWriter::new(&header);
        let mut index = 0u64;
        loop {
            match group.read_frame().await {
                Ok(Some(payload)) => {
                    if index >= skip {
                        self.stats.frame_out(payload.len() as u64);
                        let obj = SubgroupObject {
                            object_id: index,
                            extensions: KeyValuePairs::new(),
                            content: ObjectContent::Payload(payload),
                        };
                        writer.encode(|b| objects.encode(&obj, draft, b)).await?;
                    }
                    index += 1;
                }
                Ok(None) => return writer.finish_acked().await,
                Err(err) => {
                    // INTERNAL_ERROR: the group did not complete.
                    writer.reset(0x0);
                    return Err(StreamError::Closed(err));
                }
            }
        }
    }

    pub(super) fn on_fetch(self: &Arc<Self>, m: Fetch) -> Result<(), SessionError> {
        let id = m.request_id;
        let error = |code, reason: &str| {
            let err = self.request_error(id, code, reason);
            match self.draft {
                Draft::D14 => ControlMessage::FetchError(err),
                _ => ControlMessage::RequestError(err),
            }
        };
        let (track, start, end) = match m.fetch_type {
            FetchType::Standalone {
                namespace,
                name,
                start,
                end,
            } => {
                let Some(track) = self.find_track(&namespace, &name) else {
                    self.send(error(RequestFailure::DoesNotExist, "track does not exist"));
                    return Ok(());
                };
                if end.group < start.group {
                    self.send(error(RequestFailure::InvalidRange, "end before start"));
                    return Ok(());
                }
                // "If Start Location is greater than the Largest Object ...
                // the publisher MUST return ... INVALID_RANGE" (every draft).
                if largest_location(&track).is_none_or(|largest| start > largest) {
                    self.send(error(
                        RequestFailure::InvalidRange,
                        "start after the largest object",
                    ));
                    return Ok(());
                }
                // End Object is the last object plus one; 0 = the whole group.
                let end_object = end.object.checked_sub(1);
                (track, start, (end.group, end_object))
            }
            FetchType::RelativeJoining {
                joining_request_id,
                joining_start,
            }
            | FetchType::AbsoluteJoining {
                joining_request_id,
                joining_start,
            } => {
                let relative = matches!(m.fetch_type, FetchType::RelativeJoining { .. });
                let joined = {
                    let state = self.lock();
                    state
                        .served
                        .get(&joining_request_id)
                        .map(|s| (s.track.clone(), s.largest, s.largest_object))
                };
                let Some((track, largest, largest_object)) = joined else {
                    self.send(error(
                        RequestFailure::InvalidJoiningRequestId,
                        "no such subscription",
                    ));
                    return Ok(());
                };
                // "A Joining Fetch is only permitted when the associated
                // Subscribe has the Filter Type Largest Object; any other
                // value results in closing the session with a
                // PROTOCOL_VIOLATION" (drafts 14 to 17).
                if !largest_object {
                    return Err(SessionError::protocol(
                        "joining FETCH of a subscription without a LargestObject filter",
                    ));
                }
                // "If no Objects have been published for the track ... the
                // publisher MUST respond with ... INVALID_RANGE".
                let Some(largest) = largest else {
                    self.send(error(RequestFailure::InvalidRange, "the track had no objects"));
                    return Ok(());
                };
                let first = match relative {
                    true => largest.group.saturating_sub(joining_start),
                    false => joining_start,
                };
                if first > largest.group {
                    self.send(error(
                        RequestFailure::InvalidRange,
                        "start after the largest group",
                    ));
                    return Ok(());
                }
                (
                    track,
                    Location::new(first, 0),
                    (largest.group, Some(largest.object)),
                )
            }
        };
        let order = match self.draft {
            Draft::D14 => m.group_order,
            _ => m.parameters.get_int(param::GROUP_ORDER).unwrap_or(0) as u8,
        };
        let descending = order == crate::common::group_order::DESCENDING;
        let task = tokio::spawn(self.clone().serve_fetch(id, track, start, end, descending));
        self.lock().fetches.insert(id, task.abort_handle());
        Ok(())
    }

    /// Answers a FETCH from the cache: groups `start.group..=end.0`, objects
    /// from `start.object` in the first, up to `end.1` (inclusive; `None`:
    /// the whole group) in the last. Only what is published now: "Objects
    /// that are not yet published will not be retrieved by a FETCH". Groups
    /// go in the requested order, objects within a group ascending.
    pub(super) async fn serve_fetch(
        self: Arc<Self>,
        id: u64,
        track: TrackConsumer,
        start: Location,
        end: (u64, Option<u64>),
        descending: bool,
    ) {
        // Draft-17: the FETCH's request stream ends once this is dropped.
        let _done = self.fetch_guard17(id);
        let draft = self.draft;
        let largest = largest_location(&track);
        let mut objects = Vec::new();
        // Whether the last group asked for was sent up to its end.
        let mut last_group_whole = false;
        for seq in start.group..=end.0 {
            let Some(mut group) = track.group(seq) else {
                continue;
            };
            let last = if seq == end.0 { end.1 } else { None };
            let first = if seq == start.group { start.object } else { 0 };
            let mut index = 0u64;
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            while last.is_none_or(|l| index <= l) {
                match group.poll_read_frame(&mut cx) {
                    std::task::Poll::Ready(Ok(Some(payload))) => {
                        if index >= first {
                            objects.push((seq, index, payload));
                        }
                        index += 1;
                    }
                    std::task::Poll::Ready(Ok(None)) => {
                        last_group_whole = seq == end.0;
                        break;
                    }
                    _ => break,
                }
            }
        }
        if objects.is_empty() && draft == Draft::D14 {
            // Draft-14: "If no Objects exist in the requested range, the
            // publisher returns FETCH_ERROR with code NO_OBJECTS" (later
            // drafts send FETCH_OK and an empty stream instead).
            let err = self.request_error(id, RequestFailure::NoObjects, "no objects in the range");
            self.send(ControlMessage::FetchError(err));
            self.lock().fetches.remove(&id);
            return;
        }
        if descending {
            // Stable: objects stay ascending within their group.
            objects.sort_by_key(|(g, _, _)| std::cmp::Reverse(*g));
        }
        // FETCH_OK's End Location ({{message-fetch-ok}}): the largest object
        // plus one where the request reached past it; the requested group
        // with object 0 where a whole group was asked for and sent to its
        // end; otherwise what was requested. (End Object: last + 1, 0 = the
        // whole group, as in the request.)
        let requested = Location::new(end.0, end.1.map_or(0, |o| o + 1));
        let beyond = largest
            .is_none_or(|l| end.0 > l.group || (end.0 == l.group && end.1.is_none_or(|o| o > l.object)));
        let end_location = match (largest, end.1) {
            (Some(_), None) if last_group_whole => requested,
            (Some(l), _) if beyond => Location::new(l.group, l.object + 1),
            _ => requested,
        };
        self.send(ControlMessage::FetchOk(FetchOk {
            request_id: id,
            group_order: match descending {
                true => crate::common::group_order::DESCENDING,
                false => crate::common::group_order::ASCENDING,
            },
            end_of_track: false,
            end_location,
            parameters: Parameters::new(),
            track_extensions: KeyValuePairs::new(),
        }));
        let result: Result<(), StreamError> = async {
            let send = self
                .transport
                .open_uni()
                .await
                .map_err(|e| StreamError::Closed(transport_error(e)))?;
            let mut writer = Writer::new(send);
            writer
                .encode(|b| StreamHeader::Fetch(FetchHeader { request_id: id }).encode(draft, b))
                .await?;
            let mut fetch = FetchWriter::new();
            for (group, object, payload) in objects {
                self.stats.frame_out(payload.len() as u64);
                let item = FetchItem::Object(FetchObject {
                    group_id: group,
                    subgroup_id: Some(0),
                    object_id: object,
                    publisher_priority: PUBLISHER_PRIORITY,
                    extensions: KeyValuePairs::new(),
                    content: ObjectContent::Payload(payload),
                });
                writer.encode(|b| fetch.encode(&item, draft, b)).await?;
            }
            writer.finish_acked().await
        }
        .await;
        if let Err(err) = result {
            tracing::debug!(?err, "fetch stream ended early");
        }
        self.lock().fetches.remove(&id);
    }

    pub(super) fn on_track_status(&self, m: Subscribe) {
        let draft = self.draft;
        let Some(track) = self.find_track(&m.namespace, &m.name) else {
            let err = self.request_error(m.request_id, RequestFailure::DoesNotExist, "track does not exist");
            self.send(match draft {
                Draft::D14 => ControlMessage::TrackStatusError(err),
                _ => ControlMessage::RequestError(err),
            });
            return;
        };
        let largest = largest_location(&track);
        match draft {
            Draft::D14 => self.send(ControlMessage::TrackStatusOk(SubscribeOk {
                request_id: m.request_id,
                track_alias: 0,
                expires: 0,
                group_order: crate::common::group_order::ASCENDING,
                largest,
                parameters: Parameters::new(),
                track_extensions: KeyValuePairs::new(),
            })),
            _ => {
                let mut parameters = Parameters::new();
                if let Some(l) = largest {
                    let _ = crate::control::set_location(&mut parameters, param::LARGEST_OBJECT, l, draft);
                }
                self.send(ControlMessage::RequestOk(RequestOk {
                    request_id: m.request_id,
                    parameters,
                }));
            }
        }
    }

    /// Announces our origin's broadcasts with PUBLISH_NAMESPACE.
    pub(super) async fn run_announce(self: Arc<Self>, mut origin: OriginConsumer) -> Result<(), StreamError> {
        let mut ids: HashMap<Path, (u64, TrackNamespace)> = HashMap::new();
        while let Some(announced) = origin.announced().await {
            match announced.broadcast {
                Some(broadcast) => {
                    // Do not echo back what this peer announced to us.
                    let echo = self.from_peer(&announced.path, &broadcast);
                    if echo || ids.contains_key(&announced.path) {
                        continue;
                    }
                    // A peer that asked with SUBSCRIBE_NAMESPACE (drafts 16+)
                    // hears of it there, as NAMESPACE. Telling it twice races:
                    // our PUBLISH_NAMESPACE_DONE on the control stream can
                    // overtake the NAMESPACE_DONE on its request stream, and
                    // some peers end the session on the former.
                    let solicited = self
                        .lock()
                        .solicited
                        .iter()
                        .any(|prefix| announced.path.strip_prefix(prefix).is_some());
                    if solicited {
                        continue;
                    }
                    // The root (a broadcast at the session's path) would be a
                    // namespace of no fields, which drafts 14 to 16 forbid
                    // ("N can be between 1 and 32").
                    let namespace = match TrackNamespace::from_path(&announced.path) {
                        Ok(namespace) if !announced.path.is_empty() => namespace,
                        _ => {
                            tracing::debug!(path = %announced.path, "path is no namespace");
                            continue;
                        }
                    };
                    let (tx, rx) = oneshot::channel();
                    let msg = |id| PublishNamespace {
                        request_id: id,
                        required_request_id_delta: 0,
                        namespace: namespace.clone(),
                        parameters: Parameters::new(),
                    };
                    let id = self
                        .send_request(|id, _| Some((ControlMessage::PublishNamespace(msg(id)), tx)))
                        .await?;
                    let path = announced.path.clone();
                    tokio::spawn(async move {
                        if let Ok(reply) = rx.await {
                            tracing::debug!(%path, ?reply, "PUBLISH_NAMESPACE answered");
                        }
                    });
                    ids.insert(announced.path, (id, namespace));
                }
                None => {
                    if let Some((request_id, namespace)) = ids.remove(&announced.path) {
                        self.send(ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
                            namespace,
                            request_id,
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Draft-16: a SUBSCRIBE_NAMESPACE on its own bidirectional stream.
    pub(super) async fn serve_subscribe_namespace(
        self: Arc<Self>,
        (writer, mut reader): Control<T>,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let msg = reader
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await?;
        let Decoded::Message(ControlMessage::SubscribeNamespace(m)) = msg else {
            return Err(StreamError::Protocol(SessionError::protocol(
                "bidirectional stream without SUBSCRIBE_NAMESPACE",
            )));
        };
        self.subscribe_namespace_stream((writer, reader), m).await
    }

    /// Answers a SUBSCRIBE_NAMESPACE read from its own stream (drafts 16+).
    pub(super) async fn subscribe_namespace_stream(
        self: Arc<Self>,
        (mut writer, mut reader): Control<T>,
        m: SubscribeNamespace,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        self.peer_request(m.request_id).map_err(StreamError::Protocol)?;
        let prefix = m
            .prefix
            .to_path()
            .map_err(|e| StreamError::Protocol(SessionError::protocol(e.to_string())));
        let (Some(origin), Ok(prefix)) = (self.publish.clone(), prefix) else {
            let err = self.request_error(m.request_id, RequestFailure::NotSupported, "nothing published");
            writer
                .encode(|b| ControlMessage::RequestError(err).encode(draft, b))
                .await?;
            return writer.finish();
        };
        let ok = RequestOk {
            request_id: m.request_id,
            parameters: Parameters::new(),
        };
        writer
            .encode(|b| ControlMessage::RequestOk(ok).encode(draft, b))
            .await?;
        // Subscribe Options: 0 PUBLISH only, 1 NAMESPACE only, 2 both.
        let namespaces = m.subscribe_options != 0;
        let _solicited = namespaces.then(|| Solicited::register(self.clone(), prefix.clone()));
        // Subscribe Options PUBLISH or BOTH: offer the tracks too (push.rs),
        // for as long as this stream is open. Draft-17 is not pushed to.
        let mut pusher = JoinSet::new();
        if m.subscribe_options != crate::control::subscribe_options::NAMESPACE && draft == Draft::D16 {
            pusher.spawn(self.clone().push_tracks(prefix.clone()));
        }
        let mut origin = origin;
        loop {
            tokio::select! {
                announced = origin.announced(), if namespaces => {
                    let Some(announced) = announced else { return writer.finish() };
                    let Some(suffix) = announced.path.strip_prefix(&prefix) else { continue };
                    // A namespace equal to the prefix is announced too, with a
                    // suffix of no fields: a relay "MUST send a PUBLISH_NAMESPACE
                    // to any subscriber that has subscribed via SUBSCRIBE_NAMESPACE
                    // for that namespace, or a prefix of that namespace" (draft-16
                    // section "Publishing Namespaces"); conformance clients expect
                    // NAMESPACE () for it.
                    let Ok(suffix) = TrackNamespace::from_path(&suffix) else { continue };
                    // Do not echo back what this peer published to us.
                    let echo = announced
                        .broadcast
                        .as_ref()
                        .is_some_and(|b| self.from_peer(&announced.path, b));
                    if echo {
                        continue;
                    }
                    let msg = match announced.broadcast {
                        Some(_) => ControlMessage::Namespace(Namespace { suffix }),
                        None => ControlMessage::NamespaceDone(NamespaceDone { suffix }),
                    };
                    writer.encode(|b| msg.encode(draft, b)).await?;
                }
                msg = reader.decode(|b| ControlMessage::decode(b, draft)) => match msg? {
                    None => return writer.finish(),
                    Some(Decoded::Message(ControlMessage::RequestUpdate(u))) if draft == Draft::D17 => {
                        // Nothing to change in what we send: acknowledge it.
                        self.peer_request(u.request_id).map_err(StreamError::Protocol)?;
                        let ok = ControlMessage::RequestOk(RequestOk {
                            request_id: m.request_id,
                            parameters: Parameters::new(),
                        });
                        writer.encode(|b| ok.encode(draft, b)).await?;
                    }
                    Some(_) => {
                        return Err(StreamError::Protocol(SessionError::protocol(
                            "unexpected message on a SUBSCRIBE_NAMESPACE stream",
                        )));
                    }
                },
            }
        }
    }
}

/// A SUBSCRIBE_NAMESPACE prefix the peer holds open, listed in
/// `State::solicited` for as long as this lives.
struct Solicited<T: Transport> {
    inner: Arc<Inner<T>>,
    prefix: Path,
}

impl<T: Transport> Solicited<T> {
    fn register(inner: Arc<Inner<T>>, prefix: Path) -> Self {
        inner.lock().solicited.push(prefix.clone());
        Solicited { inner, prefix }
    }
}

impl<T: Transport> Drop for Solicited<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if let Some(at) = state.solicited.iter().position(|p| *p == self.prefix) {
            state.solicited.swap_remove(at);
        }
    }
}

/// The largest location in the track's cache: the latest group and its
/// last object so far.
pub(super) fn largest_location(track: &TrackConsumer) -> Option<Location> {
    let group = track.latest_group()?;
    let frames = available_frames(&group);
    Some(Location::new(group.sequence(), frames.saturating_sub(1)))
}

/// How many frames of `group` are there now, without waiting.
fn available_frames(group: &GroupConsumer) -> u64 {
    let mut group = group.clone();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut count = 0;
    while let std::task::Poll::Ready(Ok(Some(_))) = group.poll_next_frame(&mut cx) {
        count += 1;
    }
    count
}

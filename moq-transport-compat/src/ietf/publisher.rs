//! The publisher half of an IETF session: subscriptions to our origin.
//! SUBSCRIBE is answered from the track cache under every filter (a
//! namespace that only starts with a broadcast's path reaches it by
//! Namespace Prefix Matching), then served with one sub-group 0 stream per
//! group (held until acknowledged, so a publisher that leaves once its track
//! is unused leaves nothing in flight; in-flight groups bounded as in
//! moq-lite); TRACK_STATUS. The rest of the half: announce.rs (what the
//! peer hears of our broadcasts), push.rs (PUBLISH), fetch.rs (FETCH).

use super::*;

use moq_lite::delivery::InflightGroups;

/// What a subscription asks for now: SUBSCRIBE sets it, SUBSCRIBE_UPDATE /
/// REQUEST_UPDATE change it, the task serving it reads it per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Wanted {
    /// The first location to send; `None`: wherever the track consumer
    /// starts (a LargestObject filter).
    pub start: Option<Location>,
    /// The last group to send, inclusive; `None`: open ended.
    pub end: Option<u64>,
    /// Draft-20+: the last object of the `end` group, inclusive; `None`:
    /// the whole group.
    pub end_object: Option<u64>,
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

/// The longest a SUBSCRIBE waits for a publisher, whatever its
/// RENDEZVOUS_TIMEOUT asks ("The relay MAY use a shorter timeout").
const MAX_RENDEZVOUS: Duration = Duration::from_secs(30);

/// How many SUBSCRIBEs of one peer wait for a publisher at once.
const MAX_RENDEZVOUS_WAITING: usize = 64;

/// One SUBSCRIBE counted in `State::rendezvous` while it waits.
struct Rendezvous<T: Transport>(Arc<Inner<T>>);

impl<T: Transport> Drop for Rendezvous<T> {
    fn drop(&mut self) {
        self.0.lock().rendezvous -= 1;
    }
}

impl Wanted {
    /// From a SUBSCRIBE: its fields in draft-14, its parameters after.
    fn of(m: &Subscribe, start: Option<Location>, end: Option<u64>, draft: Draft) -> Self {
        let fields = (m.forward, m.subscriber_priority, m.group_order);
        Self::from_fields_or_parameters(fields, &m.parameters, start, end, draft)
    }

    /// From the PUBLISH_OK answering our PUBLISH, which carries what a
    /// SUBSCRIBE does; delivery starts at the latest group either way.
    pub(super) fn of_publish_ok(m: &PublishOk, draft: Draft) -> Self {
        let fields = (m.forward, m.subscriber_priority, m.group_order);
        Self::from_fields_or_parameters(fields, &m.parameters, None, None, draft)
    }

    /// Forward, Subscriber Priority and Group Order: draft-14's `fields`,
    /// else the parameters (absent Forward is 1, absent priority 128).
    fn from_fields_or_parameters(
        fields: (bool, u8, u8),
        parameters: &Parameters,
        start: Option<Location>,
        end: Option<u64>,
        draft: Draft,
    ) -> Self {
        let (forward, subscriber_priority, order) = match draft {
            Draft::D14 => fields,
            _ => (
                parameters.get_int(MessageParameter::Forward.code()) != Some(0),
                parameters
                    .get_int(MessageParameter::SubscriberPriority.code())
                    .map_or(DEFAULT_SUBSCRIBER_PRIORITY, |p| p.min(255) as u8),
                parameters
                    .get_int(MessageParameter::GroupOrder.code())
                    .unwrap_or(0) as u8,
            ),
        };
        Wanted {
            start,
            end,
            end_object: None,
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
        moq_lite::delivery::stream_priority(
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
        self.find_track_from(namespace, name, None)
    }

    /// [`find_track`](Self::find_track) starting at group `start`: a track
    /// requested upstream asks its publisher for the groups from `start`.
    pub(super) fn find_track_from(
        &self,
        namespace: &TrackNamespace,
        name: &Bytes,
        start: Option<u64>,
    ) -> Option<TrackConsumer> {
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
            return broadcast.subscribe_track_from(&Track::new(track), start).ok();
        }
        None
    }

    /// Waits up to `wait` for the track of `m` to have a publisher, then
    /// answers it as if it had just arrived, or with TIMEOUT.
    async fn rendezvous(self: Arc<Self>, mut m: Subscribe, start: Option<u64>, wait: Duration) {
        let _counted = Rendezvous(self.clone());
        let Some(mut origin) = self.publish.clone() else {
            return;
        };
        let found = tokio::time::timeout(wait, async {
            loop {
                if self.find_track_from(&m.namespace, &m.name, start).is_some() {
                    return true;
                }
                if origin.announced().await.is_none() {
                    return false;
                }
            }
        })
        .await;
        if found == Ok(true) {
            let code = MessageParameter::RENDEZVOUS_TIMEOUT.code();
            m.parameters.0.retain(|p| p.key != code);
            if let Err(err) = self.on_subscribe(m) {
                let _ = self.fatal.send(err);
            }
            return;
        }
        let err = self.request_error(m.request_id, RequestFailure::Timeout, "no publisher came in time");
        self.send(ControlMessage::RequestError(err));
    }

    pub(super) fn on_subscribe(self: &Arc<Self>, m: Subscribe) -> Result<(), SessionError> {
        let draft = self.draft;
        let filter = match draft {
            Draft::D14 => m.filter,
            _ => crate::control::filter(&m.parameters, draft)
                .map_err(|e| SessionError::protocol(e.to_string()))?
                .unwrap_or(SubscriptionFilter::absent(draft)),
        };
        if self.refuse_range_filters(m.request_id, &m.parameters) {
            return Ok(());
        }
        // A start in the past reaches the publisher of a track requested
        // upstream (the cache serves what it holds).
        let explicit = match filter {
            SubscriptionFilter::AbsoluteStart(s)
            | SubscriptionFilter::AbsoluteRange { start: s, .. }
            | SubscriptionFilter::AbsoluteEnd { start: s, .. } => Some(s.group),
            SubscriptionFilter::Unfiltered => Some(0),
            _ => None,
        };
        let Some(mut track) = self.find_track_from(&m.namespace, &m.name, explicit) else {
            // Draft-17 section "RENDEZVOUS TIMEOUT Parameter": hold the
            // SUBSCRIBE for a publisher to appear, for at most the time asked.
            let wait = match draft.request_streams() {
                true => m.parameters.get_int(MessageParameter::RENDEZVOUS_TIMEOUT.code()),
                false => None,
            };
            // Each wait holds a task and a watch on the origin: a peer gets a
            // bounded number at once, then the immediate answer (a relay "MAY
            // use a shorter timeout").
            let waiting = {
                let mut state = self.lock();
                let room = state.rendezvous < MAX_RENDEZVOUS_WAITING;
                state.rendezvous += room as usize;
                room
            };
            match wait.filter(|&ms| ms > 0 && waiting) {
                Some(ms) => {
                    let wait = Duration::from_millis(ms).min(MAX_RENDEZVOUS);
                    tokio::spawn(self.clone().rendezvous(m, explicit, wait));
                }
                None => {
                    let err = self.request_error(
                        m.request_id,
                        RequestFailure::DoesNotExist,
                        "track does not exist",
                    );
                    self.send(ControlMessage::RequestError(err));
                }
            }
            return Ok(());
        };
        // LargestObject delivers the whole group the consumer starts on, so
        // its Largest Location is what lies before that group: a peer that
        // takes what follows it (a relay's own LargestObject subscribers) then
        // misses nothing the publisher wrote while we answered, and a joining
        // FETCH up to it overlaps nothing.
        let largest = match filter {
            SubscriptionFilter::LargestObject => largest_before(&track),
            _ => largest_location(&track),
        };
        let mut end_object = None;
        let (start, end) = match filter {
            SubscriptionFilter::LargestObject => {
                (largest.map(|l| Location::new(l.group, l.object + 1)), None)
            }
            SubscriptionFilter::NextGroupStart => (largest.map(|l| Location::new(l.group + 1, 0)), None),
            // Draft-20: {Largest.Group + 1 - n, 0}, clamped at group 0.
            SubscriptionFilter::RelativeStart(n) => (
                Some(Location::new(
                    largest.map_or(0, |l| (l.group + 1).saturating_sub(n)),
                    0,
                )),
                None,
            ),
            SubscriptionFilter::Unfiltered => (Some(Location::new(0, 0)), None),
            SubscriptionFilter::AbsoluteEnd { start, end } => {
                end_object = Some(end.object);
                (Some(start), Some(end.group))
            }
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
        let mut wanted = Wanted::of(&m, start, end, draft);
        wanted.end_object = end_object;
        let alias = {
            let mut state = self.lock();
            let alias = state.next_alias;
            state.next_alias += 1;
            alias
        };
        let mut parameters = Parameters::new();
        if draft > Draft::D14 {
            if let Some(l) = largest {
                let _ = crate::control::set_location(
                    &mut parameters,
                    MessageParameter::LargestObject.code(),
                    l,
                    draft,
                );
            }
        }
        if draft == Draft::D15 {
            // Draft-15 moved Group Order into a parameter ("MAY appear in a
            // SUBSCRIBE, SUBSCRIBE_OK, ..."); 16 dropped it from SUBSCRIBE_OK.
            parameters.set_int(MessageParameter::GroupOrder.code(), wanted.group_order() as u64);
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
        // Draft-20 "Fill Semantics": what precedes the start, on a fetch
        // stream under this SUBSCRIBE's Request ID.
        if let Some(fill) = m.parameters.get_bytes(MessageParameter::FillParameters.code()) {
            if draft.filtered_fetch() && wanted.forward {
                self.fill(m.request_id, &track, fill, filter)?;
            }
        }
        self.serve(m.request_id, alias, track, largest, largest_object, wanted);
        Ok(())
    }

    /// Draft-19 range filters: we declare no MAX_FILTER_RANGES, so the
    /// limit is 0 and any range in a request exceeds it: REQUEST_ERROR
    /// INVALID_FILTER ("Range Filters"). An empty one says "no filter".
    pub(super) fn refuse_range_filters(&self, id: u64, parameters: &Parameters) -> bool {
        let ranged = self.draft.range_filters()
            && parameters.0.iter().any(|p| {
                MessageParameter::from(p.key).is_range_filter()
                    && p.value != moq_lite::coding::Value::Bytes(Bytes::new())
            });
        if ranged {
            let err = self.request_error(id, RequestFailure::InvalidFilter, "no range filters are accepted");
            self.send(ControlMessage::RequestError(err));
        }
        ranged
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
        // Draft-20: "A publisher does not end a subscription solely because
        // the Largest Object advances past the end of the current Location
        // Filter" (and SUBSCRIPTION_ENDED is gone): past the end it sends
        // nothing more, until the track ends or an update moves the range.
        let range_ends = !self.draft.filtered_fetch();
        let mut groups = JoinSet::new();
        // Group streams in flight, by sequence: a subscriber that stops
        // reading pins what they hold, so they are bounded as in moq-lite
        // (live: the oldest is reset to make room; ascending: wait).
        let mut inflight: InflightGroups<AbortHandle> = InflightGroups::new();
        let mut count = 0u64;
        // The newest group this subscription has seen.
        let mut last: Option<u64> = None;
        let (status, reason) = loop {
            let room = !wanted.borrow().ascending || inflight.has_room();
            tokio::select! {
                next = track.next_group(), if room => match next {
                    Ok(Some(group)) => {
                        let seq = group.sequence();
                        let w = *wanted.borrow();
                        if w.end.is_some_and(|e| seq > e) {
                            if range_ends {
                                break (DoneCode::SubscriptionEnded, "end of range");
                            }
                            continue;
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
                        for oldest in inflight.make_room() {
                            // Dropping its writer resets the stream.
                            oldest.abort();
                            self.stats.dropped(1);
                        }
                        let priority = w.stream_priority(track_priority, seq);
                        let last = w.end_object.filter(|_| w.end == Some(seq));
                        let send = self.clone().send_group(alias, group, skip, last, priority);
                        let task = groups.spawn(async move {
                            send.await;
                            seq
                        });
                        inflight.insert(seq, tokio::time::Instant::now(), task);
                        if w.end == Some(seq) && range_ends {
                            break (DoneCode::SubscriptionEnded, "end of range");
                        }
                    }
                    Ok(None) => break (DoneCode::TrackEnded, "track ended"),
                    Err(err) => {
                        tracing::debug!(%err, "track aborted");
                        break (DoneCode::InternalError, "track aborted");
                    }
                },
                Some(done) = groups.join_next(), if !groups.is_empty() => {
                    if let Ok(seq) = done {
                        inflight.remove(seq);
                    }
                }
                // An update narrowed the end to a group already seen.
                Ok(()) = wanted.changed() => {
                    let end = wanted.borrow().end;
                    if range_ends && end.is_some_and(|e| last.is_some_and(|l| l >= e)) {
                        break (DoneCode::SubscriptionEnded, "end of range");
                    }
                }
            }
        };
        while groups.join_next().await.is_some() {}
        self.lock().served.remove(&id);
        self.send(ControlMessage::PublishDone(PublishDone {
            request_id: id,
            status_code: status.code(),
            stream_count: count,
            reason: reason.to_string(),
        }));
    }

    pub(super) async fn send_group(
        self: Arc<Self>,
        alias: u64,
        mut group: GroupConsumer,
        skip: u64,
        last: Option<u64>,
        priority: i32,
    ) {
        if let Err(err) = self
            .send_group_inner(alias, &mut group, skip, last, priority)
            .await
        {
            tracing::debug!(?err, "group stream ended early");
        }
    }

    /// A new unidirectional stream for objects (a subgroup or a fetch).
    pub(super) async fn open_data_stream(&self) -> Result<Writer<T::SendStream>, StreamError> {
        let send = self
            .transport
            .open_uni()
            .await
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        Ok(Writer::new(send))
    }

    /// Sends objects `skip..` of `group` (up to `last`, inclusive, when
    /// given) on a subgroup stream.
    pub(super) async fn send_group_inner(
        &self,
        alias: u64,
        group: &mut GroupConsumer,
        skip: u64,
        last: Option<u64>,
        priority: i32,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let mut writer = self.open_data_stream().await?;
        self.stats.group_out();
        writer.set_priority(priority);
        let header = SubgroupHeader {
            track_alias: alias,
            group_id: group.sequence(),
            subgroup_id: SubgroupId::Zero,
            publisher_priority: Some(PUBLISHER_PRIORITY),
            extensions: false,
            end_of_group: false,
            first_object: skip == 0,
        };
        writer.encode(|b| header.encode(draft, b)).await?;
        let mut objects = SubgroupWriter::new(&header);
        let mut index = 0u64;
        loop {
            if last.is_some_and(|l| index > l) {
                return writer.finish_acked().await;
            }
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
                    let _ = crate::control::set_location(
                        &mut parameters,
                        MessageParameter::LargestObject.code(),
                        l,
                        draft,
                    );
                }
                self.send(ControlMessage::RequestOk(RequestOk {
                    track_properties: Default::default(),
                    request_id: m.request_id,
                    parameters,
                }));
            }
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

/// The largest location before the first group `track` will deliver (it
/// delivers that group whole): the last object of the group before it, or
/// `None` when nothing comes before. A consumer with no group yet delivers
/// what comes next, so what is there now comes before.
pub(super) fn largest_before(track: &TrackConsumer) -> Option<Location> {
    let mut probe = track.clone();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let first = match probe.poll_next_group(&mut cx) {
        std::task::Poll::Ready(Ok(Some(group))) => group.sequence(),
        _ => return largest_location(track),
    };
    let previous = first.checked_sub(1)?;
    let frames = track.group(previous).map_or(1, |group| available_frames(&group));
    Some(Location::new(previous, frames.saturating_sub(1)))
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

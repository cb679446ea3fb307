//! The subscriber half of an IETF session: what the peer publishes into
//! our origin. PUBLISH_NAMESPACE (or, from draft-16, NAMESPACE on our
//! SUBSCRIBE_NAMESPACE stream) publishes a broadcast whose tracks are
//! subscribed on demand; PUBLISH is accepted; sub-group 0 objects become
//! frames (other sub-groups are dropped and counted); datagrams become
//! single-frame groups.

use super::*;

/// How long we keep a track the peer publishes to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Demand {
    /// We subscribed on behalf of local consumers to this namespace and
    /// name: unsubscribe once none is left; fetch older groups they ask for.
    WhileUsed((TrackNamespace, Bytes)),
    /// The peer pushed it with PUBLISH: keep it (and its cache) until the
    /// peer ends it, so that subscribers who come later get it too, as they
    /// would from a relay that forwards PUBLISH (draft-16 section "Relays").
    Pushed,
}

impl<T: Transport> Inner<T> {
    /// Drafts 16+: SUBSCRIBE_NAMESPACE for the root prefix on its own
    /// bidirectional stream; each NAMESPACE publishes the peer's broadcast
    /// into our origin (as PUBLISH_NAMESPACE does), NAMESPACE_DONE withdraws it.
    pub(super) async fn run_subscribe_namespace(self: Arc<Self>) -> Result<(), StreamError> {
        let draft = self.draft;
        let id = self.next_request().await?;
        let (send, recv) = self
            .transport
            .open_bi()
            .await
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        let (mut writer, mut reader) = (Writer::new(send), Reader::new(recv));
        let msg = ControlMessage::SubscribeNamespace(SubscribeNamespace {
            request_id: id,
            required_request_id_delta: 0,
            prefix: TrackNamespace::default(),
            // NAMESPACE only: tracks are subscribed on demand.
            subscribe_options: crate::control::SubscribeOptions::Namespace,
            parameters: Parameters::new(),
        });
        writer.encode(|b| msg.encode(draft, b)).await?;
        let protocol = |reason: &str| StreamError::Protocol(SessionError::protocol(reason));
        match reader.decode(|b| ControlMessage::decode(b, draft)).await? {
            Some(Decoded::Message(ControlMessage::RequestOk(_))) => {}
            Some(Decoded::Message(ControlMessage::RequestError(err))) => {
                tracing::debug!(code = err.error_code, reason = %err.reason, "SUBSCRIBE_NAMESPACE refused");
                return Ok(());
            }
            None => return Ok(()),
            Some(_) => return Err(protocol("wrong reply to SUBSCRIBE_NAMESPACE")),
        }
        let mut discovered = std::collections::HashSet::new();
        let result = loop {
            let msg = match reader.decode(|b| ControlMessage::decode(b, draft)).await {
                Ok(Some(Decoded::Message(msg))) => msg,
                Ok(None) => break Ok(()),
                Ok(Some(Decoded::Unknown { .. })) => break Err(protocol("unknown message")),
                Err(err) => break Err(err),
            };
            match msg {
                ControlMessage::Namespace(m) => match m.suffix.to_path() {
                    Ok(path) => match self.activate(&path, None) {
                        Ok(_) => {
                            tracing::debug!(%path, "peer has a namespace");
                            discovered.insert(path);
                        }
                        Err(err) => tracing::debug!(%path, %err, "namespace not published"),
                    },
                    Err(err) => tracing::debug!(%err, "namespace has no path"),
                },
                ControlMessage::NamespaceDone(m) => {
                    if let Ok(path) = m.suffix.to_path() {
                        if discovered.remove(&path) {
                            self.withdraw_discovered(&path);
                        }
                    }
                }
                // We asked for NAMESPACE only, but a peer may still tell us
                // it could not PUBLISH a track: tracks are subscribed on
                // demand anyway.
                ControlMessage::PublishBlocked(m) => {
                    tracing::debug!(suffix = ?m.suffix, name = ?m.name, "peer is blocked from publishing a track");
                }
                _ => break Err(protocol("unexpected message on a SUBSCRIBE_NAMESPACE stream")),
            }
        };
        for path in discovered {
            self.withdraw_discovered(&path);
        }
        result
    }

    /// Withdraws a broadcast found through NAMESPACE, unless the peer also
    /// published it with PUBLISH_NAMESPACE.
    pub(super) fn withdraw_discovered(&self, path: &Path) {
        let mut state = self.lock();
        if state.announced.get(path).is_some_and(|a| a.request_id.is_none()) {
            if let Some(announced) = state.announced.remove(path) {
                announced.task.abort();
            }
        }
    }

    /// Publishes the peer's broadcast at `path` into our origin (once).
    pub(super) fn activate(
        self: &Arc<Self>,
        path: &Path,
        request_id: Option<u64>,
    ) -> Result<BroadcastProducer, moq_lite::Error> {
        let origin = self.origin.as_ref().ok_or(moq_lite::Error::Unsupported)?;
        let mut state = self.lock();
        if let Some(existing) = state.announced.get_mut(path) {
            if request_id.is_some() {
                existing.request_id = request_id;
            }
            return Ok(existing.broadcast.clone());
        }
        let broadcast = origin.new_broadcast();
        // IETF announcements say nothing of cost: the route's is unknown,
        // as over moq-lite before -06.
        broadcast.set_route_cost(moq_lite::model::RouteCost::UNKNOWN);
        let requests = broadcast.requests();
        origin.publish(path.clone(), &broadcast.consume())?;
        let task = tokio::spawn(self.clone().serve_requests(path.clone(), requests));
        state.announced.insert(
            path.clone(),
            Announced {
                broadcast: broadcast.clone(),
                task: task.abort_handle(),
                request_id,
            },
        );
        Ok(broadcast)
    }

    pub(super) fn on_publish_namespace(self: &Arc<Self>, m: PublishNamespace) {
        let draft = self.draft;
        let result = m
            .namespace
            .to_path()
            .map_err(|_| moq_lite::Error::ProtocolViolation)
            .and_then(|path| self.activate(&path, Some(m.request_id)).map(|_| path));
        match result {
            Ok(path) => {
                tracing::debug!(%path, "peer published a namespace");
                self.send(ControlMessage::RequestOk(RequestOk {
                    track_properties: Default::default(),
                    request_id: m.request_id,
                    parameters: Parameters::new(),
                }));
            }
            Err(err) => {
                let err = self.request_error(m.request_id, RequestFailure::refusal(&err), &err.to_string());
                self.send(match draft {
                    Draft::D14 => ControlMessage::PublishNamespaceError(err),
                    _ => ControlMessage::RequestError(err),
                });
            }
        }
    }

    pub(super) fn on_publish_namespace_done(&self, m: PublishNamespaceDone) {
        let mut state = self.lock();
        let path = match self.draft.namespace_streams() {
            true => state
                .announced
                .iter()
                .find(|(_, a)| a.request_id == Some(m.request_id))
                .map(|(p, _)| p.clone()),
            _ => m.namespace.to_path().ok(),
        };
        if let Some(announced) = path.and_then(|p| state.announced.remove(&p)) {
            announced.task.abort();
        }
    }

    /// Subscribes to each track a local consumer asks for, all driven from
    /// this task (aborting it cancels them all).
    pub(super) async fn serve_requests(self: Arc<Self>, path: Path, requests: BroadcastRequests) {
        use futures::StreamExt;
        requests
            .for_each_concurrent(None, |track| self.clone().run_subscription(path.clone(), track))
            .await
    }

    pub(super) async fn run_subscription(self: Arc<Self>, path: Path, track: TrackProducer) {
        let draft = self.draft;
        let Ok(mut namespace) = TrackNamespace::from_path(&path) else {
            track.abort(moq_lite::Error::NotFound);
            return;
        };
        // A track asked for under a longer namespace than the broadcast's
        // (Namespace Prefix Matching) names its extra fields.
        let RoutedName { suffix, name } = RoutedName::decode(&track.info().name);
        namespace.0.extend(suffix);
        if namespace.0.len() > crate::namespace::MAX_NAMESPACE_FIELDS {
            track.abort(moq_lite::Error::NotFound);
            return;
        }
        let priority = track.info().priority;
        let (done_tx, done_rx) = oneshot::channel();
        let mut sub_id = None;
        let start = track.requested_start();
        let target = (namespace.clone(), name.clone());
        let reply = self
            .request(|id, state| {
                sub_id = Some(id);
                state.subs.insert(
                    id,
                    Sub {
                        alias: None,
                        done: Some(done_tx),
                    },
                );
                // A start asked for by a local consumer goes upstream as an
                // AbsoluteStart; otherwise the live edge.
                let filter = match start {
                    Some(group) => SubscriptionFilter::AbsoluteStart(Location::new(group, 0)),
                    None => SubscriptionFilter::LargestObject,
                };
                let mut parameters = Parameters::new();
                if draft > Draft::D14 {
                    let _ = crate::control::set_filter(&mut parameters, filter, draft);
                    parameters.set_int(MessageParameter::Forward.code(), 1);
                    parameters.set_int(MessageParameter::SubscriberPriority.code(), priority as u64);
                }
                ControlMessage::Subscribe(Subscribe {
                    request_id: id,
                    required_request_id_delta: 0,
                    namespace,
                    name,
                    subscriber_priority: priority,
                    group_order: crate::common::group_order::PUBLISHER,
                    forward: true,
                    filter,
                    parameters,
                })
            })
            .await;
        let Some(id) = sub_id else {
            track.abort(moq_lite::Error::Closed);
            return;
        };
        let alias = match reply {
            Ok(ControlMessage::SubscribeOk(ok)) => {
                if let Some(key) = crate::control::unknown_mandatory_property(&ok.track_extensions, draft) {
                    // Draft-18: cancel it; local subscribers learn why.
                    tracing::debug!(%path, key, "unknown mandatory track property: unsubscribing");
                    self.lock().subs.remove(&id);
                    self.send(ControlMessage::Unsubscribe(Unsubscribe { request_id: id }));
                    track.abort(moq_lite::Error::Unsupported);
                    return;
                }
                ok.track_alias
            }
            Ok(ControlMessage::RequestError(err)) => {
                tracing::debug!(%path, code = err.error_code, reason = %err.reason, "subscribe refused");
                self.lock().subs.remove(&id);
                track.abort(moq_lite::Error::NotFound);
                return;
            }
            Ok(_) => {
                let _ = self
                    .fatal
                    .send(SessionError::protocol("wrong reply to SUBSCRIBE"));
                return;
            }
            Err(err) => {
                // No reply will come (the request was dropped with its
                // stream or the session): forget the subscription too.
                self.lock().subs.remove(&id);
                track.abort(err);
                return;
            }
        };
        if !self.register_alias(id, alias, &track) {
            return;
        }
        // Older groups a later consumer asks for are fetched (see `backfill`).
        track.serve_backfill(start);
        self.follow(id, alias, track, done_rx, Demand::WhileUsed(target))
            .await;
    }

    /// Records `alias` for `track`; a duplicate closes the session.
    pub(super) fn register_alias(&self, id: u64, alias: u64, track: &TrackProducer) -> bool {
        let mut state = self.lock();
        if state.aliases.contains_key(&alias) {
            let _ = self.fatal.send(SessionError::new(
                SessionCode::DuplicateTrackAlias,
                "duplicate track alias",
            ));
            return false;
        }
        state.aliases.insert(alias, track.clone());
        state.arrived.insert(alias, 0);
        if let Some(sub) = state.subs.get_mut(&id) {
            sub.alias = Some(alias);
        }
        drop(state);
        self.alias_added.notify_waiters();
        true
    }

    /// Feeds `track` until PUBLISH_DONE, or (for tracks we asked for)
    /// unsubscribes once it is unused.
    pub(super) async fn follow(
        self: &Arc<Self>,
        id: u64,
        alias: u64,
        mut track: TrackProducer,
        done: oneshot::Receiver<u64>,
        demand: Demand,
    ) {
        tokio::pin!(done);
        let mut backfill_requests = track.clone();
        let mut backfills = JoinSet::new();
        let done = loop {
            let unused = async {
                match demand {
                    Demand::WhileUsed(_) => track.unused().await,
                    Demand::Pushed => std::future::pending().await,
                }
            };
            tokio::select! {
                // A session that ends drops the sender: no count to wait for.
                count = &mut done => break Some(count.unwrap_or(UNKNOWN_STREAM_COUNT)),
                request = backfill_requests.backfill() => {
                    if let Demand::WhileUsed((namespace, name)) = &demand {
                        backfills.spawn(self.clone().backfill(namespace.clone(), name.clone(), request));
                    }
                    continue;
                }
                Some(_) = backfills.join_next(), if !backfills.is_empty() => continue,
                _ = unused => {}
            }
            // A consumer that found the track since the wake-up keeps it;
            // otherwise it ends here, before anyone else can find it.
            if track.abort_if_unused(moq_lite::Error::Cancel) {
                break None;
            }
        };
        let complete = match done {
            Some(UNKNOWN_STREAM_COUNT) => {
                tokio::time::sleep(DONE_GRACE).await;
                true
            }
            Some(count) => {
                tracing::debug!(id, alias, count, "PUBLISH_DONE: waiting for its data streams");
                self.streams_arrived(alias, count).await
            }
            None => {
                self.send(ControlMessage::Unsubscribe(Unsubscribe { request_id: id }));
                false
            }
        };
        {
            let mut state = self.lock();
            state.subs.remove(&id);
            state.aliases.remove(&alias);
            state.arrived.remove(&alias);
        }
        match (done, complete) {
            (Some(_), true) => {
                let _ = track.finish();
            }
            (Some(count), false) => {
                tracing::debug!(alias, count, "PUBLISH_DONE: not every data stream arrived");
                track.abort(moq_lite::Error::Dropped);
            }
            (None, _) => track.abort(moq_lite::Error::Cancel),
        }
    }

    /// Waits (at most [`DONE_WAIT`]) until `count` data streams of `alias`
    /// arrived; whether they did.
    async fn streams_arrived(&self, alias: u64, count: u64) -> bool {
        let deadline = tokio::time::Instant::now() + DONE_WAIT;
        loop {
            let notified = self.stream_arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().arrived.get(&alias).is_some_and(|n| *n >= count) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Counts a data stream of `alias` that arrived.
    fn count_stream(&self, alias: u64) {
        if let Some(n) = self.lock().arrived.get_mut(&alias) {
            *n += 1;
        }
        self.stream_arrived.notify_waiters();
    }

    pub(super) fn on_publish(self: &Arc<Self>, m: crate::control::Publish) -> Result<(), SessionError> {
        let draft = self.draft;
        let refuse_with = |failure, reason: &str| {
            let err = self.request_error(m.request_id, failure, reason);
            self.send(match draft {
                Draft::D14 => ControlMessage::PublishError(err),
                _ => ControlMessage::RequestError(err),
            });
        };
        let refuse = |reason: &str| refuse_with(RequestFailure::Uninterested, reason);
        let (Ok(path), Ok(name)) = (m.namespace.to_path(), String::from_utf8(m.name.to_vec())) else {
            refuse("invalid namespace or name");
            return Ok(());
        };
        // Draft-18: a track with a mandatory property we do not know is
        // refused, never taken, forwarded or cached.
        if let Some(key) = crate::control::unknown_mandatory_property(&m.track_extensions, draft) {
            refuse_with(
                RequestFailure::UnsupportedExtension,
                &format!("unknown mandatory track property {key:#x}"),
            );
            return Ok(());
        }
        let broadcast = match self.activate(&path, None) {
            Ok(b) => b,
            Err(err) => {
                refuse(&err.to_string());
                return Ok(());
            }
        };
        let track = broadcast.create_track(Track::new(name));
        let (done_tx, done_rx) = oneshot::channel();
        self.lock().subs.insert(
            m.request_id,
            Sub {
                alias: None,
                done: Some(done_tx),
            },
        );
        if !self.register_alias(m.request_id, m.track_alias, &track) {
            return Ok(());
        }
        let mut parameters = Parameters::new();
        // Draft-20 moved the subscription's parameters to PUBLISH (PUBLISH_OK
        // carries EXPIRES alone): forwarding is what the PUBLISH said.
        if draft > Draft::D14 && !draft.filtered_fetch() {
            parameters.set_int(MessageParameter::Forward.code(), 1);
        }
        self.send(ControlMessage::PublishOk(PublishOk {
            request_id: m.request_id,
            forward: true,
            subscriber_priority: PUBLISHER_PRIORITY,
            group_order: crate::common::group_order::ASCENDING,
            filter: SubscriptionFilter::LargestObject,
            parameters,
        }));
        // Draft-20: a PUBLISH with FORWARD 0 sends nothing until asked;
        // the track is here to be read, so ask (REQUEST_UPDATE on its stream).
        if draft.filtered_fetch() && m.parameters.get_int(MessageParameter::Forward.code()) == Some(0) {
            let id = self.lock().ids.take(u64::MAX);
            if let Take::Id(id) = id {
                let mut parameters = Parameters::new();
                parameters.set_int(MessageParameter::Forward.code(), 1);
                self.send(ControlMessage::RequestUpdate(crate::control::RequestUpdate {
                    request_id: id,
                    existing_request_id: m.request_id,
                    parameters,
                    ..Default::default()
                }));
            }
        }
        let this = self.clone();
        let (id, alias) = (m.request_id, m.track_alias);
        tokio::spawn(async move { this.follow(id, alias, track, done_rx, Demand::Pushed).await });
        Ok(())
    }

    /// The track for `alias`, waiting a little for its SUBSCRIBE_OK.
    pub(super) async fn track_for(&self, alias: u64) -> Option<TrackProducer> {
        let deadline = tokio::time::Instant::now() + ALIAS_WAIT;
        loop {
            let notified = self.alias_added.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(track) = self.lock().aliases.get(&alias).cloned() {
                return Some(track);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// A unidirectional stream from the peer.
    pub(super) async fn recv_uni(self: Arc<Self>, recv: T::RecvStream) -> Result<(), StreamError> {
        let draft = self.draft;
        // Objects are decoded whole, payload included.
        let mut reader = Reader::new(recv).with_max_buffered(stream::MAX_OBJECT_BUFFERED);
        let header = reader.decode_required(|b| StreamHeader::decode(b, draft)).await?;
        let header = match header {
            StreamHeader::Subgroup(h) => h,
            StreamHeader::Padding => {
                // Draft-18 "Padding": discard; stopping it is allowed.
                reader.stop(0x1);
                return Ok(());
            }
            StreamHeader::Fetch(h) => return self.recv_fetch(h, reader).await,
            other => {
                // Unknown types: reset just this stream.
                tracing::debug!(?other, "unexpected stream type");
                reader.stop(0x1);
                return Ok(());
            }
        };
        let mut objects = SubgroupReader::new(&header);
        let mut first = None;
        let subgroup = match header.subgroup_id {
            SubgroupId::Zero => 0,
            SubgroupId::Explicit(id) => id,
            SubgroupId::FirstObject => {
                let Some(obj) = reader.decode(|b| objects.decode(b, draft)).await? else {
                    return Ok(());
                };
                let id = obj.object_id;
                first = Some(obj);
                id
            }
        };
        // Draft-18: a stream without FIRST_OBJECT may start partway through
        // its group. Frames are objects 0, 1, 2... in the model, so a group
        // whose head is missing cannot be held: it is dropped, as a stream
        // of another sub-group is.
        let mut headless = false;
        if !header.first_object && subgroup == 0 {
            if first.is_none() {
                first = reader.decode(|b| objects.decode(b, draft)).await?;
            }
            // (A stream with no object at all starts nothing either.)
            headless = first.as_ref().is_none_or(|obj| obj.object_id != 0);
        }
        if subgroup != 0 || headless {
            // Counted among the subscription's streams (PUBLISH_DONE's Stream
            // Count includes them), once its alias is known.
            if self.track_for(header.track_alias).await.is_some() {
                self.count_stream(header.track_alias);
            }
            let mut count = first.is_some() as u64;
            while reader.decode(|b| objects.decode(b, draft)).await?.is_some() {
                count += 1;
            }
            self.dropped.fetch_add(count, Ordering::Relaxed);
            tracing::debug!(
                subgroup,
                group = header.group_id,
                count,
                headless,
                "dropped objects outside sub-group 0, or of a group joined partway"
            );
            return Ok(());
        }
        let Some(mut track) = self.track_for(header.track_alias).await else {
            tracing::debug!(alias = header.track_alias, "data for an unknown track alias");
            reader.stop(0x1);
            return Ok(());
        };
        let created = track.create_group(header.group_id);
        drop(track);
        let group = match created {
            Ok(mut group) => {
                group.abort_on_drop(moq_lite::Error::Cancel);
                group
            }
            Err(err) => {
                tracing::debug!(%err, group = header.group_id, "group refused");
                reader.stop(0x1);
                return Ok(());
            }
        };
        // Counted once its group exists, so that a track finished for want of
        // more streams never refuses this one.
        self.count_stream(header.track_alias);
        self.stats.group_in();
        let mut group = IncomingGroup {
            group: Some(group),
            stats: &self.stats,
        };
        if let Some(obj) = first {
            if !group.object(obj) {
                return Ok(());
            }
        }
        loop {
            match reader.decode(|b| objects.decode(b, draft)).await {
                Ok(Some(obj)) => {
                    if !group.object(obj) {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    group.finish();
                    return Ok(());
                }
                Err(err) => {
                    group.abort(moq_lite::Error::Cancel);
                    return Err(err);
                }
            }
        }
    }

    /// Datagrams: each object becomes a single-frame group.
    pub(super) async fn recv_datagrams(self: Arc<Self>) -> Result<(), StreamError> {
        let draft = self.draft;
        loop {
            let Ok(mut datagram) = self.transport.recv_datagram().await else {
                return Ok(());
            };
            if ObjectDatagram::is_padding(&datagram, draft) {
                continue;
            }
            let obj = ObjectDatagram::decode(&mut datagram, draft)?;
            let Some(mut track) = self.lock().aliases.get(&obj.track_alias).cloned() else {
                continue;
            };
            let ObjectContent::Payload(payload) = obj.content else {
                continue;
            };
            if let Ok(mut group) = track.create_group(obj.group_id) {
                self.stats.group_in();
                self.stats.frame_in(payload.len() as u64);
                let _ = group.write_frame(payload);
                let _ = group.finish();
            }
        }
    }
}

/// A group being received; aborted if dropped unfinished (its producer is
/// set to abort on drop).
struct IncomingGroup<'a> {
    group: Option<moq_lite::model::GroupProducer>,
    stats: &'a SessionStats,
}

impl IncomingGroup<'_> {
    /// Adds one object; `false` once the group is over.
    fn object(&mut self, obj: SubgroupObject) -> bool {
        let Some(group) = self.group.as_mut() else {
            return false;
        };
        match obj.content {
            ObjectContent::Payload(payload) => {
                self.stats.frame_in(payload.len() as u64);
                if group.write_frame(payload).is_err() {
                    self.group = None;
                    return false;
                }
                true
            }
            ObjectContent::Status(ObjectStatus::EndOfGroup | ObjectStatus::EndOfTrack) => {
                self.finish();
                false
            }
            ObjectContent::Status(_) => true,
        }
    }

    fn finish(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = group.finish();
        }
    }

    fn abort(&mut self, err: moq_lite::Error) {
        if let Some(group) = self.group.take() {
            group.abort(err);
        }
    }
}

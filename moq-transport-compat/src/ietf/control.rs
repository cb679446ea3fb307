//! The control stream's messages: each one read from the peer is checked
//! and dispatched here to the half that serves it (publisher, subscriber,
//! request IDs), answers included.

use super::*;

/// Drafts 14 and 15: SUBSCRIBE_NAMESPACE requests one session may hold open
/// at once (draft-16 puts each on a stream of its own, bounded by the
/// QUIC stream limit).
const MAX_NAMESPACE_SUBSCRIPTIONS: usize = 64;

impl<T: Transport> Inner<T> {
    /// One control message from the peer.
    pub(super) fn handle(self: &Arc<Self>, msg: ControlMessage) -> Result<(), SessionError> {
        use ControlMessage as M;
        let draft = self.draft;
        match msg {
            M::ClientSetup(_) | M::ServerSetup(_) | M::Setup(_) => {
                return Err(SessionError::protocol("SETUP after setup"));
            }
            M::GoAway(m) => tracing::info!(uri = %m.uri, "peer sent GOAWAY"),
            M::MaxRequestId(m) => {
                // "equal or smaller ... is a PROTOCOL_VIOLATION"
                if m.request_id <= *self.peer_max.borrow() {
                    return Err(SessionError::protocol("MAX_REQUEST_ID did not increase"));
                }
                self.peer_max.send_replace(m.request_id);
            }
            M::RequestsBlocked(m) => {
                tracing::debug!(max = m.max_request_id, "peer is blocked on request IDs")
            }
            M::RequestOk(RequestOk { request_id, .. })
            | M::SubscribeNamespaceOk(RequestOk { request_id, .. })
            | M::RequestError(RequestError { request_id, .. })
            | M::PublishError(RequestError { request_id, .. })
            | M::FetchError(RequestError { request_id, .. })
            | M::TrackStatusError(RequestError { request_id, .. })
            | M::PublishNamespaceError(RequestError { request_id, .. })
            | M::SubscribeNamespaceError(RequestError { request_id, .. })
            | M::SubscribeOk(SubscribeOk { request_id, .. })
            | M::TrackStatusOk(SubscribeOk { request_id, .. })
            | M::FetchOk(FetchOk { request_id, .. })
            | M::PublishOk(PublishOk { request_id, .. }) => {
                let pending = self.lock().pending.remove(&request_id);
                match pending {
                    Some(tx) => {
                        let _ = tx.send(msg);
                    }
                    None => tracing::debug!(request_id, "response to no pending request"),
                }
            }
            M::Subscribe(m) => {
                self.peer_request(m.request_id)?;
                self.on_subscribe(m)?;
            }
            M::RequestUpdate(m) => self.on_request_update(m)?,
            M::Unsubscribe(m) => {
                if let Some(served) = self.lock().served.remove(&m.request_id) {
                    if let Some(task) = served.task {
                        task.abort();
                    }
                }
            }
            M::PublishDone(m) => {
                let done = self
                    .lock()
                    .subs
                    .get_mut(&m.request_id)
                    .and_then(|s| s.done.take());
                if let Some(done) = done {
                    let _ = done.send(m.stream_count);
                }
            }
            M::Publish(m) => {
                self.peer_request(m.request_id)?;
                self.on_publish(m)?;
            }
            M::Fetch(m) => {
                self.peer_request(m.request_id)?;
                self.on_fetch(m)?;
            }
            M::FetchCancel(m) => {
                if let Some(task) = self.lock().fetches.remove(&m.request_id) {
                    task.abort();
                }
            }
            M::TrackStatus(m) => {
                self.peer_request(m.request_id)?;
                self.on_track_status(m);
            }
            M::PublishNamespace(m) => {
                self.peer_request(m.request_id)?;
                self.on_publish_namespace(m);
            }
            M::PublishNamespaceDone(m) => self.on_publish_namespace_done(m),
            M::PublishNamespaceCancel(m) => {
                tracing::debug!(namespace = ?m.namespace, code = m.error_code, "peer cancelled a namespace");
            }
            M::SubscribeNamespace(m) => {
                self.peer_request(m.request_id)?;
                // Each one is a task watching the whole origin: bounded, so
                // a peer cannot make us run them without limit.
                if self.lock().pushers.len() >= MAX_NAMESPACE_SUBSCRIPTIONS {
                    let err = self.request_error(
                        m.request_id,
                        RequestFailure::InternalError,
                        "too many namespace subscriptions",
                    );
                    self.send(match draft {
                        Draft::D14 => M::SubscribeNamespaceError(err),
                        _ => M::RequestError(err),
                    });
                    return Ok(());
                }
                // Drafts 14 and 15: every namespace is announced anyway
                // (PUBLISH_NAMESPACE); the tracks under the prefix are
                // pushed with PUBLISH (push.rs).
                let ok = RequestOk {
                    track_properties: Default::default(),
                    request_id: m.request_id,
                    parameters: Parameters::new(),
                };
                self.send(match draft {
                    Draft::D14 => M::SubscribeNamespaceOk(ok),
                    _ => M::RequestOk(ok),
                });
                if let Ok(prefix) = m.prefix.to_path() {
                    let task = tokio::spawn(self.clone().push_tracks(prefix));
                    self.lock()
                        .pushers
                        .insert(m.request_id, (m.prefix, task.abort_handle()));
                }
            }
            M::UnsubscribeNamespace(m) => {
                // Draft-14 names the prefix, draft-15 the request.
                let mut state = self.lock();
                let id = match draft {
                    Draft::D14 => state
                        .pushers
                        .iter()
                        .find(|(_, (prefix, _))| *prefix == m.prefix)
                        .map(|(id, _)| *id),
                    _ => Some(m.request_id),
                };
                if let Some((_, task)) = id.and_then(|id| state.pushers.remove(&id)) {
                    task.abort();
                }
            }
            M::PublishBlocked(m) => {
                // Draft-17, on a SUBSCRIBE_NAMESPACE stream of ours: the peer
                // will not PUBLISH this track. Our subscriber asks for
                // NAMESPACE only and subscribes to tracks on demand, so
                // there is nothing to fall back to.
                tracing::debug!(suffix = ?m.suffix, name = ?m.name, "peer is blocked from publishing a track");
            }
            // Draft-20: the publisher's state of one of our subscriptions;
            // it asks nothing of us, and the objects tell us the same.
            M::PublishStateNotify(m) => tracing::trace!(?m, "publisher state"),
            M::Namespace(_) | M::NamespaceDone(_) => {
                return Err(SessionError::protocol(
                    "message not allowed on the control stream",
                ));
            }
        }
        Ok(())
    }

    /// Whether `id` is a request the peer has made in this session.
    pub(super) fn peer_used(&self, id: u64) -> bool {
        self.lock().ids.peer_used(id)
    }

    /// SUBSCRIBE_UPDATE (drafts 14, 15) / REQUEST_UPDATE (16+).
    ///
    /// Every draft counts it as a request of its own ("The Request ID
    /// increments by 2 with each FETCH, SUBSCRIBE, SUBSCRIBE_UPDATE, ...";
    /// draft-17: "... REQUEST_UPDATE ..."), naming the request it updates
    /// (draft-17: by the stream it arrives on), which must have existed
    /// (PROTOCOL_VIOLATION otherwise). Draft-14 expects no reply and
    /// allows only narrowing; from 15 it gets exactly one REQUEST_OK (with
    /// LARGEST_OBJECT for a subscription) or REQUEST_ERROR, and a failed
    /// subscription update also ends the subscription (PUBLISH_DONE
    /// UPDATE_FAILED). What we act on: the filter (new start / end), the
    /// Forward State and the Subscriber Priority (for groups from now on).
    pub(super) fn on_request_update(&self, m: crate::control::RequestUpdate) -> Result<(), SessionError> {
        let draft = self.draft;
        self.peer_request(m.request_id)?;
        let existing = m.existing_request_id;
        if !self.peer_used(existing) {
            return Err(SessionError::protocol("update of a request that never existed"));
        }
        // With a stream per request the update rides the request's stream
        // and the answer names the request itself.
        let reply_id = if draft.request_streams() {
            existing
        } else {
            m.request_id
        };
        let served = self
            .lock()
            .served
            .get(&existing)
            .map(|s| (s.wanted.clone(), s.track.clone(), s.task.clone()));
        let Some((wanted, track, task)) = served else {
            // Not a subscription of ours (any more): nothing to change.
            // Fetches, namespaces and subscriptions that just ended alike
            // are still answered once.
            if draft > Draft::D14 {
                self.send(ControlMessage::RequestOk(RequestOk {
                    track_properties: Default::default(),
                    request_id: reply_id,
                    parameters: Parameters::new(),
                }));
            }
            return Ok(());
        };
        let old = *wanted.borrow();
        let mut new = old;
        let (filter, forward, priority) = match draft {
            Draft::D14 => {
                let filter = match m.end_group {
                    Some(end_group) => SubscriptionFilter::AbsoluteRange {
                        start: m.start,
                        end_group,
                    },
                    None => SubscriptionFilter::AbsoluteStart(m.start),
                };
                (Some(filter), Some(m.forward), Some(m.subscriber_priority))
            }
            _ => (
                crate::control::filter(&m.parameters, draft)
                    .map_err(|e| SessionError::protocol(e.to_string()))?,
                m.parameters
                    .get_int(MessageParameter::Forward.code())
                    .map(|f| f != 0),
                m.parameters
                    .get_int(MessageParameter::SubscriberPriority.code())
                    .map(|p| p.min(255) as u8),
            ),
        };
        if filter.is_some() {
            new.end_object = None;
        }
        match filter {
            Some(SubscriptionFilter::AbsoluteStart(start)) => (new.start, new.end) = (Some(start), None),
            Some(SubscriptionFilter::AbsoluteRange { start, end_group }) => {
                (new.start, new.end) = (Some(start), Some(end_group))
            }
            Some(SubscriptionFilter::AbsoluteEnd { start, end }) => {
                (new.start, new.end, new.end_object) = (Some(start), Some(end.group), Some(end.object))
            }
            // Relative filters keep the start: they name where a new
            // subscription begins, and this one has begun. No filter
            // (draft-20, Length 0) removes the end.
            Some(_) => new.end = None,
            None => {}
        }
        new.forward = forward.unwrap_or(new.forward);
        new.subscriber_priority = priority.unwrap_or(new.subscriber_priority);
        let start_group = |w: &publisher::Wanted| w.start.map_or(0, |s| s.group);
        let bad_range = new.end.is_some_and(|e| e < start_group(&new));
        match draft {
            // Draft-14 {{message-subscribe-update}}: "The Start Location MUST
            // NOT decrease and the End Group MUST NOT increase", End Group
            // at least the start group: PROTOCOL_VIOLATION.
            Draft::D14 => {
                let narrower = new.start.unwrap_or_default() >= old.start.unwrap_or_default()
                    && (old.end.is_none() || new.end.is_some_and(|e| Some(e) <= old.end));
                if bad_range || !narrower {
                    return Err(SessionError::protocol("SUBSCRIBE_UPDATE widens the subscription"));
                }
            }
            // Draft-15: "the Start Location MUST not decrease": PROTOCOL_VIOLATION.
            Draft::D15 if new.start.unwrap_or_default() < old.start.unwrap_or_default() => {
                return Err(SessionError::protocol("SUBSCRIBE_UPDATE moves the start back"));
            }
            _ => {}
        }
        if bad_range {
            let err = self.request_error(reply_id, RequestFailure::InvalidRange, "end before start");
            self.send(ControlMessage::RequestError(err));
            if let Some(task) = task {
                task.abort();
            }
            self.lock().served.remove(&existing);
            self.send(ControlMessage::PublishDone(PublishDone {
                request_id: existing,
                status_code: DoneCode::UpdateFailed.code(),
                stream_count: 0,
                reason: "update failed".to_string(),
            }));
            return Ok(());
        }
        wanted.send_replace(new);
        tracing::debug!(existing, ?new, "subscription updated");
        if draft > Draft::D14 {
            let mut parameters = Parameters::new();
            if let Some(l) = publisher::largest_location(&track) {
                let _ = crate::control::set_location(
                    &mut parameters,
                    MessageParameter::LargestObject.code(),
                    l,
                    draft,
                );
            }
            self.send(ControlMessage::RequestOk(RequestOk {
                track_properties: Default::default(),
                request_id: reply_id,
                parameters,
            }));
        }
        Ok(())
    }
}

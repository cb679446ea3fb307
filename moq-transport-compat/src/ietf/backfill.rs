//! Backfill over IETF: older groups of a track we already subscribe to,
//! asked of the peer with a FETCH when a local consumer wants a start below
//! what the subscription covers (draft-20 section "Relays": a relay lacking
//! a range asks upstream with FETCH). The FETCH's data stream lands in the
//! track as backfilled groups (sub-group 0 objects, as for subscriptions;
//! a group whose object 0 is missing is dropped, as a headless stream is).

use super::*;

use moq_lite::model::{BackfillRequest, GroupProducer};

/// How long a backfill FETCH may take, answer and data together: consumers
/// wait for it before reading.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A FETCH of ours waiting for its data stream.
pub(super) struct OutFetch {
    request: Arc<BackfillRequest>,
    /// Told once the data stream was read (or given up).
    done: oneshot::Sender<()>,
}

impl<T: Transport> Inner<T> {
    /// Asks the peer for the groups of `request` of track `name` in
    /// `namespace` with one FETCH, ascending, and waits (bounded) until its
    /// data stream was read. Dropping the request at the end releases the
    /// consumers waiting for it.
    pub(super) async fn backfill(
        self: Arc<Self>,
        namespace: TrackNamespace,
        name: Bytes,
        request: BackfillRequest,
    ) {
        let draft = self.draft;
        let range = request.range();
        let Some(last) = range.end.checked_sub(1) else {
            return;
        };
        let request = Arc::new(request);
        let (done_tx, done_rx) = oneshot::channel();
        let mut fetch_id = None;
        let mut parameters = Parameters::new();
        if draft > Draft::D14 {
            parameters.set_int(
                MessageParameter::GroupOrder.code(),
                crate::common::group_order::ASCENDING as u64,
            );
        }
        let fetch_type = match draft.filtered_fetch() {
            true => {
                let filter = SubscriptionFilter::AbsoluteRange {
                    start: Location::new(range.start, 0),
                    end_group: last,
                };
                let _ = crate::control::set_filter(&mut parameters, filter, draft);
                FetchType::Filtered { namespace, name }
            }
            // The End Location is the last object plus one; object 0 there
            // means the whole of that group.
            false => FetchType::Standalone {
                namespace,
                name,
                start: Location::new(range.start, 0),
                end: Location::new(last, 0),
            },
        };
        let out = OutFetch {
            request: request.clone(),
            done: done_tx,
        };
        let reply = tokio::time::timeout(
            BACKFILL_TIMEOUT,
            self.request(|id, state| {
                fetch_id = Some(id);
                // Registered before the FETCH leaves: its data stream may
                // arrive before FETCH_OK.
                state.backfills.insert(id, out);
                ControlMessage::Fetch(Fetch {
                    request_id: id,
                    required_request_id_delta: 0,
                    subscriber_priority: PUBLISHER_PRIORITY,
                    group_order: crate::common::group_order::ASCENDING,
                    fetch_type,
                    parameters,
                })
            }),
        )
        .await;
        let Some(id) = fetch_id else { return };
        // However this ends (the subscription may abort this task), the
        // FETCH is forgotten.
        let _forget = Forget(self.clone(), id);
        let answered = match reply {
            Ok(Ok(ControlMessage::FetchOk(ok))) => {
                // Draft-18: a mandatory property we do not know cancels it.
                crate::control::unknown_mandatory_property(&ok.track_extensions, draft).is_none()
                    && tokio::time::timeout(BACKFILL_TIMEOUT, done_rx).await.is_ok()
            }
            Ok(Ok(other)) => {
                tracing::debug!(?other, "backfill FETCH refused");
                false
            }
            _ => false,
        };
        // From draft-17 the FETCH has its own request stream, open until now.
        if !answered || draft >= Draft::D17 {
            self.send(ControlMessage::FetchCancel(crate::control::FetchCancel {
                request_id: id,
            }));
        }
    }

    /// A FETCH_HEADER stream: the data of one of our backfill FETCHes.
    pub(super) async fn recv_fetch(
        self: Arc<Self>,
        header: FetchHeader,
        mut reader: Reader<T::RecvStream>,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let Some(out) = self.lock().backfills.remove(&header.request_id) else {
            tracing::debug!(id = header.request_id, "fetch stream for no FETCH of ours");
            reader.stop(0x1);
            return Ok(());
        };
        let wanted = out.request.range();
        let mut items = crate::data::FetchReader::descending(false);
        let mut group: Option<GroupProducer> = None;
        // The group being skipped (its object 0 did not come first, or the
        // track refused it).
        let mut skipping: Option<u64> = None;
        let result = loop {
            let item = match reader.decode(|b| items.decode(b, draft)).await {
                Ok(Some(item)) => item,
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            };
            let FetchItem::Object(obj) = item else {
                continue; // End of a range: nothing to hold.
            };
            if !wanted.contains(&obj.group_id) {
                // Not what we asked for: never let a peer plant groups.
                break Err(StreamError::Protocol(SessionError::protocol(
                    "FETCH data outside the requested range",
                )));
            }
            if obj.subgroup_id.is_some_and(|s| s != 0) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let current = group.as_ref().map(|g| g.sequence()).or(skipping);
            if current != Some(obj.group_id) {
                if let Some(done) = group.take() {
                    let _ = done.finish();
                }
                skipping = None;
                if obj.object_id != 0 {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    skipping = Some(obj.group_id);
                    continue;
                }
                match out.request.create_group(obj.group_id) {
                    Ok(mut created) => {
                        created.abort_on_drop(moq_lite::Error::Cancel);
                        self.stats.group_in();
                        group = Some(created);
                    }
                    Err(err) => {
                        // Already here (the subscription brought it), or too old.
                        tracing::debug!(%err, group = obj.group_id, "backfilled group refused");
                        skipping = Some(obj.group_id);
                        continue;
                    }
                }
            }
            let Some(writer) = group.as_mut() else { continue };
            match obj.content {
                ObjectContent::Payload(payload) => {
                    self.stats.frame_in(payload.len() as u64);
                    if writer.write_frame(payload).is_err() {
                        skipping = group.take().map(|g| g.sequence());
                    }
                }
                ObjectContent::Status(ObjectStatus::EndOfGroup | ObjectStatus::EndOfTrack) => {
                    if let Some(done) = group.take() {
                        skipping = Some(done.sequence());
                        let _ = done.finish();
                    }
                }
                ObjectContent::Status(_) => {}
            }
        };
        match result {
            Ok(()) => {
                if let Some(done) = group.take() {
                    let _ = done.finish();
                }
            }
            Err(_) => {
                if let Some(cut) = group.take() {
                    cut.abort(moq_lite::Error::Cancel);
                }
            }
        }
        let _ = out.done.send(());
        result
    }
}

/// Removes a backfill FETCH from the session's state when dropped.
struct Forget<T: Transport>(Arc<Inner<T>>, u64);

impl<T: Transport> Drop for Forget<T> {
    fn drop(&mut self) {
        self.0.lock().backfills.remove(&self.1);
    }
}

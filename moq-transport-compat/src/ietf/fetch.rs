//! FETCH served from the track cache: standalone, relative and absolute
//! joining, ascending or descending, on one unidirectional stream per
//! request, objects that exist only (an open group is not waited for).

use super::*;

use super::publisher::largest_location;

impl<T: Transport> Inner<T> {
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
            _ => m
                .parameters
                .get_int(MessageParameter::GroupOrder.code())
                .unwrap_or(0) as u8,
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
            let mut fetch = FetchWriter::descending(descending);
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
}

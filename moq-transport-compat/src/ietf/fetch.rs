//! FETCH served from the track cache: standalone, relative and absolute
//! joining, and from draft-20 a range given by LOCATION_FILTER; ascending or
//! descending, on one unidirectional stream per request, objects that exist
//! only (an open group is not waited for). Draft-20's fills (a SUBSCRIBE's
//! FILL_PARAMETERS) are the same stream under the SUBSCRIBE's Request ID,
//! without FETCH_OK. A relay that lacks the start of the range asks its
//! upstream first (the track's backfill) and answers once that came back,
//! waiting at most `FETCH_WAIT`.

use super::*;

use super::publisher::largest_location;

// The longest a FETCH waits for what it asked upstream for.
use moq_lite::model::FETCH_WAIT;

/// The range a FETCH of a named track asks for.
#[derive(Debug, Clone, Copy)]
pub(super) enum FetchRange {
    /// Up to draft-19: Start and End Locations (End: the last object plus
    /// one, object 0 the whole group).
    Standalone(Location, Location),
    /// Draft-20+: a LOCATION_FILTER, evaluated against the largest object.
    Filter(SubscriptionFilter),
}

impl FetchRange {
    /// The first group asked for, where known without the track.
    fn start_group(self) -> Option<u64> {
        match self {
            FetchRange::Standalone(start, _) => Some(start.group),
            FetchRange::Filter(
                SubscriptionFilter::AbsoluteStart(s)
                | SubscriptionFilter::AbsoluteRange { start: s, .. }
                | SubscriptionFilter::AbsoluteEnd { start: s, .. },
            ) => Some(s.group),
            FetchRange::Filter(SubscriptionFilter::Unfiltered) => Some(0),
            FetchRange::Filter(_) => None,
        }
    }

    /// The last group asked for, where the range names one.
    fn end_group(self) -> Option<u64> {
        match self {
            FetchRange::Standalone(_, end) => Some(end.group),
            FetchRange::Filter(SubscriptionFilter::AbsoluteRange { end_group, .. }) => Some(end_group),
            FetchRange::Filter(SubscriptionFilter::AbsoluteEnd { end, .. }) => Some(end.group),
            FetchRange::Filter(_) => None,
        }
    }

    /// The objects to send, `(start, (end group, end object))`, given the
    /// track's `largest` object; the reason for INVALID_RANGE otherwise.
    fn resolve(self, largest: Option<Location>) -> Result<(Location, (u64, Option<u64>)), &'static str> {
        match self {
            FetchRange::Standalone(start, end) => {
                if end.group < start.group {
                    return Err("end before start");
                }
                // "If Start Location is greater than the Largest Object ...
                // the publisher MUST return ... INVALID_RANGE" (every draft).
                if largest.is_none_or(|largest| start > largest) {
                    return Err("start after the largest object");
                }
                // End Object is the last object plus one; 0 = the whole group.
                Ok((start, (end.group, end.object.checked_sub(1))))
            }
            // "If no Objects have been published for the track or Start
            // Location is greater than the Largest Object": INVALID_RANGE.
            FetchRange::Filter(filter) => largest
                .and_then(|largest| fetch_range(filter, largest))
                .ok_or("nothing published in the range"),
        }
    }
}

/// FETCHes one peer may have in flight at once; more are refused.
const MAX_FETCHES: usize = 64;

impl<T: Transport> Inner<T> {
    pub(super) fn on_fetch(self: &Arc<Self>, m: Fetch) -> Result<(), SessionError> {
        let id = m.request_id;
        if self.lock().fetches.len() >= MAX_FETCHES {
            self.send(self.fetch_error(id, RequestFailure::InternalError, "too many FETCHes in flight"));
            return Ok(());
        }
        // A named track (standalone, or draft-20's filtered FETCH): asked
        // upstream from the FETCH's start if this side holds none of it yet
        // (a relay that never subscribed), and answered once the range came
        // (see `answer_fetch`).
        let (namespace, name, range) = match &m.fetch_type {
            FetchType::Filtered { namespace, name } => {
                if self.refuse_range_filters(id, &m.parameters) {
                    return Ok(());
                }
                let filter = crate::control::filter(&m.parameters, self.draft)
                    .map_err(|e| SessionError::protocol(e.to_string()))?
                    .unwrap_or(SubscriptionFilter::Unfiltered);
                (namespace, name, FetchRange::Filter(filter))
            }
            FetchType::Standalone {
                namespace,
                name,
                start,
                end,
            } => (namespace, name, FetchRange::Standalone(*start, *end)),
            FetchType::RelativeJoining {
                joining_request_id,
                joining_start,
            } => return self.on_joining_fetch(&m, *joining_request_id, *joining_start, true),
            FetchType::AbsoluteJoining {
                joining_request_id,
                joining_start,
            } => return self.on_joining_fetch(&m, *joining_request_id, *joining_start, false),
        };
        let Some(track) = self.find_track_from(namespace, name, range.start_group()) else {
            self.send(self.fetch_error(id, RequestFailure::DoesNotExist, "track does not exist"));
            return Ok(());
        };
        // FILL_TIMEOUT bounds the wait ("0: only what is immediately
        // available"); we never wait longer than FETCH_WAIT.
        let wait = m
            .parameters
            .get_int(MessageParameter::FillTimeout.code())
            .map_or(FETCH_WAIT, |ms| Duration::from_millis(ms).min(FETCH_WAIT));
        let descending = self.fetch_descending(&m);
        let task = tokio::spawn(self.clone().answer_fetch(id, track, range, wait, descending));
        self.lock().fetches.insert(id, task.abort_handle());
        Ok(())
    }

    /// A joining FETCH: groups from `joining_start` (`relative`: that many
    /// before the largest) up to where subscription `joining_request_id`
    /// started.
    fn on_joining_fetch(
        self: &Arc<Self>,
        m: &Fetch,
        joining_request_id: u64,
        joining_start: u64,
        relative: bool,
    ) -> Result<(), SessionError> {
        let id = m.request_id;
        let error = |code, reason: &str| self.fetch_error(id, code, reason);
        let (track, start, end) = {
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
        };
        let descending = self.fetch_descending(m);
        let task = tokio::spawn(self.clone().serve_fetch(id, track, start, end, descending));
        self.lock().fetches.insert(id, task.abort_handle());
        Ok(())
    }

    /// The refusal of FETCH `id`: FETCH_ERROR in draft-14, REQUEST_ERROR after.
    fn fetch_error(&self, id: u64, failure: RequestFailure, reason: &str) -> ControlMessage {
        let err = self.request_error(id, failure, reason);
        match self.draft {
            Draft::D14 => ControlMessage::FetchError(err),
            _ => ControlMessage::RequestError(err),
        }
    }

    /// Whether FETCH `m` asks for groups newest first.
    fn fetch_descending(&self, m: &Fetch) -> bool {
        let order = match self.draft {
            Draft::D14 => m.group_order,
            _ => m
                .parameters
                .get_int(MessageParameter::GroupOrder.code())
                .unwrap_or(0) as u8,
        };
        order == crate::common::group_order::DESCENDING
    }

    /// Answers a FETCH of a named track: when the track holds nothing yet
    /// (requested upstream just now, from the FETCH's start), waits up to
    /// `wait` for the range to arrive, then resolves the range against what
    /// is there and serves it, or refuses it (INVALID_RANGE).
    async fn answer_fetch(
        self: Arc<Self>,
        id: u64,
        track: TrackConsumer,
        range: FetchRange,
        wait: Duration,
        descending: bool,
    ) {
        if largest_location(&track).is_none() {
            let end = range.end_group();
            let held =
                |t: &TrackConsumer| largest_location(t).is_some_and(|l| end.is_none_or(|e| l.group >= e));
            let mut probe = track.clone();
            let _ = tokio::time::timeout(wait, async {
                while !held(&probe) {
                    if !matches!(probe.next_group().await, Ok(Some(_))) {
                        return;
                    }
                }
            })
            .await;
        } else if let Some(start) = range.start_group().filter(|&s| track.group(s).is_none()) {
            // A relay serving the track from a later group asks its upstream
            // for the older ones (a backfill, started when this FETCH found
            // the track from its start): the range is answered after it.
            if largest_location(&track).is_some_and(|l| start < l.group) {
                let mut probe = track.clone();
                let _ = tokio::time::timeout(wait, probe.wait_group(start)).await;
            }
        }
        match range.resolve(largest_location(&track)) {
            Ok((start, end)) => self.serve_fetch(id, track, start, end, descending).await,
            Err(reason) => {
                self.send(self.fetch_error(id, RequestFailure::InvalidRange, reason));
                let _done = self.fetch_guard17(id);
                self.lock().fetches.remove(&id);
            }
        }
    }

    /// Draft-20 "Fill Semantics": the objects of `track` before the
    /// subscription's start, as FILL_PARAMETERS (`fill`, the raw value: a
    /// parameter block) selects them (its LOCATION_FILTER, else the
    /// subscription's `filter`, evaluated as a FETCH's), on a fetch stream
    /// under the SUBSCRIBE's Request ID `id`. No stream when the range is
    /// empty or starts after the largest object.
    pub(super) fn fill(
        self: &Arc<Self>,
        id: u64,
        track: &TrackConsumer,
        fill: &Bytes,
        filter: SubscriptionFilter,
    ) -> Result<(), SessionError> {
        let draft = self.draft;
        let inner = crate::control::decode_parameters(&mut fill.clone(), draft)
            .map_err(|e| SessionError::protocol(format!("FILL_PARAMETERS: {e}")))?;
        let filter = crate::control::filter(&inner, draft)
            .map_err(|e| SessionError::protocol(format!("FILL_PARAMETERS: {e}")))?
            .unwrap_or(filter);
        let descending = inner.get_int(MessageParameter::GroupOrder.code())
            == Some(crate::common::group_order::DESCENDING as u64);
        let Some((start, end)) = largest_location(track).and_then(|largest| fetch_range(filter, largest))
        else {
            return Ok(());
        };
        // A relay serving the track from a later group asks upstream for
        // the older ones first (a backfill), waiting at most FILL_TIMEOUT
        // and never more than FETCH_WAIT.
        let wait = inner
            .get_int(MessageParameter::FillTimeout.code())
            .map_or(FETCH_WAIT, |ms| Duration::from_millis(ms).min(FETCH_WAIT));
        let mut track = track.clone();
        let this = self.clone();
        tokio::spawn(async move {
            if track.group(start.group).is_none() {
                track.request_from(start.group);
                let _ = tokio::time::timeout(wait, track.wait_group(start.group)).await;
            }
            let (objects, _) = cached_objects(&track, start, end, descending);
            drop(track);
            if let Err(err) = this.write_fetch_stream(id, objects, descending).await {
                tracing::debug!(?err, "fill stream ended early");
            }
        });
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
        let (objects, end_group_frames) = cached_objects(&track, start, end, descending);
        if objects.is_empty() && draft == Draft::D14 {
            // Draft-14: "If no Objects exist in the requested range, the
            // publisher returns FETCH_ERROR with code NO_OBJECTS" (later
            // drafts send FETCH_OK and an empty stream instead).
            let err = self.request_error(id, RequestFailure::NoObjects, "no objects in the range");
            self.send(ControlMessage::FetchError(err));
            self.lock().fetches.remove(&id);
            return;
        }
        let beyond = largest
            .is_none_or(|l| end.0 > l.group || (end.0 == l.group && end.1.is_none_or(|o| o > l.object)));
        let end_location = match draft.filtered_fetch() {
            // Draft-20 ({{message-fetch-ok}}: "the end of the range covered
            // by the FETCH response", inclusive as draft-22 says): what was
            // asked, or the largest object where that came first.
            true => match (largest, end.1) {
                (Some(l), _) if beyond => l,
                (_, Some(o)) => Location::new(end.0, o),
                (_, None) => Location::new(end.0, end_group_frames.unwrap_or(1).saturating_sub(1)),
            },
            // FETCH_OK's End Location up to draft-19: the largest object
            // plus one where the request reached past it; the requested
            // group with object 0 where a whole group was asked for and
            // sent to its end; otherwise what was requested. (End Object:
            // last + 1, 0 = the whole group, as in the request.)
            false => {
                let requested = Location::new(end.0, end.1.map_or(0, |o| o + 1));
                let last_group_whole = end.1.is_none() && end_group_frames.is_some_and(|n| n > 0);
                match (largest, end.1) {
                    (Some(_), None) if last_group_whole => requested,
                    (Some(l), _) if beyond => Location::new(l.group, l.object + 1),
                    _ => requested,
                }
            }
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
        if let Err(err) = self.write_fetch_stream(id, objects, descending).await {
            tracing::debug!(?err, "fetch stream ended early");
        }
        self.lock().fetches.remove(&id);
    }

    /// Writes `objects` on a new fetch stream for request `id`.
    async fn write_fetch_stream(
        &self,
        id: u64,
        objects: Vec<(u64, u64, Bytes)>,
        descending: bool,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let mut writer = self.open_data_stream().await?;
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
}

/// The objects of `track` cached now in `start ..= end` (`end.1`: the last
/// object of group `end.0`, `None` the whole group), groups in the order
/// asked, objects ascending within each; and how many objects group `end.0`
/// holds now, if it is there.
fn cached_objects(
    track: &TrackConsumer,
    start: Location,
    end: (u64, Option<u64>),
    descending: bool,
) -> (Vec<(u64, u64, Bytes)>, Option<u64>) {
    let mut objects = Vec::new();
    let mut end_group_frames = None;
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
                _ => break,
            }
        }
        if seq == end.0 {
            end_group_frames = Some(index);
        }
    }
    if descending {
        // Stable: objects stay ascending within their group.
        objects.sort_by_key(|(g, _, _)| std::cmp::Reverse(*g));
    }
    (objects, end_group_frames)
}

/// Draft-20 "Location Filters" evaluated for a FETCH (or a fill) against the
/// `largest` object: the range `(start, (end group, end object))`, never past
/// `largest` (an open end is `largest`); `None` when it starts after it.
pub(super) fn fetch_range(
    filter: SubscriptionFilter,
    largest: Location,
) -> Option<(Location, (u64, Option<u64>))> {
    use SubscriptionFilter as F;
    let to_largest = (largest.group, Some(largest.object));
    let (start, end) = match filter {
        F::Unfiltered => (Location::new(0, 0), to_largest),
        F::NextGroupStart => (Location::new(largest.group.checked_add(1)?, 0), to_largest),
        F::RelativeStart(n) => (
            Location::new((largest.group + 1).saturating_sub(n), 0),
            to_largest,
        ),
        F::LargestObject => (
            Location::new(largest.group, largest.object.checked_add(1)?),
            to_largest,
        ),
        F::AbsoluteStart(s) => (s, to_largest),
        F::AbsoluteRange { start, end_group } if end_group < largest.group => (start, (end_group, None)),
        F::AbsoluteRange { start, .. } => (start, to_largest),
        F::AbsoluteEnd { start, end } if end < largest => (start, (end.group, Some(end.object))),
        F::AbsoluteEnd { start, .. } => (start, to_largest),
    };
    (start <= largest && start.group <= end.0).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_ranges_stop_at_the_largest_object() {
        use SubscriptionFilter as F;
        let largest = Location::new(5, 2);
        let l = |g, o| Location::new(g, o);
        assert_eq!(fetch_range(F::Unfiltered, largest), Some((l(0, 0), (5, Some(2)))));
        assert_eq!(
            fetch_range(F::RelativeStart(1), largest),
            Some((l(5, 0), (5, Some(2))))
        );
        assert_eq!(
            fetch_range(F::RelativeStart(9), largest),
            Some((l(0, 0), (5, Some(2))))
        );
        assert_eq!(fetch_range(F::NextGroupStart, largest), None);
        assert_eq!(fetch_range(F::LargestObject, largest), None);
        assert_eq!(fetch_range(F::AbsoluteStart(l(6, 0)), largest), None);
        assert_eq!(
            fetch_range(
                F::AbsoluteRange {
                    start: l(1, 1),
                    end_group: 3
                },
                largest
            ),
            Some((l(1, 1), (3, None)))
        );
        assert_eq!(
            fetch_range(
                F::AbsoluteRange {
                    start: l(1, 1),
                    end_group: 7
                },
                largest
            ),
            Some((l(1, 1), (5, Some(2))))
        );
        assert_eq!(
            fetch_range(
                F::AbsoluteEnd {
                    start: l(1, 1),
                    end: l(5, 1)
                },
                largest
            ),
            Some((l(1, 1), (5, Some(1))))
        );
        assert_eq!(
            fetch_range(
                F::AbsoluteEnd {
                    start: l(1, 1),
                    end: l(5, 9)
                },
                largest
            ),
            Some((l(1, 1), (5, Some(2))))
        );
    }
}

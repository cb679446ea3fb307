//! Pushing tracks to a namespace subscriber with PUBLISH (drafts 14 to 16,
//! and SUBSCRIBE_TRACKS from draft-18).
//!
//! A relay "MUST forward PUBLISH_NAMESPACE or PUBLISH messages to all
//! matching subscribers" (draft-16 section "Relays"): a peer that sent
//! SUBSCRIBE_NAMESPACE (with Subscribe Options PUBLISH or BOTH from
//! draft-16) is offered every track our origin's broadcasts under its prefix
//! offer ([`moq_lite::model::BroadcastConsumer::offered_tracks`]: tracks a
//! publisher created or pushed to us, not those made on demand), each with a
//! PUBLISH. Once the peer answers PUBLISH_OK, the track is served exactly as a
//! SUBSCRIBE is, under the alias we chose; PUBLISH_ERROR / REQUEST_ERROR
//! leaves it alone. From draft-18 each PUBLISH opens its own request stream
//! and is answered with REQUEST_OK; draft-17's SUBSCRIBE_NAMESPACE option is
//! not served.

use super::*;

use super::publisher::largest_before;
use crate::control::Publish;

impl<T: Transport> Inner<T> {
    /// Offers every track under `prefix` to the peer, as broadcasts come
    /// and go, until aborted (UNSUBSCRIBE_NAMESPACE, the end of the
    /// SUBSCRIBE_NAMESPACE stream, or the session's).
    pub(super) async fn push_tracks(self: Arc<Self>, prefix: Path) {
        let Some(mut origin) = self.publish.clone() else {
            return;
        };
        let mut broadcasts: HashMap<Path, AbortHandle> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                announced = origin.announced() => {
                    let Some(announced) = announced else { break };
                    if let Some(task) = broadcasts.remove(&announced.path) {
                        task.abort();
                    }
                    let Some(broadcast) = announced.broadcast else { continue };
                    // Under the prefix, a namespace of one field at least,
                    // and not what this peer published to us.
                    if announced.path.strip_prefix(&prefix).is_none() || self.is_from_peer(&announced.path, &broadcast) {
                        continue;
                    }
                    let namespace = match TrackNamespace::from_path(&announced.path) {
                        Ok(namespace) if !namespace.0.is_empty() => namespace,
                        _ => continue,
                    };
                    let task = tasks.spawn(self.clone().push_broadcast(namespace, broadcast));
                    broadcasts.insert(announced.path, task);
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }

    /// Offers each track of one broadcast, until it ends.
    async fn push_broadcast(self: Arc<Self>, namespace: TrackNamespace, broadcast: BroadcastConsumer) {
        use futures::StreamExt;
        broadcast
            .offered_tracks()
            .for_each_concurrent(None, |track| self.clone().push_track(namespace.clone(), track))
            .await
    }

    /// PUBLISH for one track; on PUBLISH_OK it is served like a SUBSCRIBE.
    async fn push_track(self: Arc<Self>, namespace: TrackNamespace, track: TrackConsumer) {
        let draft = self.draft;
        let name = Bytes::from(track.info().name.clone().into_bytes());
        // The consumer starts on the latest group, sent whole (see
        // `largest_before`).
        let largest = largest_before(&track);
        let mut ids = None;
        let reply = self
            .request(|id, state| {
                let alias = state.next_alias;
                state.next_alias += 1;
                ids = Some((id, alias));
                let mut parameters = Parameters::new();
                if draft > Draft::D14 {
                    parameters.set_int(MessageParameter::Forward.code(), 1);
                    if let Some(l) = largest {
                        let _ = crate::control::set_location(
                            &mut parameters,
                            MessageParameter::LargestObject.code(),
                            l,
                            draft,
                        );
                    }
                }
                ControlMessage::Publish(Publish {
                    request_id: id,
                    required_request_id_delta: 0,
                    namespace: namespace.clone(),
                    name: name.clone(),
                    track_alias: alias,
                    group_order: crate::common::group_order::DESCENDING,
                    largest,
                    forward: true,
                    parameters,
                    track_extensions: KeyValuePairs::new(),
                })
            })
            .await;
        let (Some((id, alias)), Ok(reply)) = (ids, reply) else {
            return;
        };
        let ok = match reply {
            ControlMessage::PublishOk(ok) => ok,
            ControlMessage::RequestOk(ok) if draft.request_ok_for_publish() => ok.into(),
            ControlMessage::PublishError(err) | ControlMessage::RequestError(err) => {
                tracing::debug!(?namespace, code = err.error_code, reason = %err.reason, "PUBLISH refused");
                return;
            }
            other => {
                let _ = self.fatal.send(SessionError::protocol(format!(
                    "wrong reply to PUBLISH: {other:?}"
                )));
                return;
            }
        };
        let wanted = publisher::Wanted::of_publish_ok(&ok, draft);
        self.serve(id, alias, track, largest, false, wanted);
    }

    /// Whether `broadcast` at `path` is the one this peer published to us
    /// (which is never offered back to it).
    pub(super) fn is_from_peer(&self, path: &Path, broadcast: &BroadcastConsumer) -> bool {
        self.lock()
            .announced
            .get(path)
            .is_some_and(|a| a.broadcast.consume().is_same(broadcast))
    }
}

//! What the peer hears of our broadcasts: PUBLISH_NAMESPACE on the control
//! stream for each one (unless a SUBSCRIBE_NAMESPACE of its covers it), and
//! from draft-16 NAMESPACE / NAMESPACE_DONE on each SUBSCRIBE_NAMESPACE
//! stream the peer opens (with tracks pushed too when it asks, push.rs).

use super::*;

impl<T: Transport> Inner<T> {
    /// Announces our origin's broadcasts with PUBLISH_NAMESPACE.
    pub(super) async fn run_announce(self: Arc<Self>, mut origin: OriginConsumer) -> Result<(), StreamError> {
        let mut ids: HashMap<Path, (u64, TrackNamespace)> = HashMap::new();
        while let Some(announced) = origin.announced().await {
            match announced.broadcast {
                Some(broadcast) => {
                    // Do not echo back what this peer announced to us.
                    let echo = self.is_from_peer(&announced.path, &broadcast);
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
                    let this = self.clone();
                    tokio::spawn(async move {
                        let Ok(reply) = rx.await else { return };
                        tracing::debug!(%path, ?reply, "PUBLISH_NAMESPACE answered");
                        let (ControlMessage::RequestError(err) | ControlMessage::PublishNamespaceError(err)) =
                            reply
                        else {
                            return;
                        };
                        let error = RequestFailure::lite_error(this.draft, err.error_code);
                        tracing::warn!(%path, %error, reason = %err.reason, "the peer refused a broadcast");
                        this.refused.send_modify(|list| {
                            if list.len() < MAX_REFUSALS {
                                list.push((path, error));
                            }
                        });
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
        let (Some(origin), Ok(mut prefix)) = (self.publish.clone(), prefix) else {
            let err = self.request_error(m.request_id, RequestFailure::NotSupported, "nothing published");
            writer
                .encode(|b| ControlMessage::RequestError(err).encode(draft, b))
                .await?;
            return writer.finish();
        };
        // Registered before the answer, so that no broadcast announced once
        // the peer has it goes out as PUBLISH_NAMESPACE too.
        let namespaces = m.subscribe_options.wants_namespaces();
        let mut solicited = namespaces.then(|| Solicited::register(self.clone(), prefix.clone()));
        let ok = RequestOk {
            track_properties: Default::default(),
            request_id: m.request_id,
            parameters: Parameters::new(),
        };
        writer
            .encode(|b| ControlMessage::RequestOk(ok).encode(draft, b))
            .await?;
        // Subscribe Options PUBLISH or BOTH (draft-18: SUBSCRIBE_TRACKS):
        // offer the tracks too (push.rs), each PUBLISH on its own stream
        // from draft-17, for as long as this stream is open. Draft-17's
        // option is not served (its PUBLISH streams were never tested
        // against a peer); draft-18 made it a request of its own.
        let mut pusher = JoinSet::new();
        if m.subscribe_options.wants_publish()
            && (!draft.request_streams() || draft.split_namespace_requests())
        {
            pusher.spawn(self.clone().push_tracks(prefix.clone()));
        }
        let mut origin = origin;
        // Draft-19 "Graceful Request Stream Closure": a FIN is no longer a
        // cancel; only a reset (or STOP_SENDING) ends the subscription.
        let mut reading = true;
        loop {
            tokio::select! {
                // After the peer's FIN (draft-19), its STOP_SENDING cancels.
                _ = writer.closed(), if !reading => return Ok(()),
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
                        .is_some_and(|b| self.is_from_peer(&announced.path, b));
                    if echo {
                        continue;
                    }
                    let msg = match announced.broadcast {
                        Some(_) => ControlMessage::Namespace(Namespace { suffix }),
                        None => ControlMessage::NamespaceDone(NamespaceDone { suffix }),
                    };
                    writer.encode(|b| msg.encode(draft, b)).await?;
                }
                msg = reader.decode(|b| ControlMessage::decode(b, draft)), if reading => match msg? {
                    None if draft.fin_cancels() => return writer.finish(),
                    None => reading = false,
                    Some(Decoded::Message(ControlMessage::RequestUpdate(u))) if draft.request_streams() => {
                        self.peer_request(u.request_id).map_err(StreamError::Protocol)?;
                        // Draft-18 TRACK_NAMESPACE_PREFIX: the subscription's
                        // prefix is replaced, and what follows is relative to
                        // the new one.
                        let new_prefix = match u.parameters.get_bytes(MessageParameter::TrackNamespacePrefix.code()) {
                            Some(raw) if draft.split_namespace_requests() => Some(
                                TrackNamespace::decode(&mut raw.clone(), draft, crate::namespace::NamespaceRole::Prefix)
                                    .ok()
                                    .and_then(|ns| ns.to_path().ok())
                                    .ok_or_else(|| {
                                        StreamError::Protocol(SessionError::protocol("invalid TRACK_NAMESPACE_PREFIX"))
                                    })?,
                            ),
                            _ => None,
                        };
                        let ok = ControlMessage::RequestOk(RequestOk {
                            track_properties: Default::default(),
                            request_id: m.request_id,
                            parameters: Parameters::new(),
                        });
                        writer.encode(|b| ok.encode(draft, b)).await?;
                        if let (Some(new_prefix), Some(fresh)) = (new_prefix, self.publish.clone()) {
                            tracing::debug!(from = %prefix, to = %new_prefix, "namespace subscription re-rooted");
                            // Everything under the new prefix is told afresh.
                            prefix = new_prefix;
                            origin = fresh;
                            if solicited.is_some() {
                                solicited = Some(Solicited::register(self.clone(), prefix.clone()));
                            }
                        }
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

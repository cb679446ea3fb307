//! Draft-17's stream-per-request layout on top of the shared request
//! handling.
//!
//! The session logic ([`Inner::handle`] and everything it calls) is written
//! once, for a control stream: requests and responses are
//! [`ControlMessage`]s naming their Request ID, sent through the session's
//! outgoing channel. In drafts 14 to 16 that channel is the control stream.
//! In draft-17 [`Inner::route17`] reads it instead and routes each message:
//!
//! - a request we make (SUBSCRIBE, FETCH, PUBLISH, PUBLISH_NAMESPACE,
//!   TRACK_STATUS) opens a new bidirectional stream;
//! - a response (SUBSCRIBE_OK, REQUEST_OK, REQUEST_ERROR, PUBLISH_OK,
//!   FETCH_OK, PUBLISH_DONE) goes on its request's stream; the final one
//!   (REQUEST_ERROR, PUBLISH_DONE, TRACK_STATUS's REQUEST_OK) then ends our
//!   half with a FIN. FETCH_OK is not final (17 §Fetch State Management):
//!   the FETCH's stream is FINed once its data stream is done
//!   ([`Inner::fetch_guard17`]), and until then a cancellation is seen;
//! - UNSUBSCRIBE / FETCH_CANCEL / PUBLISH_NAMESPACE_DONE cancel the request
//!   (17 §Request Cancellation, §Publishing Namespaces): reset our half and
//!   stop the peer's;
//! - GOAWAY goes on our control stream; MAX_REQUEST_ID and REQUESTS_BLOCKED
//!   do not exist and are dropped.
//!
//! Messages read from a request stream get the stream's Request ID (draft-17
//! responses carry none) and go to [`Inner::handle`] like control messages.
//! How the peer ends its half (see [`Inner::peer_finished`] and
//! [`Inner::peer_cancelled`]): a RESET_STREAM or STOP_SENDING cancels the
//! request (UNSUBSCRIBE / FETCH_CANCEL / PUBLISH_NAMESPACE_DONE /
//! PUBLISH_DONE), and we reset what is left of ours; a FIN ends only what
//! the peer sends, except where it ends a subscription or one of our
//! requests for good, and then we FIN ours too. A stream task lives until
//! both halves are closed (so we never STOP_SENDING a peer that is done),
//! which is also when QUIC returns the stream's credit.
//!
//! A request with a Required Request ID Delta (17 §Required Request ID),
//! and a joining FETCH whose subscription was not read yet (§Joining
//! Fetches; requests on different streams may be read in any order), waits
//! until the required request was handled; see [`Inner::wait17`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use web_transport_trait::Session as Transport;

use super::deps17::{Dependency, RETRY_AFTER_LOAD, Waited, fresh17, request_error, required17};
use super::error::{DoneCode, SessionCode, transport_error};
use super::stream::{Reader, StreamError, Writer};
use super::{Control, Inner, SessionError};
use crate::control::MessageType as Mt;
use crate::control::{
    ControlMessage, Decoded, FetchCancel, PublishDone, PublishNamespaceDone, RequestError, Unsubscribe,
};

/// The stream error code we reset and stop request streams with: draft-18
/// applies the stream reset registry to request streams (CANCELLED, 0x1);
/// draft-17 names no code there and we keep the 0x0 it has always seen.
fn cancelled(draft: crate::Draft) -> u32 {
    match draft.data_plane_18() {
        true => 0x1,
        false => 0x0,
    }
}

/// What the router asks of a request stream.
pub(super) enum RouteCmd {
    /// Write this message.
    Msg(ControlMessage),
    /// End our half with a FIN.
    Finish,
    /// Reset our half and stop the peer's.
    Reset,
}

/// An open draft-17 request stream.
pub(super) struct Route {
    tx: mpsc::UnboundedSender<RouteCmd>,
    /// The type of the message that opened it.
    kind: Mt,
    /// A peer's FETCH: taken by the task serving it, dropped when that is
    /// done (see [`Inner::fetch_guard17`]).
    fetch_done: Option<oneshot::Sender<()>>,
}

/// The Request ID of a request message.
fn request_id(msg: &ControlMessage) -> Option<u64> {
    use ControlMessage as M;
    Some(match msg {
        M::Subscribe(m) | M::TrackStatus(m) => m.request_id,
        M::Fetch(m) => m.request_id,
        M::Publish(m) => m.request_id,
        M::PublishNamespace(m) => m.request_id,
        M::SubscribeNamespace(m) => m.request_id,
        _ => return None,
    })
}

/// The Request ID a response names (our session fills it in for every
/// draft; on the draft-17 wire it is implied by the stream).
fn response_id(msg: &ControlMessage) -> Option<u64> {
    use ControlMessage as M;
    Some(match msg {
        M::SubscribeOk(m) | M::TrackStatusOk(m) => m.request_id,
        M::RequestOk(m) | M::SubscribeNamespaceOk(m) => m.request_id,
        M::RequestError(m)
        | M::PublishError(m)
        | M::FetchError(m)
        | M::TrackStatusError(m)
        | M::PublishNamespaceError(m)
        | M::SubscribeNamespaceError(m) => m.request_id,
        M::PublishOk(m) => m.request_id,
        M::FetchOk(m) => m.request_id,
        M::PublishDone(m) => m.request_id,
        _ => return None,
    })
}

/// Gives a message read from request stream `id` that stream's Request ID.
fn set_stream_id(msg: &mut ControlMessage, id: u64) {
    use ControlMessage as M;
    match msg {
        M::SubscribeOk(m) | M::TrackStatusOk(m) => m.request_id = id,
        M::RequestOk(m) | M::SubscribeNamespaceOk(m) => m.request_id = id,
        M::RequestError(m)
        | M::PublishError(m)
        | M::FetchError(m)
        | M::TrackStatusError(m)
        | M::PublishNamespaceError(m)
        | M::SubscribeNamespaceError(m) => m.request_id = id,
        M::PublishOk(m) => m.request_id = id,
        M::FetchOk(m) => m.request_id = id,
        M::PublishDone(m) => m.request_id = id,
        M::RequestUpdate(m) => m.existing_request_id = id,
        _ => {}
    }
}

fn protocol(reason: &str) -> StreamError {
    StreamError::Protocol(SessionError::protocol(reason))
}

impl<T: Transport> Inner<T> {
    fn route(&self, id: u64, cmd: RouteCmd) {
        if let Some(route) = self.lock().routes.get(&id) {
            let _ = route.tx.send(cmd);
        }
    }

    /// Draft-17: routes the session's outgoing messages (see the module docs).
    pub(super) async fn route17(
        self: Arc<Self>,
        mut control: Writer<T::SendStream>,
        mut rx: mpsc::UnboundedReceiver<ControlMessage>,
    ) -> Result<(), StreamError> {
        use ControlMessage as M;
        while let Some(msg) = rx.recv().await {
            tracing::trace!(?msg, "request out");
            match msg {
                M::GoAway(mut goaway) => {
                    // Draft-18: name the first of the peer's requests we will
                    // not process (everything already read is processed).
                    if self.draft.goaway_request_id() {
                        goaway.request_id = Some(self.lock().ids.peer_next());
                    }
                    let msg = M::GoAway(goaway);
                    control.encode(|b| msg.encode(self.draft, b)).await?
                }
                M::MaxRequestId(_) | M::RequestsBlocked(_) => {}
                M::Unsubscribe(Unsubscribe { request_id }) | M::FetchCancel(FetchCancel { request_id }) => {
                    self.route(request_id, RouteCmd::Reset)
                }
                // 17 §Publishing Namespaces: "A PUBLISH_NAMESPACE is withdrawn
                // by cancelling the request", and §Request Cancellation
                // cancels with RESET_STREAM / STOP_SENDING.
                M::PublishNamespaceDone(m) => self.route(m.request_id, RouteCmd::Reset),
                // An update of a request travels on that request's stream.
                M::RequestUpdate(ref u) => self.route(u.existing_request_id, RouteCmd::Msg(msg)),
                msg => {
                    if let Some(id) = request_id(&msg) {
                        let (tx, cmds) = mpsc::unbounded_channel();
                        let kind = msg.message_type(self.draft).0;
                        let route = Route {
                            tx,
                            kind,
                            fetch_done: None,
                        };
                        self.lock().routes.insert(id, route);
                        tokio::spawn(self.clone().outgoing17(id, kind, msg, cmds));
                    } else if let Some(id) = response_id(&msg) {
                        let kind = self.lock().routes.get(&id).map(|r| r.kind);
                        // FETCH_OK is not final: the FETCH goes on until its
                        // data stream is done (see `request_stream17`).
                        let last = match &msg {
                            M::RequestError(_) | M::PublishDone(_) => true,
                            M::RequestOk(_) => kind == Some(Mt::TrackStatus),
                            _ => false,
                        };
                        self.route(id, RouteCmd::Msg(msg));
                        if last {
                            self.route(id, RouteCmd::Finish);
                        }
                    } else {
                        tracing::debug!(?msg, "no draft-17 route for a message");
                    }
                }
            }
        }
        Ok(())
    }

    /// A request of ours: its own bidirectional stream.
    async fn outgoing17(
        self: Arc<Self>,
        id: u64,
        kind: Mt,
        msg: ControlMessage,
        cmds: mpsc::UnboundedReceiver<RouteCmd>,
    ) {
        let this = self.clone();
        let result = async move {
            let (send, recv) = this
                .transport
                .open_bi()
                .await
                .map_err(|e| StreamError::Closed(transport_error(e)))?;
            let mut writer = Writer::new(send);
            writer.encode(|b| msg.encode(this.draft, b)).await?;
            this.request_stream17(id, kind, false, (writer, Reader::new(recv)), cmds, None)
                .await
        }
        .await;
        self.request_over(id);
        match result {
            Err(StreamError::Protocol(err)) => {
                let _ = self.fatal.send(err);
            }
            Err(StreamError::Closed(err)) => tracing::trace!(%err, id, "request stream closed"),
            Ok(()) => {}
        }
    }

    /// A request from the peer on a new bidirectional stream.
    pub(super) async fn incoming17(
        self: Arc<Self>,
        (mut writer, mut reader): Control<T>,
    ) -> Result<(), StreamError> {
        let msg = reader
            .decode_required(|b| ControlMessage::decode(b, self.draft))
            .await?;
        let Decoded::Message(msg) = msg else {
            return Err(protocol("unknown message opening a request stream"));
        };
        tracing::trace!(?msg, "request in");
        let Some(id) = request_id(&msg) else {
            return Err(protocol("a request stream must begin with a request"));
        };
        let required = required17(&msg, id);
        if let ControlMessage::SubscribeNamespace(m) = msg {
            // Answered on its stream by `subscribe_namespace_stream`, which
            // uses the Request ID itself.
            let error = match self.wait_required17(&required, id, &mut writer).await? {
                Dependency::Go => return self.subscribe_namespace_stream((writer, reader), m).await,
                Dependency::Refuse(error) => error,
                Dependency::Cancelled => {
                    writer.reset(cancelled(self.draft));
                    reader.stop(cancelled(self.draft));
                    return Ok(());
                }
            };
            writer
                .encode(|b| ControlMessage::RequestError(error).encode(self.draft, b))
                .await?;
            writer.finish()?;
            // Read the peer's half to its end: stopping it would cancel.
            while let Some(msg) = reader.decode(|b| ControlMessage::decode(b, self.draft)).await? {
                tracing::debug!(?msg, id, "message after REQUEST_ERROR ignored");
            }
            return Ok(());
        }
        let kind = msg.message_type(self.draft).0;
        let (tx, cmds) = mpsc::unbounded_channel();
        let (fetch_done, fetch_over) = match kind {
            Mt::Fetch => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        {
            let mut state = self.lock();
            if state.routes.contains_key(&id) {
                return Err(StreamError::Protocol(SessionError::new(
                    SessionCode::InvalidRequestId,
                    "duplicate request ID",
                )));
            }
            state.routes.insert(id, Route { tx, kind, fetch_done });
        }
        let result = async {
            match self.wait_required17(&required, id, &mut writer).await? {
                Dependency::Go => self.deliver17(id, msg).map_err(StreamError::Protocol)?,
                Dependency::Refuse(error) => self.send(ControlMessage::RequestError(error)),
                Dependency::Cancelled => {
                    writer.reset(cancelled(self.draft));
                    reader.stop(cancelled(self.draft));
                    return Ok(());
                }
            }
            self.request_stream17(id, kind, true, (writer, reader), cmds, fetch_over)
                .await
        }
        .await;
        self.request_over(id);
        result
    }

    /// Draft-17: held by the task serving the peer's FETCH `id` (`None` in
    /// other drafts). Once it is dropped, the fetch's data stream is done and
    /// the FETCH's request stream ends with a FIN after FETCH_OK (17 §Fetch
    /// State Management: the publisher "can destroy all FETCH state after
    /// closing the data stream with a FIN"); until then the stream stays
    /// open, so a cancellation from the peer is seen.
    pub(super) fn fetch_guard17(&self, id: u64) -> Option<oneshot::Sender<()>> {
        self.lock().routes.get_mut(&id)?.fetch_done.take()
    }

    /// Cleans up after request stream `id` is over.
    fn request_over(&self, id: u64) {
        let mut state = self.lock();
        state.routes.remove(&id);
        // A request of ours still waiting for its answer gets none.
        state.pending.remove(&id);
    }

    /// Runs one request stream until both halves are closed: writes what the
    /// router sends, hands what the peer sends to [`Inner::handle`].
    /// `fetch_over`: a peer's FETCH, resolved when its data stream is done.
    async fn request_stream17(
        self: &Arc<Self>,
        id: u64,
        kind: Mt,
        incoming: bool,
        (mut writer, mut reader): Control<T>,
        mut cmds: mpsc::UnboundedReceiver<RouteCmd>,
        mut fetch_over: Option<oneshot::Receiver<()>>,
    ) -> Result<(), StreamError> {
        use ControlMessage as M;
        let draft = self.draft;
        // Our half is closed (FIN sent).
        let mut sent_all = false;
        // The peer's half is open (no FIN read yet).
        let mut reading = true;
        // A peer's FETCH: FETCH_OK sent, and the data stream done.
        let (mut fetch_ok, mut fetch_done) = (false, false);
        // One of ours: the peer accepted it.
        let mut accepted = false;
        // A REQUEST_UPDATE waiting for the request it depends on: (its
        // Request ID, the message, the wait). Reading stops meanwhile, so
        // later messages keep their order.
        type Wait = Pin<Box<dyn Future<Output = Waited> + Send>>;
        let mut update: Option<(u64, ControlMessage, Wait)> = None;
        loop {
            if fetch_ok && fetch_done && !sent_all {
                writer.finish()?;
                sent_all = true;
            }
            if sent_all && !reading {
                return Ok(());
            }
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(RouteCmd::Msg(msg)) if !sent_all => {
                        writer.encode(|b| msg.encode(draft, b)).await?;
                        fetch_ok |= matches!(msg, M::FetchOk(_));
                    }
                    Some(RouteCmd::Msg(msg)) => {
                        tracing::debug!(?msg, id, "request stream finished: message dropped");
                    }
                    Some(RouteCmd::Finish) => {
                        writer.finish()?;
                        sent_all = true;
                    }
                    Some(RouteCmd::Reset) | None => {
                        writer.reset(cancelled(self.draft));
                        reader.stop(cancelled(self.draft));
                        return Ok(());
                    }
                },
                msg = reader.decode(|b| ControlMessage::decode(b, draft)), if reading && update.is_none() => match msg {
                    Ok(Some(Decoded::Message(mut msg))) => {
                        set_stream_id(&mut msg, id);
                        tracing::trace!(?msg, id, "request stream in");
                        if !incoming {
                            accepted |= matches!(
                                msg,
                                M::RequestOk(_) | M::SubscribeOk(_) | M::PublishOk(_) | M::FetchOk(_)
                            );
                        }
                        match msg {
                            M::RequestUpdate(ref u) => {
                                let uid = u.request_id;
                                let required = required17(&msg, uid);
                                match required {
                                    Some((required, _)) if fresh17(&self.lock(), uid) => {
                                        let wait = Box::pin(self.clone().wait17(required));
                                        update = Some((uid, msg, wait));
                                    }
                                    _ => self.deliver17(uid, msg).map_err(StreamError::Protocol)?,
                                }
                            }
                            msg => self.handle(msg).map_err(StreamError::Protocol)?,
                        }
                    }
                    Ok(Some(Decoded::Unknown { message_type, .. })) => {
                        return Err(protocol(&format!("unknown message {message_type:#x}")));
                    }
                    Ok(None) => {
                        reading = false;
                        if self.peer_finished(id, kind, incoming, accepted)? && !sent_all {
                            writer.finish()?;
                            sent_all = true;
                        }
                    }
                    Err(StreamError::Closed(_)) => {
                        // RESET_STREAM: the peer cancelled the request.
                        self.peer_cancelled(id, kind, incoming)?;
                        writer.reset(cancelled(self.draft));
                        return Ok(());
                    }
                    Err(err) => return Err(err),
                },
                _ = writer.closed() => {
                    // STOP_SENDING: the peer cancelled the request.
                    self.peer_cancelled(id, kind, incoming)?;
                    writer.reset(cancelled(self.draft));
                    if reading {
                        reader.stop(cancelled(self.draft));
                    }
                    return Ok(());
                }
                _ = async { fetch_over.as_mut().expect("checked").await }, if fetch_over.is_some() => {
                    fetch_over = None;
                    fetch_done = true;
                }
                waited = async { update.as_mut().expect("checked").2.as_mut().await }, if update.is_some() => {
                    let (uid, msg, _) = update.take().expect("checked");
                    if waited == Waited::Handled {
                        self.deliver17(uid, msg).map_err(StreamError::Protocol)?;
                    } else {
                        let writer = (!sent_all).then_some(&mut writer);
                        self.update_refused17(id, uid, waited, writer).await?;
                    }
                }
            }
        }
    }

    /// A REQUEST_UPDATE (`uid`) on request stream `id` whose required request
    /// did not come in time, or that could not wait: REQUEST_ERROR (on
    /// `writer`, unless our half is closed), and (17 §Updating
    /// Subscriptions: "When a subscription update is unsuccessful, the
    /// publisher MUST also terminate the subscription with PUBLISH_DONE with
    /// error code UPDATE_FAILED") the end of a subscription we serve.
    async fn update_refused17(
        self: &Arc<Self>,
        id: u64,
        uid: u64,
        waited: Waited,
        writer: Option<&mut Writer<T::SendStream>>,
    ) -> Result<(), StreamError> {
        tracing::debug!(id, uid, ?waited, "dependent REQUEST_UPDATE refused");
        self.use_request_id17(uid)?;
        let (code, retry_interval) = match waited {
            Waited::Busy => (request_error::EXCESSIVE_LOAD, RETRY_AFTER_LOAD),
            _ => (request_error::TIMEOUT, 0),
        };
        if let Some(writer) = writer {
            // Written here, not routed: the router takes a REQUEST_ERROR for
            // the answer to the request itself, and ends the stream.
            let error = ControlMessage::RequestError(RequestError {
                redirect: Default::default(),
                request_id: id,
                error_code: code,
                retry_interval,
                reason: "the required request did not arrive".to_string(),
            });
            writer.encode(|b| error.encode(self.draft, b)).await?;
        }
        // Subscriptions we serve are keyed by the peer's Request IDs.
        let served = self.lock().served.remove(&id);
        if let Some(served) = served {
            if let Some(task) = served.task {
                task.abort();
            }
            self.send(ControlMessage::PublishDone(PublishDone {
                request_id: id,
                status_code: DoneCode::UpdateFailed.code(),
                // 17 §PUBLISH_DONE: a publisher "unable to set Stream Count
                // to the exact number of streams opened" sets 2^62 - 1.
                stream_count: (1 << 62) - 1,
                reason: "update failed".to_string(),
            }));
        }
        Ok(())
    }

    /// The peer ended its half of request stream `id` with a FIN. Returns
    /// whether the request is over, so we end our half with a FIN too.
    fn peer_finished(
        self: &Arc<Self>,
        id: u64,
        kind: Mt,
        incoming: bool,
        accepted: bool,
    ) -> Result<bool, StreamError> {
        if !incoming {
            // A request of ours still waiting for its answer gets none.
            self.lock().pending.remove(&id);
        }
        match (incoming, kind) {
            // 17 §Subscriptions: "The publisher terminates a subscription ...
            // by sending PUBLISH_DONE and closing the stream"; one whose
            // PUBLISH_DONE never came ends as INTERNAL_ERROR.
            (true, Mt::Publish) | (false, Mt::Subscribe) => {
                self.handle(publish_done(id)).map_err(StreamError::Protocol)?;
                Ok(true)
            }
            // The peer's own requests: a FIN ends only what it sends. A
            // subscriber cancels a SUBSCRIBE or FETCH with STOP_SENDING (17
            // §Subscriptions, §Fetch State Management), and "A
            // PUBLISH_NAMESPACE is withdrawn by cancelling the request"
            // (§Publishing Namespaces), which §Request Cancellation does
            // "by abruptly terminating any directions of a stream that are
            // still open using RESET_STREAM / RESET_STREAM_AT or
            // STOP_SENDING"; unlike SUBSCRIBE_NAMESPACE, which "can be
            // cancelled by closing the stream with either a FIN or
            // RESET_STREAM" (§Subscribing to Namespaces), a FIN is not
            // named for it. So a namespace stays published after its
            // publisher's FIN; a RESET_STREAM or STOP_SENDING withdraws it
            // (`peer_cancelled`). Our half ends with our last response.
            (true, _) => Ok(false),
            // An accepted PUBLISH_NAMESPACE of ours stays until we withdraw
            // it (or the peer cancels it).
            (false, Mt::PublishNamespace) if accepted => Ok(false),
            // Any other request of ours: the peer sent its final response
            // (REQUEST_ERROR, or the last one), or none; it is over.
            (false, _) => Ok(true),
        }
    }

    /// The peer cancelled request `id` (RESET_STREAM or STOP_SENDING, 17
    /// §Request Cancellation).
    fn peer_cancelled(self: &Arc<Self>, id: u64, kind: Mt, incoming: bool) -> Result<(), StreamError> {
        let msg = match (incoming, kind) {
            // UNSUBSCRIBE.
            (true, Mt::Subscribe) => Some(ControlMessage::Unsubscribe(Unsubscribe { request_id: id })),
            (true, Mt::Fetch) => Some(ControlMessage::FetchCancel(FetchCancel { request_id: id })),
            (true, Mt::PublishNamespace) => {
                Some(ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
                    namespace: Default::default(),
                    request_id: id,
                }))
            }
            (true, Mt::Publish) | (false, Mt::Subscribe) => Some(publish_done(id)),
            _ => None,
        };
        if !incoming {
            // A request of ours still waiting for its answer gets none.
            self.lock().pending.remove(&id);
        }
        match msg {
            Some(msg) => self.handle(msg).map_err(StreamError::Protocol),
            None => Ok(()),
        }
    }
}

/// The PUBLISH_DONE for subscription `id` when none came.
fn publish_done(id: u64) -> ControlMessage {
    ControlMessage::PublishDone(PublishDone {
        request_id: id,
        status_code: DoneCode::InternalError.code(),
        stream_count: 0,
        reason: String::new(),
    })
}

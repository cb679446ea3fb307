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
//!   FETCH_OK, PUBLISH_DONE) goes on its request's stream, which the final
//!   one (REQUEST_ERROR, PUBLISH_DONE, FETCH_OK, TRACK_STATUS's REQUEST_OK)
//!   then ends with a FIN;
//! - UNSUBSCRIBE / FETCH_CANCEL reset the request's stream (and stop the
//!   peer's half), PUBLISH_NAMESPACE_DONE ends it with a FIN;
//! - GOAWAY goes on our control stream; MAX_REQUEST_ID and REQUESTS_BLOCKED
//!   do not exist and are dropped.
//!
//! Messages read from a request stream get the stream's Request ID (draft-17
//! responses carry none) and go to [`Inner::handle`] like control messages;
//! the peer ending its half of a stream reads as the matching
//! UNSUBSCRIBE / FETCH_CANCEL / PUBLISH_NAMESPACE_DONE / PUBLISH_DONE.

use std::sync::Arc;

use tokio::sync::mpsc;
use web_transport_trait::Session as Transport;

use super::error::transport_error;
use super::stream::{Reader, StreamError, Writer};
use super::{Control, Inner, SessionError};
use crate::Draft;
use crate::control::{ControlMessage, Decoded, FetchCancel, PublishDone, PublishNamespaceDone, Unsubscribe};

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
    kind: u64,
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
                M::GoAway(_) => control.encode(|b| msg.encode(Draft::D17, b)).await?,
                M::MaxRequestId(_) | M::RequestsBlocked(_) => {}
                M::Unsubscribe(Unsubscribe { request_id }) | M::FetchCancel(FetchCancel { request_id }) => {
                    self.route(request_id, RouteCmd::Reset)
                }
                M::PublishNamespaceDone(m) => self.route(m.request_id, RouteCmd::Finish),
                msg => {
                    if let Some(id) = request_id(&msg) {
                        let (tx, cmds) = mpsc::unbounded_channel();
                        let kind = msg.message_type(Draft::D17).0;
                        self.lock().routes.insert(id, Route { tx, kind });
                        tokio::spawn(self.clone().outgoing17(id, kind, msg, cmds));
                    } else if let Some(id) = response_id(&msg) {
                        let kind = self.lock().routes.get(&id).map(|r| r.kind);
                        let last = match &msg {
                            M::RequestError(_) | M::PublishDone(_) | M::FetchOk(_) => true,
                            M::RequestOk(_) => kind == Some(crate::control::message_type::TRACK_STATUS),
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
        kind: u64,
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
            writer.encode(|b| msg.encode(Draft::D17, b)).await?;
            this.request_stream17(id, kind, false, (writer, Reader::new(recv)), cmds)
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
        (writer, mut reader): Control<T>,
    ) -> Result<(), StreamError> {
        let msg = reader
            .decode_required(|b| ControlMessage::decode(b, Draft::D17))
            .await?;
        let Decoded::Message(msg) = msg else {
            return Err(protocol("unknown message opening a request stream"));
        };
        tracing::trace!(?msg, "request in");
        let msg = match msg {
            ControlMessage::SubscribeNamespace(m) => {
                return self.subscribe_namespace_stream((writer, reader), m).await;
            }
            msg => msg,
        };
        let Some(id) = request_id(&msg) else {
            return Err(protocol("a request stream must begin with a request"));
        };
        let kind = msg.message_type(Draft::D17).0;
        let (tx, cmds) = mpsc::unbounded_channel();
        {
            let mut state = self.lock();
            if state.routes.contains_key(&id) {
                return Err(StreamError::Protocol(SessionError::new(
                    super::code::INVALID_REQUEST_ID,
                    "duplicate request ID",
                )));
            }
            state.routes.insert(id, Route { tx, kind });
        }
        let result = match self.handle(msg) {
            Ok(()) => {
                self.request_stream17(id, kind, true, (writer, reader), cmds)
                    .await
            }
            Err(err) => Err(StreamError::Protocol(err)),
        };
        self.request_over(id);
        result
    }

    /// Cleans up after request stream `id` is over.
    fn request_over(&self, id: u64) {
        let mut state = self.lock();
        state.routes.remove(&id);
        // A request of ours still waiting for its answer gets none.
        state.pending.remove(&id);
    }

    /// Runs one request stream: writes what the router sends, hands what the
    /// peer sends to [`Inner::handle`].
    async fn request_stream17(
        self: &Arc<Self>,
        id: u64,
        kind: u64,
        incoming: bool,
        (mut writer, mut reader): Control<T>,
        mut cmds: mpsc::UnboundedReceiver<RouteCmd>,
    ) -> Result<(), StreamError> {
        let draft = Draft::D17;
        let mut reading = true;
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(RouteCmd::Msg(msg)) => writer.encode(|b| msg.encode(draft, b)).await?,
                    Some(RouteCmd::Finish) => {
                        writer.finish()?;
                        return Ok(());
                    }
                    Some(RouteCmd::Reset) | None => {
                        writer.reset(0x0);
                        reader.stop(0x0);
                        return Ok(());
                    }
                },
                msg = reader.decode(|b| ControlMessage::decode(b, draft)), if reading => match msg {
                    Ok(Some(Decoded::Message(mut msg))) => {
                        set_stream_id(&mut msg, id);
                        tracing::trace!(?msg, id, "request stream in");
                        self.handle(msg).map_err(StreamError::Protocol)?;
                    }
                    Ok(Some(Decoded::Unknown { message_type, .. })) => {
                        return Err(protocol(&format!("unknown message {message_type:#x}")));
                    }
                    Ok(None) => {
                        reading = false;
                        self.peer_ended(id, kind, incoming, false)?;
                    }
                    Err(StreamError::Closed(_)) => {
                        reading = false;
                        self.peer_ended(id, kind, incoming, true)?;
                    }
                    Err(err) => return Err(err),
                },
                _ = writer.closed() => {
                    // STOP_SENDING: the peer cancelled the request.
                    self.peer_ended(id, kind, incoming, true)?;
                    return Ok(());
                }
            }
        }
    }

    /// The peer ended its half of request stream `id` (with a FIN, or with a
    /// reset / STOP_SENDING when `abrupt`).
    fn peer_ended(
        self: &Arc<Self>,
        id: u64,
        kind: u64,
        incoming: bool,
        abrupt: bool,
    ) -> Result<(), StreamError> {
        use crate::control::message_type as t;
        let msg = match (incoming, kind) {
            // UNSUBSCRIBE (a FIN alone does not end a subscription).
            (true, t::SUBSCRIBE) if abrupt => ControlMessage::Unsubscribe(Unsubscribe { request_id: id }),
            (true, t::FETCH) if abrupt => ControlMessage::FetchCancel(FetchCancel { request_id: id }),
            (true, t::PUBLISH_NAMESPACE) => ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
                namespace: Default::default(),
                request_id: id,
            }),
            // The end of a subscription whose PUBLISH_DONE never came.
            (true, t::PUBLISH) | (false, t::SUBSCRIBE) => ControlMessage::PublishDone(PublishDone {
                request_id: id,
                status_code: super::done_code::INTERNAL_ERROR,
                stream_count: 0,
                reason: String::new(),
            }),
            _ => return Ok(()),
        };
        // A request of ours still waiting for its answer gets none.
        if !incoming {
            self.lock().pending.remove(&id);
        }
        self.handle(msg).map_err(StreamError::Protocol)
    }
}

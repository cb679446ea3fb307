//! The IETF moq-transport session (drafts 14 to 17), mapped onto the
//! moq-lite model.
//!
//! - Namespace tuple <-> broadcast path, track name <-> track, group <->
//!   group, objects 0, 1, 2... of sub-group 0 <-> frames. Everything we send
//!   is in sub-group 0; objects received in another sub-group are dropped
//!   and counted ([`Session::dropped_objects`]), never an error.
//! - One bidirectional control stream: CLIENT_SETUP / SERVER_SETUP (with
//!   MAX_REQUEST_ID), then control messages. Request IDs: the client's are
//!   even, the server's odd, each used once and below the Maximum Request
//!   ID granted (we grant more as they are used). Drafts 14 and 15 require
//!   them in order; from draft-16 requests on separate streams may be read
//!   out of order, so duplicates are found in the set of IDs seen above a
//!   low-water mark. REQUEST_UPDATE is answered with REQUEST_OK from
//!   draft-16; draft-17's PUBLISH_BLOCKED is logged.
//! - Publisher half (serving a [`moq_lite::model::OriginConsumer`]): every
//!   broadcast is announced with PUBLISH_NAMESPACE (and withdrawn with
//!   PUBLISH_NAMESPACE_DONE); SUBSCRIBE is answered from the track cache
//!   with every filter type; FETCH (standalone, relative and absolute
//!   joining) from the cache; TRACK_STATUS answered; SUBSCRIBE_NAMESPACE
//!   accepted (draft-16: on its own bidirectional stream, with NAMESPACE /
//!   NAMESPACE_DONE for the matching broadcasts).
//! - Subscriber half (filling a [`moq_lite::model::OriginProducer`]): a
//!   peer's PUBLISH_NAMESPACE publishes a broadcast whose tracks are
//!   subscribed on demand; PUBLISH (publisher-initiated) is accepted;
//!   datagrams become single-frame groups.
//!
//! Draft-17 (new varint, SETUP on a unidirectional control stream of type
//! 0x2F00, one bidirectional stream per request) runs the same request
//! handling: see the `requests` module for how messages are routed.

mod error;
mod requests;
pub mod stream;

pub use error::{RequestFailure, SessionError, code, done_code};

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use moq_lite::model::{
    BroadcastProducer, BroadcastRequests, GroupConsumer, OriginConsumer, OriginProducer, Path, Track,
    TrackConsumer, TrackProducer,
};
use moq_lite::{SessionConfig, SessionStats};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use web_transport_trait::Session as Transport;

use crate::control::{
    ClientSetup, ControlMessage, Decoded, Fetch, FetchOk, FetchType, GoAway, MaxRequestId, Namespace,
    NamespaceDone, Parameters, PublishDone, PublishNamespace, PublishNamespaceDone, PublishOk, RequestError,
    RequestOk, RequestsBlocked, ServerSetup, Subscribe, SubscribeNamespace, SubscribeOk, Unsubscribe, param,
    setup_param,
};
use crate::data::{
    FetchHeader, FetchItem, FetchObject, FetchWriter, ObjectContent, ObjectDatagram, ObjectStatus,
    StreamHeader, SubgroupHeader, SubgroupId, SubgroupObject, SubgroupReader, SubgroupWriter,
};
use crate::{Draft, KeyValuePairs, Location, SubscriptionFilter, TrackNamespace};
use error::transport_error;
use requests::Route;
use stream::{Reader, StreamError, Writer};

/// Request IDs granted to the peer at a time.
const REQUEST_WINDOW: u64 = 1024;

/// Drafts 16+: how far (in IDs) a peer request ID may be ahead of the
/// lowest one not yet seen. Draft-16 grants at most [`REQUEST_WINDOW`]
/// beyond it anyway; draft-17 grants no maximum, so this bounds the IDs
/// remembered for duplicate detection.
const MAX_REQUEST_SPAN: u64 = 16 * REQUEST_WINDOW;

/// How long a data stream waits for its track alias (its SUBSCRIBE_OK may
/// still be in flight on the control stream).
const ALIAS_WAIT: Duration = Duration::from_secs(2);

/// How long a subscription's track stays writable after PUBLISH_DONE: the
/// last data streams may arrive after it.
const DONE_GRACE: Duration = Duration::from_millis(500);

/// The priority we publish with.
const PUBLISHER_PRIORITY: u8 = 128;

/// The implementation name sent in SETUP.
const IMPLEMENTATION: &str = "moq-rs moq-transport-compat";

type Control<T> = (
    Writer<<T as Transport>::SendStream>,
    Reader<<T as Transport>::RecvStream>,
);

/// Closes the transport with a code and a reason.
type CloseFn = Arc<dyn Fn(u64, &str) + Send + Sync>;

/// A running IETF moq-transport session. Dropping it closes the connection.
pub struct Session {
    draft: Draft,
    closed: watch::Receiver<Option<SessionError>>,
    close: CloseFn,
    ctl: mpsc::UnboundedSender<ControlMessage>,
    dropped: Arc<AtomicU64>,
    stats: Arc<SessionStats>,
    task: AbortHandle,
}

impl Session {
    /// Starts a client session of `draft` over `transport` (opens the control
    /// stream, sends CLIENT_SETUP).
    pub async fn connect<T: Transport>(
        transport: T,
        draft: Draft,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if draft == Draft::D17 {
            let control = setup17(&transport).await?;
            return Ok(Self::start(transport, draft, true, control, u64::MAX, config));
        }
        let (send, recv) = transport.open_bi().await.map_err(transport_error)?;
        let mut control: Control<T> = (Writer::new(send), Reader::new(recv));
        let setup = ClientSetup {
            versions: draft.setup_code().into_iter().collect(),
            parameters: setup_params(),
        };
        control
            .0
            .encode(|b| ControlMessage::ClientSetup(setup).encode(draft, b))
            .await
            .map_err(lite)?;
        let reply = control
            .1
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .map_err(lite)?;
        let Decoded::Message(ControlMessage::ServerSetup(reply)) = reply else {
            return Err(moq_lite::Error::ProtocolViolation);
        };
        Self::connected(transport, draft, control, reply, config)
    }

    /// After a SETUP-path exchange that picked draft-14 (see [`crate::connect`]).
    pub(crate) fn connected<T: Transport>(
        transport: T,
        draft: Draft,
        control: Control<T>,
        reply: ServerSetup,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if draft == Draft::D14 && Some(reply.version) != draft.setup_code() {
            transport.close(code::VERSION_NEGOTIATION_FAILED as u32, "version");
            return Err(moq_lite::Error::Version);
        }
        let peer_max = reply.parameters.get_int(setup_param::MAX_REQUEST_ID).unwrap_or(0);
        Ok(Self::start(transport, draft, true, control, peer_max, config))
    }

    /// Starts a server session of `draft` over an accepted `transport` (waits
    /// for the control stream and its CLIENT_SETUP).
    pub async fn accept<T: Transport>(
        transport: T,
        draft: Draft,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if draft == Draft::D17 {
            let control = setup17(&transport).await?;
            return Ok(Self::start(transport, draft, false, control, u64::MAX, config));
        }
        let (send, recv) = transport.accept_bi().await.map_err(transport_error)?;
        let mut control: Control<T> = (Writer::new(send), Reader::new(recv));
        let setup = control
            .1
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .map_err(lite)?;
        let Decoded::Message(ControlMessage::ClientSetup(setup)) = setup else {
            transport.close(code::PROTOCOL_VIOLATION as u32, "expected CLIENT_SETUP");
            return Err(moq_lite::Error::ProtocolViolation);
        };
        Self::accepted(transport, draft, control, setup, config).await
    }

    /// After CLIENT_SETUP was read (here, or on the SETUP path).
    pub(crate) async fn accepted<T: Transport>(
        transport: T,
        draft: Draft,
        mut control: Control<T>,
        setup: ClientSetup,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if let Some(code) = draft.setup_code() {
            if !setup.versions.contains(&code) {
                transport.close(code::VERSION_NEGOTIATION_FAILED as u32, "no common version");
                return Err(moq_lite::Error::Version);
            }
        }
        let reply = ServerSetup {
            version: draft.setup_code().unwrap_or(0),
            parameters: setup_params(),
        };
        control
            .0
            .encode(|b| ControlMessage::ServerSetup(reply).encode(draft, b))
            .await
            .map_err(lite)?;
        let peer_max = setup.parameters.get_int(setup_param::MAX_REQUEST_ID).unwrap_or(0);
        Ok(Self::start(transport, draft, false, control, peer_max, config))
    }

    fn start<T: Transport>(
        transport: T,
        draft: Draft,
        client: bool,
        control: Control<T>,
        peer_max: u64,
        config: SessionConfig,
    ) -> Session {
        tracing::debug!(%draft, client, "IETF session established");
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (fatal, fatal_rx) = mpsc::unbounded_channel();
        let (peer_max, _) = watch::channel(peer_max);
        let dropped = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(SessionStats::default());
        let inner = Arc::new(Inner {
            transport: transport.clone(),
            draft,
            client,
            ctl: ctl.clone(),
            fatal,
            state: Mutex::new(State {
                next_request: if client { 0 } else { 1 },
                peer_next: if client { 1 } else { 0 },
                peer_low: if client { 1 } else { 0 },
                // Draft-17 has no MAX_REQUEST_ID: stream limits bound requests.
                our_max: if draft == Draft::D17 {
                    u64::MAX
                } else {
                    REQUEST_WINDOW
                },
                next_alias: 1,
                ..Default::default()
            }),
            peer_max,
            alias_added: Notify::new(),
            publish: config.publish,
            origin: config.subscribe,
            dropped: dropped.clone(),
            stats: stats.clone(),
        });
        let (tx, rx) = watch::channel(None);
        let runner = transport.clone();
        let task = tokio::spawn(async move {
            let err = run(inner.clone(), control, ctl_rx, fatal_rx).await;
            inner.shutdown();
            tracing::debug!(%err, "IETF session closed");
            runner.close(err.code as u32, &err.reason);
            let _ = tx.send(Some(err));
        });
        Session {
            draft,
            closed: rx,
            close: Arc::new(move |code, reason| transport.close(code as u32, reason)),
            ctl,
            dropped,
            stats,
            task: task.abort_handle(),
        }
    }

    /// The negotiated draft.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// Objects received in sub-groups other than 0, dropped.
    pub fn dropped_objects(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// What the session carried (frames, bytes and groups each way, the
    /// subscriptions the peer holds on us), as moq-lite sessions count it.
    pub fn stats(&self) -> Arc<SessionStats> {
        self.stats.clone()
    }

    /// Sends GOAWAY: the peer should move to `uri` (empty: reconnect here).
    pub fn goaway(&self, uri: impl Into<String>) {
        let _ = self.ctl.send(ControlMessage::GoAway(GoAway {
            uri: uri.into(),
            timeout: 0,
        }));
    }

    /// Closes the session with `err`.
    pub fn close(&self, err: moq_lite::Error) {
        let err = SessionError::from_lite(err);
        (self.close)(err.code, &err.reason);
    }

    /// Waits until the session ends, and says why.
    pub async fn closed(&self) -> moq_lite::Error {
        self.closed_ietf().await.error
    }

    /// Waits until the session ends, with the draft's termination code.
    pub async fn closed_ietf(&self) -> SessionError {
        let mut closed = self.closed.clone();
        match closed.wait_for(Option::is_some).await {
            Ok(err) => err.clone().unwrap_or(SessionError::new(code::NO_ERROR, "closed")),
            Err(_) => SessionError::new(code::NO_ERROR, "closed"),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        (self.close)(code::NO_ERROR, "closed");
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ietf::Session")
            .field("draft", &self.draft)
            .finish()
    }
}

/// Draft-17 session setup: each side opens its control stream (a
/// unidirectional stream whose type is SETUP, 0x2F00) and writes SETUP; the
/// peer's control stream is the first unidirectional stream it opens.
async fn setup17<T: Transport>(transport: &T) -> Result<Control<T>, moq_lite::Error> {
    let draft = Draft::D17;
    let send = transport.open_uni().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let mut options = KeyValuePairs::new();
    options.set_bytes(
        setup_param::IMPLEMENTATION,
        Bytes::from_static(IMPLEMENTATION.as_bytes()),
    );
    let setup = ControlMessage::Setup(crate::control::Setup { options });
    writer.encode(|b| setup.encode(draft, b)).await.map_err(lite)?;
    let recv = transport.accept_uni().await.map_err(transport_error)?;
    let mut reader = Reader::new(recv);
    let msg = reader
        .decode_required(|b| ControlMessage::decode(b, draft))
        .await
        .map_err(lite)?;
    match msg {
        Decoded::Message(ControlMessage::Setup(_)) => Ok((writer, reader)),
        _ => {
            transport.close(code::PROTOCOL_VIOLATION as u32, "expected SETUP");
            Err(moq_lite::Error::ProtocolViolation)
        }
    }
}

fn lite(err: StreamError) -> moq_lite::Error {
    match err {
        StreamError::Closed(e) => e,
        StreamError::Protocol(e) => e.error,
    }
}

fn setup_params() -> KeyValuePairs {
    let mut p = KeyValuePairs::new();
    p.set_int(setup_param::MAX_REQUEST_ID, REQUEST_WINDOW);
    p.set_bytes(
        setup_param::IMPLEMENTATION,
        Bytes::from_static(IMPLEMENTATION.as_bytes()),
    );
    p
}

/// The session's shared state.
struct Inner<T: Transport> {
    transport: T,
    draft: Draft,
    client: bool,
    ctl: mpsc::UnboundedSender<ControlMessage>,
    fatal: mpsc::UnboundedSender<SessionError>,
    state: Mutex<State>,
    /// The peer's Maximum Request ID for our requests.
    peer_max: watch::Sender<u64>,
    alias_added: Notify,
    publish: Option<OriginConsumer>,
    origin: Option<OriginProducer>,
    dropped: Arc<AtomicU64>,
    stats: Arc<SessionStats>,
}

#[derive(Default)]
struct State {
    next_request: u64,
    blocked_sent: bool,
    peer_next: u64,
    /// Drafts 16+: every peer request ID below this was used.
    peer_low: u64,
    /// Drafts 16+: the peer request IDs used at or above `peer_low`.
    peer_seen: BTreeSet<u64>,
    our_max: u64,
    /// Our requests awaiting their response.
    pending: HashMap<u64, oneshot::Sender<ControlMessage>>,
    /// Draft-17: the request stream of each open request, by Request ID.
    routes: HashMap<u64, Route>,
    // Publisher half.
    served: HashMap<u64, Served>,
    fetches: HashMap<u64, AbortHandle>,
    next_alias: u64,
    // Subscriber half.
    subs: HashMap<u64, Sub>,
    aliases: HashMap<u64, TrackProducer>,
    announced: HashMap<Path, Announced>,
}

struct Served {
    /// Counts the subscription in the session's stats while it exists.
    _counted: CountedSubscription,
    task: Option<AbortHandle>,
    track: TrackConsumer,
    largest: Option<Location>,
    end: watch::Sender<Option<u64>>,
}

/// One subscription the peer holds on us, in [`SessionStats`], for as long
/// as this lives.
struct CountedSubscription(Arc<SessionStats>);

impl CountedSubscription {
    fn new(stats: &Arc<SessionStats>) -> Self {
        stats.subscription_started();
        CountedSubscription(stats.clone())
    }
}

impl Drop for CountedSubscription {
    fn drop(&mut self) {
        self.0.subscription_ended();
    }
}

struct Sub {
    alias: Option<u64>,
    done: Option<oneshot::Sender<()>>,
}

struct Announced {
    broadcast: BroadcastProducer,
    task: AbortHandle,
    request_id: Option<u64>,
}

impl<T: Transport> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, msg: ControlMessage) {
        let _ = self.ctl.send(msg);
    }

    fn shutdown(&self) {
        let mut state = self.lock();
        for (_, served) in state.served.drain() {
            if let Some(task) = served.task {
                task.abort();
            }
        }
        for (_, fetch) in state.fetches.drain() {
            fetch.abort();
        }
        for (_, announced) in state.announced.drain() {
            announced.task.abort();
        }
        state.aliases.clear();
        state.subs.clear();
        state.pending.clear();
        state.routes.clear();
    }

    /// Checks a request ID the peer used, and grants more when needed.
    fn peer_request(&self, id: u64) -> Result<(), SessionError> {
        let mut state = self.lock();
        let invalid = |reason: &str| Err(SessionError::new(code::INVALID_REQUEST_ID, reason));
        if id % 2 != state.peer_next % 2 {
            return invalid("request ID of the wrong parity");
        }
        if self.draft < Draft::D16 {
            // One control stream: requests arrive in order.
            if id < state.peer_next {
                return invalid("request ID not increasing");
            }
        } else {
            // From draft-16 requests also arrive on their own streams
            // (SUBSCRIBE_NAMESPACE in 16, every request in 17), so they may be
            // read out of order: duplicates are found in the IDs seen above
            // the low-water mark instead.
            if id < state.peer_low || state.peer_seen.contains(&id) {
                return invalid("duplicate request ID");
            }
            // Draft-17 grants no Maximum Request ID: bound the gap the
            // set may cover (a peer that skipped an ID for good).
            if id - state.peer_low >= MAX_REQUEST_SPAN {
                return invalid("request ID too far ahead of the missing ones");
            }
        }
        if id >= state.our_max {
            return Err(SessionError::new(
                code::TOO_MANY_REQUESTS,
                "request ID over the maximum",
            ));
        }
        state.peer_next = state.peer_next.max(id + 2);
        let granted_from = match self.draft {
            Draft::D14 | Draft::D15 => id,
            _ => {
                state.peer_seen.insert(id);
                loop {
                    let low = state.peer_low;
                    if !state.peer_seen.remove(&low) {
                        break;
                    }
                    state.peer_low = low + 2;
                }
                // Grant from the low-water mark, so the IDs seen above it
                // (at most half the window) bound the set.
                state.peer_low
            }
        };
        if state.our_max != u64::MAX && state.our_max.saturating_sub(granted_from) <= REQUEST_WINDOW / 2 {
            state.our_max = granted_from + REQUEST_WINDOW;
            self.send(ControlMessage::MaxRequestId(MaxRequestId {
                request_id: state.our_max,
            }));
        }
        Ok(())
    }

    /// Our next request ID, waiting for the peer's MAX_REQUEST_ID if blocked.
    async fn next_request(&self) -> Result<u64, moq_lite::Error> {
        let mut max = self.peer_max.subscribe();
        loop {
            {
                let mut state = self.lock();
                let limit = *max.borrow_and_update();
                if state.next_request < limit {
                    let id = state.next_request;
                    state.next_request += 2;
                    state.blocked_sent = false;
                    return Ok(id);
                }
                if !state.blocked_sent {
                    state.blocked_sent = true;
                    self.send(ControlMessage::RequestsBlocked(RequestsBlocked {
                        max_request_id: limit,
                    }));
                }
            }
            max.changed().await.map_err(|_| moq_lite::Error::Closed)?;
        }
    }

    /// Sends a request and waits for its response.
    async fn request(
        &self,
        build: impl FnOnce(u64) -> ControlMessage,
    ) -> Result<ControlMessage, moq_lite::Error> {
        let id = self.next_request().await?;
        let (tx, rx) = oneshot::channel();
        self.lock().pending.insert(id, tx);
        self.send(build(id));
        rx.await.map_err(|_| moq_lite::Error::Closed)
    }

    fn request_error(&self, request_id: u64, failure: RequestFailure, reason: &str) -> RequestError {
        RequestError {
            request_id,
            error_code: failure.code(self.draft),
            retry_interval: 0,
            reason: reason.to_string(),
        }
    }

    /// One control message from the peer.
    fn handle(self: &Arc<Self>, msg: ControlMessage) -> Result<(), SessionError> {
        use ControlMessage as M;
        let draft = self.draft;
        match msg {
            M::ClientSetup(_) | M::ServerSetup(_) | M::Setup(_) => {
                return Err(SessionError::protocol("SETUP after setup"));
            }
            M::GoAway(m) => tracing::info!(uri = %m.uri, "peer sent GOAWAY"),
            M::MaxRequestId(m) => {
                if m.request_id < *self.peer_max.borrow() {
                    return Err(SessionError::protocol("MAX_REQUEST_ID decreased"));
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
                    let _ = done.send(());
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
                // Drafts 14 and 15: every namespace is announced anyway.
                let ok = RequestOk {
                    request_id: m.request_id,
                    parameters: Parameters::new(),
                };
                self.send(match draft {
                    Draft::D14 => M::SubscribeNamespaceOk(ok),
                    _ => M::RequestOk(ok),
                });
            }
            M::UnsubscribeNamespace(_) => {}
            M::PublishBlocked(m) => {
                // Draft-17, on a SUBSCRIBE_NAMESPACE stream of ours: the peer
                // will not PUBLISH this track. Our subscriber asks for
                // NAMESPACE only and subscribes to tracks on demand, so
                // there is nothing to fall back to.
                tracing::debug!(suffix = ?m.suffix, name = ?m.name, "peer is blocked from publishing a track");
            }
            M::Namespace(_) | M::NamespaceDone(_) => {
                return Err(SessionError::protocol(
                    "message not allowed on the control stream",
                ));
            }
        }
        Ok(())
    }

    /// REQUEST_UPDATE (SUBSCRIBE_UPDATE in drafts 14 and 15). Drafts 16+
    /// answer it with REQUEST_OK (draft-17: on the updated request's stream,
    /// whose Request ID is `existing_request_id`).
    fn on_request_update(&self, m: crate::control::RequestUpdate) -> Result<(), SessionError> {
        let draft = self.draft;
        if draft >= Draft::D16 {
            // It consumes a Request ID of its own.
            self.peer_request(m.request_id)?;
        }
        let existing = match draft {
            Draft::D14 => m.request_id,
            _ => m.existing_request_id,
        };
        // The new end group; `None`: unchanged.
        let end = match draft {
            Draft::D14 => Some(m.end_group),
            _ => match crate::control::filter(&m.parameters, draft)
                .map_err(|e| SessionError::protocol(e.to_string()))?
            {
                Some(SubscriptionFilter::AbsoluteRange { end_group, .. }) => Some(Some(end_group)),
                Some(_) => Some(None),
                None => None,
            },
        };
        if let (Some(end), Some(served)) = (end, self.lock().served.get(&existing)) {
            served.end.send_replace(end);
        }
        tracing::debug!(existing, ?end, "request updated");
        let id = match draft {
            Draft::D14 | Draft::D15 => return Ok(()),
            Draft::D16 => m.request_id,
            Draft::D17 => existing,
        };
        self.send(ControlMessage::RequestOk(RequestOk {
            request_id: id,
            parameters: Parameters::new(),
        }));
        Ok(())
    }

    // ---------------------------------------------------------------- publisher

    fn find_track(&self, namespace: &TrackNamespace, name: &Bytes) -> Option<TrackConsumer> {
        let origin = self.publish.as_ref()?;
        let path = namespace.to_path().ok()?;
        let name = std::str::from_utf8(name).ok()?;
        let broadcast = origin.consume_broadcast(path)?;
        broadcast.subscribe_track(&Track::new(name)).ok()
    }

    fn on_subscribe(self: &Arc<Self>, m: Subscribe) -> Result<(), SessionError> {
        let draft = self.draft;
        let Some(mut track) = self.find_track(&m.namespace, &m.name) else {
            let err = self.request_error(m.request_id, RequestFailure::DoesNotExist, "track does not exist");
            self.send(ControlMessage::RequestError(err));
            return Ok(());
        };
        let filter = match draft {
            Draft::D14 => m.filter,
            _ => crate::control::filter(&m.parameters, draft)
                .map_err(|e| SessionError::protocol(e.to_string()))?
                .unwrap_or_default(),
        };
        let largest = largest_location(&track);
        let (start, end) = match filter {
            SubscriptionFilter::LargestObject => {
                (largest.map(|l| Location::new(l.group, l.object + 1)), None)
            }
            SubscriptionFilter::NextGroupStart => (largest.map(|l| Location::new(l.group + 1, 0)), None),
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
        let start = start.filter(|_| filter != SubscriptionFilter::LargestObject);
        if let Some(start) = start {
            track.restart_from(start.group);
        }
        let (end_tx, end_rx) = watch::channel(end);
        let alias = {
            let mut state = self.lock();
            let alias = state.next_alias;
            state.next_alias += 1;
            state.served.insert(
                m.request_id,
                Served {
                    _counted: CountedSubscription::new(&self.stats),
                    task: None,
                    track: track.clone(),
                    largest,
                    end: end_tx,
                },
            );
            alias
        };
        let mut parameters = Parameters::new();
        if draft > Draft::D14 {
            if let Some(l) = largest {
                let _ = crate::control::set_location(&mut parameters, param::LARGEST_OBJECT, l, draft);
            }
        }
        self.send(ControlMessage::SubscribeOk(SubscribeOk {
            request_id: m.request_id,
            track_alias: alias,
            expires: 0,
            group_order: crate::common::group_order::ASCENDING,
            largest,
            parameters,
            track_extensions: KeyValuePairs::new(),
        }));
        let task = tokio::spawn(
            self.clone()
                .serve_subscription(m.request_id, alias, track, start, end_rx),
        );
        if let Some(served) = self.lock().served.get_mut(&m.request_id) {
            served.task = Some(task.abort_handle());
        }
        Ok(())
    }

    async fn serve_subscription(
        self: Arc<Self>,
        id: u64,
        alias: u64,
        mut track: TrackConsumer,
        start: Option<Location>,
        end: watch::Receiver<Option<u64>>,
    ) {
        let priority = track.info().priority;
        let mut groups = JoinSet::new();
        let mut count = 0u64;
        let (status, reason) = loop {
            tokio::select! {
                next = track.next_group() => match next {
                    Ok(Some(group)) => {
                        let seq = group.sequence();
                        let end = *end.borrow();
                        if end.is_some_and(|e| seq > e) {
                            break (done_code::SUBSCRIPTION_ENDED, "end of range");
                        }
                        if start.is_some_and(|s| seq < s.group) {
                            continue;
                        }
                        let skip = match start {
                            Some(s) if s.group == seq => s.object,
                            _ => 0,
                        };
                        count += 1;
                        groups.spawn(self.clone().send_group(alias, group, skip, priority));
                        if end == Some(seq) {
                            break (done_code::SUBSCRIPTION_ENDED, "end of range");
                        }
                    }
                    Ok(None) => break (done_code::TRACK_ENDED, "track ended"),
                    Err(err) => {
                        tracing::debug!(%err, "track aborted");
                        break (done_code::INTERNAL_ERROR, "track aborted");
                    }
                },
                Some(_) = groups.join_next(), if !groups.is_empty() => {}
            }
        };
        while groups.join_next().await.is_some() {}
        self.lock().served.remove(&id);
        self.send(ControlMessage::PublishDone(PublishDone {
            request_id: id,
            status_code: status,
            stream_count: count,
            reason: reason.to_string(),
        }));
    }

    async fn send_group(self: Arc<Self>, alias: u64, mut group: GroupConsumer, skip: u64, priority: u8) {
        if let Err(err) = self.send_group_inner(alias, &mut group, skip, priority).await {
            tracing::debug!(?err, "group stream ended early");
        }
    }

    async fn send_group_inner(
        &self,
        alias: u64,
        group: &mut GroupConsumer,
        skip: u64,
        priority: u8,
    ) -> Result<(), StreamError> {
        let draft = self.draft;
        let send = self
            .transport
            .open_uni()
            .await
            .map_err(|e| StreamError::Closed(transport_error(e)))?;
        self.stats.group_out();
        let mut writer = Writer::new(send);
        // Newer groups first within a track, tracks by priority.
        let order = (group.sequence() & 0xffff) as i32 + ((priority as i32) << 16);
        writer.set_priority(order);
        let header = SubgroupHeader {
            track_alias: alias,
            group_id: group.sequence(),
            subgroup_id: SubgroupId::Zero,
            publisher_priority: Some(PUBLISHER_PRIORITY),
            extensions: false,
            end_of_group: false,
        };
        writer.encode(|b| header.encode(draft, b)).await?;
        let mut objects = SubgroupWriter::new(&header);
        let mut index = 0u64;
        loop {
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

    fn on_fetch(self: &Arc<Self>, m: Fetch) -> Result<(), SessionError> {
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
                        .map(|s| (s.track.clone(), s.largest))
                };
                let Some((track, largest)) = joined else {
                    self.send(error(
                        RequestFailure::InvalidJoiningRequestId,
                        "no such subscription",
                    ));
                    return Ok(());
                };
                let Some(largest) = largest else {
                    self.send(error(RequestFailure::NoObjects, "the track had no objects"));
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
        let task = tokio::spawn(self.clone().serve_fetch(id, track, start, end));
        self.lock().fetches.insert(id, task.abort_handle());
        Ok(())
    }

    /// Answers a FETCH from the cache: groups `start.group..=end.0`, objects
    /// from `start.object` in the first, up to `end.1` (inclusive) in the last.
    async fn serve_fetch(
        self: Arc<Self>,
        id: u64,
        track: TrackConsumer,
        start: Location,
        end: (u64, Option<u64>),
    ) {
        let draft = self.draft;
        let mut objects = Vec::new();
        for seq in start.group..=end.0 {
            let Some(mut group) = track.group(seq) else {
                continue;
            };
            let last = if seq == end.0 { end.1 } else { None };
            let first = if seq == start.group { start.object } else { 0 };
            let mut index = 0u64;
            while last.is_none_or(|l| index <= l) {
                match group.read_frame().await {
                    Ok(Some(payload)) => {
                        if index >= first {
                            objects.push((seq, index, payload));
                        }
                        index += 1;
                    }
                    _ => break,
                }
            }
        }
        let end_location = match objects.last() {
            Some((g, o, _)) => Location::new(*g, o + 1),
            None => Location::new(end.0, end.1.map_or(0, |o| o + 1)),
        };
        self.send(ControlMessage::FetchOk(FetchOk {
            request_id: id,
            group_order: crate::common::group_order::ASCENDING,
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
            let mut fetch = FetchWriter::new();
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

    fn on_track_status(&self, m: Subscribe) {
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
                    let _ = crate::control::set_location(&mut parameters, param::LARGEST_OBJECT, l, draft);
                }
                self.send(ControlMessage::RequestOk(RequestOk {
                    request_id: m.request_id,
                    parameters,
                }));
            }
        }
    }

    /// Announces our origin's broadcasts with PUBLISH_NAMESPACE.
    async fn run_announce(self: Arc<Self>, mut origin: OriginConsumer) -> Result<(), StreamError> {
        let mut ids: HashMap<Path, (u64, TrackNamespace)> = HashMap::new();
        while let Some(announced) = origin.announced().await {
            match announced.broadcast {
                Some(broadcast) => {
                    // Do not echo back what this peer announced to us.
                    let echo = self
                        .lock()
                        .announced
                        .get(&announced.path)
                        .is_some_and(|a| a.broadcast.consume().is_same(&broadcast));
                    if echo || ids.contains_key(&announced.path) {
                        continue;
                    }
                    let Ok(namespace) = TrackNamespace::from_path(&announced.path) else {
                        tracing::debug!(path = %announced.path, "path is no namespace");
                        continue;
                    };
                    let id = self.next_request().await?;
                    let (tx, rx) = oneshot::channel();
                    self.lock().pending.insert(id, tx);
                    self.send(ControlMessage::PublishNamespace(PublishNamespace {
                        request_id: id,
                        required_request_id_delta: 0,
                        namespace: namespace.clone(),
                        parameters: Parameters::new(),
                    }));
                    let path = announced.path.clone();
                    tokio::spawn(async move {
                        if let Ok(reply) = rx.await {
                            tracing::debug!(%path, ?reply, "PUBLISH_NAMESPACE answered");
                        }
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
    async fn serve_subscribe_namespace(
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
    async fn subscribe_namespace_stream(
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
        let (Some(origin), Ok(prefix)) = (self.publish.clone(), prefix) else {
            let err = self.request_error(m.request_id, RequestFailure::NotSupported, "nothing published");
            writer
                .encode(|b| ControlMessage::RequestError(err).encode(draft, b))
                .await?;
            return writer.finish();
        };
        let ok = RequestOk {
            request_id: m.request_id,
            parameters: Parameters::new(),
        };
        writer
            .encode(|b| ControlMessage::RequestOk(ok).encode(draft, b))
            .await?;
        // Subscribe Options: 0 PUBLISH only, 1 NAMESPACE only, 2 both.
        let namespaces = m.subscribe_options != 0;
        let mut origin = origin;
        loop {
            tokio::select! {
                announced = origin.announced(), if namespaces => {
                    let Some(announced) = announced else { return writer.finish() };
                    let Some(suffix) = announced.path.strip_prefix(&prefix) else { continue };
                    let Ok(suffix) = TrackNamespace::from_path(&suffix) else { continue };
                    // Do not echo back what this peer published to us.
                    let echo = announced.broadcast.as_ref().is_some_and(|b| {
                        self.lock()
                            .announced
                            .get(&announced.path)
                            .is_some_and(|a| a.broadcast.consume().is_same(b))
                    });
                    if echo {
                        continue;
                    }
                    let msg = match announced.broadcast {
                        Some(_) => ControlMessage::Namespace(Namespace { suffix }),
                        None => ControlMessage::NamespaceDone(NamespaceDone { suffix }),
                    };
                    writer.encode(|b| msg.encode(draft, b)).await?;
                }
                msg = reader.decode(|b| ControlMessage::decode(b, draft)) => match msg? {
                    None => return writer.finish(),
                    Some(Decoded::Message(ControlMessage::RequestUpdate(u))) if draft == Draft::D17 => {
                        // Nothing to change in what we send: acknowledge it.
                        self.peer_request(u.request_id).map_err(StreamError::Protocol)?;
                        let ok = ControlMessage::RequestOk(RequestOk {
                            request_id: m.request_id,
                            parameters: Parameters::new(),
                        });
                        writer.encode(|b| ok.encode(draft, b)).await?;
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

    // --------------------------------------------------------------- subscriber

    /// Drafts 16+: SUBSCRIBE_NAMESPACE for the root prefix on its own
    /// bidirectional stream; each NAMESPACE publishes the peer's broadcast
    /// into our origin (as PUBLISH_NAMESPACE does), NAMESPACE_DONE withdraws it.
    async fn run_subscribe_namespace(self: Arc<Self>) -> Result<(), StreamError> {
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
            subscribe_options: 1,
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
    fn withdraw_discovered(&self, path: &Path) {
        let mut state = self.lock();
        if state.announced.get(path).is_some_and(|a| a.request_id.is_none()) {
            if let Some(announced) = state.announced.remove(path) {
                announced.task.abort();
            }
        }
    }

    /// Publishes the peer's broadcast at `path` into our origin (once).
    fn activate(
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

    fn on_publish_namespace(self: &Arc<Self>, m: PublishNamespace) {
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
                    request_id: m.request_id,
                    parameters: Parameters::new(),
                }));
            }
            Err(err) => {
                let err = self.request_error(m.request_id, RequestFailure::Uninterested, &err.to_string());
                self.send(match draft {
                    Draft::D14 => ControlMessage::PublishNamespaceError(err),
                    _ => ControlMessage::RequestError(err),
                });
            }
        }
    }

    fn on_publish_namespace_done(&self, m: PublishNamespaceDone) {
        let mut state = self.lock();
        let path = match self.draft {
            Draft::D16 | Draft::D17 => state
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

    /// Subscribes to each track a local consumer asks for.
    async fn serve_requests(self: Arc<Self>, path: Path, mut requests: BroadcastRequests) {
        let mut subscriptions = JoinSet::new();
        loop {
            tokio::select! {
                request = requests.requested_track() => match request {
                    Some(track) => {
                        subscriptions.spawn(self.clone().run_subscription(path.clone(), track));
                    }
                    None => break,
                },
                Some(_) = subscriptions.join_next(), if !subscriptions.is_empty() => {}
            }
        }
        while subscriptions.join_next().await.is_some() {}
    }

    async fn run_subscription(self: Arc<Self>, path: Path, track: TrackProducer) {
        let draft = self.draft;
        let Ok(namespace) = TrackNamespace::from_path(&path) else {
            track.abort(moq_lite::Error::NotFound);
            return;
        };
        let name = Bytes::from(track.info().name.clone().into_bytes());
        let priority = track.info().priority;
        let (done_tx, done_rx) = oneshot::channel();
        let mut sub_id = None;
        let reply = self
            .request(|id| {
                sub_id = Some(id);
                self.lock().subs.insert(
                    id,
                    Sub {
                        alias: None,
                        done: Some(done_tx),
                    },
                );
                let filter = SubscriptionFilter::LargestObject;
                let mut parameters = Parameters::new();
                if draft > Draft::D14 {
                    let _ = crate::control::set_filter(&mut parameters, filter, draft);
                    parameters.set_int(param::FORWARD, 1);
                    parameters.set_int(param::SUBSCRIBER_PRIORITY, priority as u64);
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
            Ok(ControlMessage::SubscribeOk(ok)) => ok.track_alias,
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
                track.abort(err);
                return;
            }
        };
        if !self.register_alias(id, alias, &track) {
            return;
        }
        self.follow(id, alias, track, done_rx).await;
    }

    /// Records `alias` for `track`; a duplicate closes the session.
    fn register_alias(&self, id: u64, alias: u64, track: &TrackProducer) -> bool {
        let mut state = self.lock();
        if state.aliases.contains_key(&alias) {
            let _ = self.fatal.send(SessionError::new(
                code::DUPLICATE_TRACK_ALIAS,
                "duplicate track alias",
            ));
            return false;
        }
        state.aliases.insert(alias, track.clone());
        if let Some(sub) = state.subs.get_mut(&id) {
            sub.alias = Some(alias);
        }
        drop(state);
        self.alias_added.notify_waiters();
        true
    }

    /// Feeds `track` until PUBLISH_DONE, or unsubscribes once it is unused.
    async fn follow(&self, id: u64, alias: u64, mut track: TrackProducer, done: oneshot::Receiver<()>) {
        let finished = tokio::select! {
            _ = done => true,
            _ = track.unused() => false,
        };
        if finished {
            tokio::time::sleep(DONE_GRACE).await;
        } else {
            self.send(ControlMessage::Unsubscribe(Unsubscribe { request_id: id }));
        }
        {
            let mut state = self.lock();
            state.subs.remove(&id);
            state.aliases.remove(&alias);
        }
        match finished {
            true => {
                let _ = track.finish();
            }
            false => track.abort(moq_lite::Error::Cancel),
        }
    }

    fn on_publish(self: &Arc<Self>, m: crate::control::Publish) -> Result<(), SessionError> {
        let draft = self.draft;
        let refuse = |reason: &str| {
            let err = self.request_error(m.request_id, RequestFailure::Uninterested, reason);
            self.send(match draft {
                Draft::D14 => ControlMessage::PublishError(err),
                _ => ControlMessage::RequestError(err),
            });
        };
        let (Ok(path), Ok(name)) = (m.namespace.to_path(), String::from_utf8(m.name.to_vec())) else {
            refuse("invalid namespace or name");
            return Ok(());
        };
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
        if draft > Draft::D14 {
            parameters.set_int(param::FORWARD, 1);
        }
        self.send(ControlMessage::PublishOk(PublishOk {
            request_id: m.request_id,
            forward: true,
            subscriber_priority: PUBLISHER_PRIORITY,
            group_order: crate::common::group_order::ASCENDING,
            filter: SubscriptionFilter::LargestObject,
            parameters,
        }));
        let this = self.clone();
        let (id, alias) = (m.request_id, m.track_alias);
        tokio::spawn(async move { this.follow(id, alias, track, done_rx).await });
        Ok(())
    }

    /// The track for `alias`, waiting a little for its SUBSCRIBE_OK.
    async fn track_for(&self, alias: u64) -> Option<TrackProducer> {
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
    async fn recv_uni(self: Arc<Self>, recv: T::RecvStream) -> Result<(), StreamError> {
        let draft = self.draft;
        let mut reader = Reader::new(recv);
        let header = reader.decode_required(|b| StreamHeader::decode(b, draft)).await?;
        let header = match header {
            StreamHeader::Subgroup(h) => h,
            other => {
                // Fetch streams (we send no FETCH) and unknown types: reset just this stream.
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
        if subgroup != 0 {
            let mut count = first.is_some() as u64;
            while reader.decode(|b| objects.decode(b, draft)).await?.is_some() {
                count += 1;
            }
            self.dropped.fetch_add(count, Ordering::Relaxed);
            tracing::debug!(
                subgroup,
                group = header.group_id,
                count,
                "dropped objects outside sub-group 0"
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
            Ok(group) => group,
            Err(err) => {
                tracing::debug!(%err, group = header.group_id, "group refused");
                reader.stop(0x1);
                return Ok(());
            }
        };
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
    async fn recv_datagrams(self: Arc<Self>) -> Result<(), StreamError> {
        let draft = self.draft;
        loop {
            let Ok(mut datagram) = self.transport.recv_datagram().await else {
                return Ok(());
            };
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

/// The largest location in the track's cache: the latest group and its
/// last object so far.
fn largest_location(track: &TrackConsumer) -> Option<Location> {
    let group = track.latest_group()?;
    let frames = available_frames(&group);
    Some(Location::new(group.sequence(), frames.saturating_sub(1)))
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

/// A group being received; aborted if dropped unfinished.
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

impl Drop for IncomingGroup<'_> {
    fn drop(&mut self) {
        self.abort(moq_lite::Error::Cancel);
    }
}

async fn write_control<T: Transport>(
    draft: Draft,
    mut writer: Writer<T::SendStream>,
    mut rx: mpsc::UnboundedReceiver<ControlMessage>,
) -> Result<(), StreamError> {
    while let Some(msg) = rx.recv().await {
        tracing::trace!(?msg, "control out");
        match writer.encode(|b| msg.encode(draft, b)).await {
            Ok(()) => {}
            Err(StreamError::Closed(moq_lite::Error::Encode)) => {
                return Err(StreamError::Protocol(SessionError::new(
                    code::INTERNAL_ERROR,
                    "control message encoding failed",
                )));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Runs the session until something fatal happens.
async fn run<T: Transport>(
    inner: Arc<Inner<T>>,
    (writer, mut reader): Control<T>,
    ctl_rx: mpsc::UnboundedReceiver<ControlMessage>,
    mut fatal: mpsc::UnboundedReceiver<SessionError>,
) -> SessionError {
    let draft = inner.draft;
    let transport = inner.transport.clone();
    let mut tasks: JoinSet<Result<(), StreamError>> = JoinSet::new();
    match draft {
        Draft::D17 => tasks.spawn(inner.clone().route17(writer, ctl_rx)),
        _ => tasks.spawn(write_control::<T>(draft, writer, ctl_rx)),
    };
    tasks.spawn(inner.clone().recv_datagrams());
    if let Some(origin) = inner.publish.clone() {
        tasks.spawn(inner.clone().run_announce(origin));
    }
    // Our subscriber half discovers the peer's namespaces with a root
    // SUBSCRIBE_NAMESPACE: drafts 14 and 15 require 1 to 32 prefix fields, so
    // a root prefix exists only from draft-16 (where it has its own stream).
    if inner.origin.is_some() && inner.client && draft >= Draft::D16 {
        tasks.spawn(inner.clone().run_subscribe_namespace());
    }
    let stream_closed = |err: StreamError| match err {
        StreamError::Protocol(err) => err,
        StreamError::Closed(err) => SessionError::from_lite(err),
    };
    loop {
        tokio::select! {
            msg = reader.decode(|b| ControlMessage::decode(b, draft)) => match msg {
                Ok(Some(Decoded::Message(msg))) => {
                    tracing::trace!(?msg, "control in");
                    if let Err(err) = inner.handle(msg) {
                        return err;
                    }
                }
                Ok(Some(Decoded::Unknown { message_type, .. })) => {
                    return SessionError::protocol(format!("unknown control message {message_type:#x}"));
                }
                Ok(None) => return SessionError::protocol("control stream ended"),
                Err(err) => return stream_closed(err),
            },
            accepted = transport.accept_uni() => match accepted {
                Ok(recv) => {
                    tasks.spawn(inner.clone().recv_uni(recv));
                }
                Err(err) => return SessionError::from_lite(transport_error(err)),
            },
            accepted = transport.accept_bi() => match accepted {
                Ok((send, recv)) if draft == Draft::D16 => {
                    let stream = (Writer::new(send), Reader::new(recv));
                    tasks.spawn(inner.clone().serve_subscribe_namespace(stream));
                }
                Ok((send, recv)) if draft == Draft::D17 => {
                    let stream = (Writer::new(send), Reader::new(recv));
                    tasks.spawn(inner.clone().incoming17(stream));
                }
                Ok(_) => return SessionError::protocol("unexpected bidirectional stream"),
                Err(err) => return SessionError::from_lite(transport_error(err)),
            },
            Some(err) = fatal.recv() => return err,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Err(StreamError::Protocol(err))) => return err,
                Ok(Err(StreamError::Closed(err))) => tracing::trace!(%err, "stream closed"),
                Ok(Ok(())) => {}
                Err(join) if join.is_panic() => {
                    return SessionError::new(code::INTERNAL_ERROR, "session task panicked");
                }
                Err(_) => {}
            },
        }
    }
}

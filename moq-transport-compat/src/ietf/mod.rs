//! The IETF moq-transport session (drafts 14 to 17), mapped onto the
//! moq-lite model.
//!
//! - Namespace tuple <-> broadcast path, track name <-> track, group <->
//!   group, objects 0, 1, 2... of sub-group 0 <-> frames. Everything we send
//!   is in sub-group 0; objects received in another sub-group are dropped
//!   and counted ([`Session::dropped_objects`]), never an error.
//! - One bidirectional control stream: CLIENT_SETUP / SERVER_SETUP (with
//!   MAX_REQUEST_ID; a raw QUIC client adds PATH and AUTHORITY from the URL
//!   it dialled), then control messages. Request IDs: the client's are
//!   even, the server's odd, each used once and below the Maximum Request
//!   ID granted (we grant more as they are used), and ours leave in order.
//!   Drafts 14 and 15 require each to be the next in sequence; from
//!   draft-16 requests on separate streams may be read out of order, so
//!   duplicates are found in the set of IDs seen above a low-water mark.
//!   SUBSCRIBE_UPDATE / REQUEST_UPDATE is a request of its own, applied to
//!   the subscription it names (filter, Forward, priority) and, from 15,
//!   answered with REQUEST_OK or REQUEST_ERROR; draft-17's PUBLISH_BLOCKED
//!   is logged.
//! - Error codes are spelled per draft ([`RequestFailure`]): draft-14 has
//!   a table per error message, 15+ one REQUEST_ERROR table.
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
mod publisher;
mod push;
mod request_ids;
mod requests;
pub mod stream;
mod subscriber;

pub use error::{RequestFailure, SessionError, code, done_code};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use moq_lite::model::{
    BroadcastConsumer, BroadcastProducer, BroadcastRequests, GroupConsumer, OriginConsumer, OriginProducer,
    Path, Track, TrackConsumer, TrackProducer,
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
use crate::namespace::RoutedName;
use crate::{Draft, KeyValuePairs, Location, SubscriptionFilter, TrackNamespace};
use error::transport_error;
use request_ids::{REQUEST_WINDOW, RequestIdError, RequestIds, Take};
use requests::Route;
use stream::{Reader, StreamError, Writer};

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

/// A server session whose SETUP exchange is done; [`ServerHandshake::start`]
/// runs it.
pub struct ServerHandshake<T: Transport> {
    transport: T,
    draft: Draft,
    control: Control<T>,
    peer_max: u64,
    path: Option<String>,
}

impl<T: Transport> ServerHandshake<T> {
    /// The negotiated draft.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The PATH the client sent (raw QUIC clients send the path and query
    /// of the URL they dialled), if any.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Runs the session with `config`.
    pub fn start(self, config: SessionConfig) -> Session {
        Session::start(
            self.transport,
            self.draft,
            false,
            self.control,
            self.peer_max,
            config,
        )
    }
}

/// The PATH parameter of a client's SETUP, if it is UTF-8.
pub(crate) fn client_path(params: &KeyValuePairs) -> Option<String> {
    let path = params.get_bytes(setup_param::PATH)?;
    String::from_utf8(path.to_vec()).ok()
}

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
            let (control, _) = setup17(&transport, config.raw_quic_url.as_ref()).await?;
            return Ok(Self::start(transport, draft, true, control, u64::MAX, config));
        }
        let (send, recv) = transport.open_bi().await.map_err(transport_error)?;
        let mut control: Control<T> = (Writer::new(send), Reader::new(recv));
        let mut parameters = setup_params();
        if let Some(url) = &config.raw_quic_url {
            uri_params(url, &mut parameters);
        }
        let setup = ClientSetup {
            versions: draft.setup_code().into_iter().collect(),
            parameters,
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
        Ok(Self::handshake(transport, draft).await?.start(config))
    }

    /// The server's side of the SETUP exchange, before the session starts:
    /// what the client sent (its PATH) can then choose the session's
    /// configuration.
    pub async fn handshake<T: Transport>(
        transport: T,
        draft: Draft,
    ) -> Result<ServerHandshake<T>, moq_lite::Error> {
        if draft == Draft::D17 {
            let (control, options) = setup17(&transport, None).await?;
            return Ok(ServerHandshake {
                transport,
                draft,
                control,
                peer_max: u64::MAX,
                path: client_path(&options),
            });
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
        Self::handshake_after_setup(transport, draft, control, setup).await
    }

    /// After CLIENT_SETUP was read (here, or on the SETUP path): answers it.
    pub(crate) async fn handshake_after_setup<T: Transport>(
        transport: T,
        draft: Draft,
        mut control: Control<T>,
        setup: ClientSetup,
    ) -> Result<ServerHandshake<T>, moq_lite::Error> {
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
        Ok(ServerHandshake {
            transport,
            draft,
            control,
            peer_max: setup.parameters.get_int(setup_param::MAX_REQUEST_ID).unwrap_or(0),
            path: client_path(&setup.parameters),
        })
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
                ids: RequestIds::new(draft, client),
                next_alias: 1,
                served: HashMap::new(),
                solicited: Vec::new(),
                pushers: HashMap::new(),
                fetches: HashMap::new(),
                pending: HashMap::new(),
                routes: HashMap::new(),
                deps17: Default::default(),
                subs: HashMap::new(),
                aliases: HashMap::new(),
                announced: HashMap::new(),
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
///
/// `uri`: a raw QUIC client's URL, sent as PATH and AUTHORITY.
async fn setup17<T: Transport>(
    transport: &T,
    uri: Option<&url::Url>,
) -> Result<(Control<T>, KeyValuePairs), moq_lite::Error> {
    let draft = Draft::D17;
    let send = transport.open_uni().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let mut options = KeyValuePairs::new();
    options.set_bytes(
        setup_param::IMPLEMENTATION,
        Bytes::from_static(IMPLEMENTATION.as_bytes()),
    );
    if let Some(url) = uri {
        uri_params(url, &mut options);
    }
    let setup = ControlMessage::Setup(crate::control::Setup { options });
    writer.encode(|b| setup.encode(draft, b)).await.map_err(lite)?;
    let recv = transport.accept_uni().await.map_err(transport_error)?;
    let mut reader = Reader::new(recv);
    let msg = reader
        .decode_required(|b| ControlMessage::decode(b, draft))
        .await
        .map_err(lite)?;
    match msg {
        Decoded::Message(ControlMessage::Setup(setup)) => Ok(((writer, reader), setup.options)),
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

/// PATH and AUTHORITY for a client dialling `url` over raw QUIC ({{path}},
/// {{authority}}): "the client MUST set the PATH parameter to the
/// path-abempty portion of the URI; if query is present, the client MUST
/// concatenate ?, followed by the query", and AUTHORITY "to the authority
/// portion of the URI" (host and port; no user information).
pub(crate) fn uri_params(url: &url::Url, params: &mut KeyValuePairs) {
    let mut path = url.path().to_string();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    params.set_bytes(setup_param::PATH, Bytes::from(path));
    if let Some(host) = url.host_str() {
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        params.set_bytes(setup_param::AUTHORITY, Bytes::from(authority));
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

struct State {
    /// Both directions' Request IDs.
    ids: RequestIds,
    /// Our requests awaiting their response.
    pending: HashMap<u64, oneshot::Sender<ControlMessage>>,
    /// Draft-17: the request stream of each open request, by Request ID.
    routes: HashMap<u64, Route>,
    /// Draft-17: requests waiting for the requests they depend on.
    deps17: requests::Deps17,
    // Publisher half.
    served: HashMap<u64, Served>,
    /// Drafts 16+: the prefixes of the peer's open SUBSCRIBE_NAMESPACE
    /// streams (one entry per stream), which carry our namespaces as
    /// NAMESPACE instead of PUBLISH_NAMESPACE.
    solicited: Vec<Path>,
    /// Drafts 14 and 15: the tasks pushing tracks (PUBLISH) to the peer's
    /// SUBSCRIBE_NAMESPACE requests, by Request ID, with their prefixes.
    pushers: HashMap<u64, (TrackNamespace, AbortHandle)>,
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
    /// The Largest Location when it was accepted (a joining FETCH ends there).
    largest: Option<Location>,
    /// Whether its filter was LargestObject, the only one a joining FETCH
    /// may join (draft-16 {{joining-fetches}}).
    largest_object: bool,
    /// What it asks for now; updates change it.
    wanted: watch::Sender<publisher::Wanted>,
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
        for (_, (_, pusher)) in state.pushers.drain() {
            pusher.abort();
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
        let grant = state.ids.accept(id).map_err(|err| match err {
            RequestIdError::WrongParity => {
                SessionError::new(code::INVALID_REQUEST_ID, "request ID of the wrong parity")
            }
            RequestIdError::OutOfSequence => {
                SessionError::new(code::INVALID_REQUEST_ID, "request ID not the next in sequence")
            }
            RequestIdError::Duplicate => SessionError::new(code::INVALID_REQUEST_ID, "duplicate request ID"),
            RequestIdError::OverMaximum => {
                SessionError::new(code::TOO_MANY_REQUESTS, "request ID over the maximum")
            }
        })?;
        // A Request ID taken is what dependent draft-17 requests wait for
        // (requests handled outside `handle`, such as SUBSCRIBE_NAMESPACE
        // streams, count from here; `handle` wakes them again when done).
        state.deps17.wake();
        if let Some(max) = grant {
            self.send(ControlMessage::MaxRequestId(MaxRequestId { request_id: max }));
        }
        Ok(())
    }

    /// Our next request ID, waiting for the peer's MAX_REQUEST_ID if blocked.
    /// For a request on its own stream (SUBSCRIBE_NAMESPACE from draft-16);
    /// control stream requests go through [`Inner::send_request`].
    async fn next_request(&self) -> Result<u64, moq_lite::Error> {
        self.send_request(|_, _| None).await
    }

    /// Takes our next request ID (waiting for the peer's MAX_REQUEST_ID if
    /// blocked) and queues the request `build` makes of it under the same
    /// lock, so that requests leave in the order of their IDs: drafts 14
    /// and 15 close the session on one that is "not the next in sequence"
    /// (draft-15 {{request-id}}), and tasks race to make requests. With the
    /// request comes where its response goes, registered before it is sent.
    /// `build` runs under the state lock and gets the state to record what
    /// else the request needs (it must not lock it again).
    async fn send_request(
        &self,
        build: impl FnOnce(u64, &mut State) -> Option<(ControlMessage, oneshot::Sender<ControlMessage>)>,
    ) -> Result<u64, moq_lite::Error> {
        let mut max = self.peer_max.subscribe();
        loop {
            {
                let mut state = self.lock();
                let limit = *max.borrow_and_update();
                match state.ids.take(limit) {
                    Take::Id(id) => {
                        if let Some((msg, reply)) = build(id, &mut state) {
                            state.pending.insert(id, reply);
                            self.send(msg);
                        }
                        return Ok(id);
                    }
                    Take::Blocked(Some(limit)) => {
                        self.send(ControlMessage::RequestsBlocked(RequestsBlocked {
                            max_request_id: limit,
                        }));
                    }
                    Take::Blocked(None) => {}
                }
            }
            max.changed().await.map_err(|_| moq_lite::Error::Closed)?;
        }
    }

    /// Sends a request and waits for its response (`build` as for
    /// [`Inner::send_request`]).
    async fn request(
        &self,
        build: impl FnOnce(u64, &mut State) -> ControlMessage,
    ) -> Result<ControlMessage, moq_lite::Error> {
        let (tx, rx) = oneshot::channel();
        self.send_request(|id, state| Some((build(id, state), tx)))
            .await?;
        rx.await.map_err(|_| moq_lite::Error::Closed)
    }

    fn request_error(&self, request_id: u64, failure: RequestFailure, reason: &str) -> RequestError {
        RequestError {
            request_id,
            error_code: failure.code(self.draft),
            retry_interval: 0,
            reason: crate::common::truncate_reason(reason),
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
                // Drafts 14 and 15: every namespace is announced anyway
                // (PUBLISH_NAMESPACE); the tracks under the prefix are
                // pushed with PUBLISH (push.rs).
                let ok = RequestOk {
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
            M::Namespace(_) | M::NamespaceDone(_) => {
                return Err(SessionError::protocol(
                    "message not allowed on the control stream",
                ));
            }
        }
        Ok(())
    }

    /// Whether `id` is a request the peer has made in this session.
    fn peer_used(&self, id: u64) -> bool {
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
    fn on_request_update(&self, m: crate::control::RequestUpdate) -> Result<(), SessionError> {
        let draft = self.draft;
        self.peer_request(m.request_id)?;
        let existing = m.existing_request_id;
        if !self.peer_used(existing) {
            return Err(SessionError::protocol("update of a request that never existed"));
        }
        let reply_id = match draft {
            Draft::D17 => existing,
            _ => m.request_id,
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
                m.parameters.get_int(param::FORWARD).map(|f| f != 0),
                m.parameters
                    .get_int(param::SUBSCRIBER_PRIORITY)
                    .map(|p| p.min(255) as u8),
            ),
        };
        match filter {
            Some(SubscriptionFilter::AbsoluteStart(start)) => (new.start, new.end) = (Some(start), None),
            Some(SubscriptionFilter::AbsoluteRange { start, end_group }) => {
                (new.start, new.end) = (Some(start), Some(end_group))
            }
            // Relative filters keep the start: they name where a new
            // subscription begins, and this one has begun.
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
                status_code: done_code::UPDATE_FAILED,
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
                let _ = crate::control::set_location(&mut parameters, param::LARGEST_OBJECT, l, draft);
            }
            self.send(ControlMessage::RequestOk(RequestOk {
                request_id: reply_id,
                parameters,
            }));
        }
        Ok(())
    }
}

async fn write_control<T: Transport>(
    draft: Draft,
    mut writer: Writer<T::SendStream>,
    mut rx: mpsc::UnboundedReceiver<ControlMessage>,
) -> Result<(), StreamError> {
    let mut encoded = bytes::BytesMut::new();
    while let Some(msg) = rx.recv().await {
        tracing::trace!(?msg, "control out");
        // Encoded apart from the write, so that a message we cannot encode
        // (a bug: a field over its limit) ends the session loudly instead of
        // reading as a closed stream and silencing the control stream.
        encoded.clear();
        if let Err(err) = msg.encode(draft, &mut encoded) {
            tracing::error!(%err, ?msg, "cannot encode a control message");
            return Err(StreamError::Protocol(SessionError::new(
                code::INTERNAL_ERROR,
                "control message encoding failed",
            )));
        }
        writer
            .encode(|b| {
                b.extend_from_slice(&encoded);
                Ok(())
            })
            .await?;
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

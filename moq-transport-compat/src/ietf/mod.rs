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
//!   broadcast is announced with PUBLISH_NAMESPACE, or from draft-16 with
//!   NAMESPACE on the peer's SUBSCRIBE_NAMESPACE streams (`announce`);
//!   tracks offered under a SUBSCRIBE_NAMESPACE prefix are pushed with
//!   PUBLISH (`push`); SUBSCRIBE is answered from the track cache with every
//!   filter type, routed by Namespace Prefix Matching (`publisher`); FETCH
//!   (standalone, relative and absolute joining) from the cache (`fetch`);
//!   TRACK_STATUS answered.
//! - Subscriber half (filling a [`moq_lite::model::OriginProducer`]): a
//!   peer's PUBLISH_NAMESPACE publishes a broadcast whose tracks are
//!   subscribed on demand; a track it pushes with PUBLISH is kept until it
//!   ends; datagrams become single-frame groups (`subscriber`).
//! - The machinery: `setup` (the SETUP exchange), `driver` (the session's
//!   loop), `control` (dispatch of each control message), `request_ids`
//!   (the Request ID rules, a pure state machine), `requests` and `deps17`
//!   (draft-17's stream per request and required requests); every stream
//!   is read and written through [`stream`], moq-lite's stream layer
//!   ([`moq_lite::stream`]) with this session's errors and codes.
//!
//! Draft-17 (new varint, SETUP on a unidirectional control stream of type
//! 0x2F00, one bidirectional stream per request) runs the same request
//! handling: see the `requests` module for how messages are routed.

mod announce;
mod backfill;
mod control;
mod deps17;
mod driver;
mod error;
mod fetch;
mod publisher;
mod push;
mod request_ids;
mod requests;
mod setup;
mod subscriber;

pub mod stream {
    //! The stream layer of IETF sessions: moq-lite's [`moq_lite::stream`],
    //! with [`SessionError`] as the protocol ([`moq_lite::stream::Protocol`]),
    //! so both families share one buffering policy, one set of limits and
    //! one reset-on-drop.
    //!
    //! IETF specifics: a [`Writer`] dropped unfinished resets its stream with
    //! CANCELLED (0x1); a stream reset by the peer reads as
    //! [`moq_lite::Error::Cancel`], a closed session by its termination code;
    //! broken bytes close the session with PROTOCOL_VIOLATION. Control
    //! messages carry a 16-bit length, well under the reader's default limit;
    //! data streams, whose decoded objects include their payload, raise it to
    //! [`MAX_OBJECT_BUFFERED`] with
    //! [`Reader::with_max_buffered`](moq_lite::stream::Reader::with_max_buffered).

    use super::SessionError;

    /// Reads IETF messages (and objects) from a receive stream.
    pub type Reader<R> = moq_lite::stream::Reader<R, SessionError>;

    /// Writes IETF messages to a send stream; resets it with CANCELLED
    /// (0x1) if dropped before it was finished or reset.
    pub type Writer<S> = moq_lite::stream::Writer<S, SessionError>;

    /// Why an IETF stream's work ended early: only the stream
    /// ([`Closed`](moq_lite::stream::StreamError::Closed)), or the whole
    /// session ([`Protocol`](moq_lite::stream::StreamError::Protocol)).
    pub type StreamError = moq_lite::stream::StreamError<SessionError>;

    /// The most bytes a data stream's [`Reader`] buffers while waiting for
    /// one object: a [`MAX_OBJECT_PAYLOAD`](crate::data::MAX_OBJECT_PAYLOAD)
    /// payload plus its header. Past it the peer broke the protocol.
    pub const MAX_OBJECT_BUFFERED: usize = crate::data::MAX_OBJECT_PAYLOAD + 1024;
}

pub use error::{DoneCode, RequestFailure, SessionCode, SessionError};
pub use setup::ServerHandshake;
pub(crate) use setup::{client_path, uri_params};

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
    ClientSetup, ControlMessage, Decoded, Fetch, FetchOk, FetchType, GoAway, MaxRequestId, MessageParameter,
    Namespace, NamespaceDone, Parameters, PublishDone, PublishNamespace, PublishNamespaceDone, PublishOk,
    RequestError, RequestOk, RequestsBlocked, ServerSetup, SetupParameter, Subscribe, SubscribeNamespace,
    SubscribeOk, Unsubscribe,
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

/// How long a subscription's track waits, after PUBLISH_DONE, for the data
/// streams its Stream Count says the publisher opened: they travel apart
/// from the control stream and may arrive after it. Those still missing
/// then end the track with [`moq_lite::Error::Dropped`], not a clean end.
const DONE_WAIT: Duration = Duration::from_secs(5);

/// After a PUBLISH_DONE whose Stream Count is unknown, how long the track
/// stays writable for data streams still in flight.
const DONE_GRACE: Duration = Duration::from_millis(500);

/// The Stream Count of a PUBLISH_DONE that does not know it (2^62 - 1).
const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;

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
    refused: watch::Receiver<Vec<(Path, moq_lite::Error)>>,
    task: AbortHandle,
}

impl Session {
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
        let (refused_tx, refused) = watch::channel(Vec::new());
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
                backfills: HashMap::new(),
                rendezvous: 0,
                pending: HashMap::new(),
                routes: HashMap::new(),
                deps17: Default::default(),
                subs: HashMap::new(),
                aliases: HashMap::new(),
                arrived: HashMap::new(),
                announced: HashMap::new(),
            }),
            peer_max,
            alias_added: Notify::new(),
            stream_arrived: Notify::new(),
            publish: config.publish,
            origin: config.subscribe,
            dropped: dropped.clone(),
            stats: stats.clone(),
            refused: refused_tx,
        });
        let (tx, rx) = watch::channel(None);
        let runner = transport.clone();
        let task = tokio::spawn(async move {
            let err = driver::run(inner.clone(), control, ctl_rx, fatal_rx).await;
            inner.shutdown();
            tracing::debug!(%err, "IETF session closed");
            runner.close(err.code.code() as u32, &err.reason);
            let _ = tx.send(Some(err));
        });
        Session {
            draft,
            closed: rx,
            close: Arc::new(move |code, reason| transport.close(code as u32, reason)),
            ctl,
            dropped,
            stats,
            refused,
            task: task.abort_handle(),
        }
    }

    /// Waits until the peer refuses one of the broadcasts we publish (a
    /// REQUEST_ERROR to its PUBLISH_NAMESPACE: not allowed by our token,
    /// uninterested, ...), and says which and why. Refusals before the call
    /// count; pending forever if none comes.
    pub async fn refused(&self) -> (Path, moq_lite::Error) {
        let mut refused = self.refused.clone();
        match refused.wait_for(|r| !r.is_empty()).await {
            Ok(list) => list[0].clone(),
            Err(_) => std::future::pending().await,
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
            request_id: None,
        }));
    }

    /// Closes the session with `err`.
    pub fn close(&self, err: moq_lite::Error) {
        let err = SessionError::from_lite(err);
        (self.close)(err.code.code(), &err.reason);
    }

    /// Waits until the session ends, and says why.
    pub async fn closed(&self) -> moq_lite::Error {
        self.closed_ietf().await.error
    }

    /// Waits until the session ends, with the draft's termination code.
    pub async fn closed_ietf(&self) -> SessionError {
        let mut closed = self.closed.clone();
        match closed.wait_for(Option::is_some).await {
            Ok(err) => err
                .clone()
                .unwrap_or(SessionError::new(SessionCode::NoError, "closed")),
            Err(_) => SessionError::new(SessionCode::NoError, "closed"),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        (self.close)(SessionCode::NoError.code(), "closed");
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ietf::Session")
            .field("draft", &self.draft)
            .finish()
    }
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
    /// Woken when a data stream of a subscription arrived (see `arrived`).
    stream_arrived: Notify,
    publish: Option<OriginConsumer>,
    origin: Option<OriginProducer>,
    dropped: Arc<AtomicU64>,
    stats: Arc<SessionStats>,
    /// Our broadcasts the peer refused, oldest first (at most
    /// [`MAX_REFUSALS`] kept).
    refused: watch::Sender<Vec<(Path, moq_lite::Error)>>,
}

/// How many refused broadcasts a session remembers.
const MAX_REFUSALS: usize = 64;

struct State {
    /// Both directions' Request IDs.
    ids: RequestIds,
    /// Our requests awaiting their response.
    pending: HashMap<u64, oneshot::Sender<ControlMessage>>,
    /// Draft-17: the request stream of each open request, by Request ID.
    routes: HashMap<u64, Route>,
    /// Draft-17: requests waiting for the requests they depend on.
    deps17: deps17::Deps17,
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
    /// Our backfill FETCHes waiting for their data streams.
    backfills: HashMap<u64, backfill::OutFetch>,
    /// SUBSCRIBEs waiting for a publisher (RENDEZVOUS_TIMEOUT).
    rendezvous: usize,
    next_alias: u64,
    // Subscriber half.
    subs: HashMap<u64, Sub>,
    aliases: HashMap<u64, TrackProducer>,
    /// The data streams that arrived for each track alias we follow, to
    /// hold a track open after PUBLISH_DONE until its Stream Count arrived.
    arrived: HashMap<u64, u64>,
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
    /// Fired by PUBLISH_DONE with its Stream Count.
    done: Option<oneshot::Sender<u64>>,
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
        state.arrived.clear();
        state.subs.clear();
        state.pending.clear();
        state.routes.clear();
    }

    /// Checks a request ID the peer used, and grants more when needed.
    fn peer_request(&self, id: u64) -> Result<(), SessionError> {
        let mut state = self.lock();
        let grant = state.ids.accept(id).map_err(|err| match err {
            RequestIdError::WrongParity => {
                SessionError::new(SessionCode::InvalidRequestId, "request ID of the wrong parity")
            }
            RequestIdError::OutOfSequence => SessionError::new(
                SessionCode::InvalidRequestId,
                "request ID not the next in sequence",
            ),
            RequestIdError::Duplicate => {
                SessionError::new(SessionCode::InvalidRequestId, "duplicate request ID")
            }
            RequestIdError::OverMaximum => {
                SessionError::new(SessionCode::TooManyRequests, "request ID over the maximum")
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
            redirect: Default::default(),
            request_id,
            error_code: failure.code(self.draft),
            retry_interval: 0,
            reason: crate::common::truncate_reason(reason),
        }
    }
}

//! Sessions: a QUIC or WebTransport connection carrying the model.
//!
//! [`Session::connect`] (client) and [`Session::accept`] (server) negotiate
//! the version, then run both halves of moq-lite over the connection for as
//! long as it lives: the publisher serves an [`OriginConsumer`]'s broadcasts
//! to the peer, the subscriber brings the peer's broadcasts into an
//! [`OriginProducer`]. From then on the application only uses the model.
//!
//! The version comes from the TLS ALPN (raw QUIC) or the WebTransport
//! protocol header: `moq-lite-05`, `moq-lite-04` and `moq-lite-03` directly;
//! `moql`, or no protocol at all, means the SETUP path, where CLIENT_SETUP /
//! SERVER_SETUP pick moq-lite-02 or -01 (see `shared/specs/README.md`,
//! "Negotiation"). From -05 on each side also sends one SETUP on a Setup
//! stream (`handshake`): a server waits for the client's before it starts.
//! What differs between versions is asked of [`Version`]'s capability
//! methods (`has_track_stream`, `has_subscribe_end`, ...), not of version
//! numbers.
//!
//! Errors: a peer that breaks the protocol gets the session closed with the
//! error's code ([`Error::code`]) and its text as the reason; an unknown
//! stream type resets only that stream; everything else (a refused
//! subscription, a stopped group) ends only its stream.
//!
//! The session is generic over the `web-transport-trait` session, so raw QUIC
//! and WebTransport (both `web_transport_quinn::Session`) share this code.
//!
//! Layout: this file negotiates and runs the accept loop; `handshake` the
//! -05 Setup streams; `publisher` and
//! `subscriber` are the two halves, `stream` the framed reader / writer they
//! share (public as [`crate::stream`], for other protocol families),
//! `stats` the counters. Messages come from the pure codec in
//! [`crate::lite`], the group-sending policy from [`crate::delivery`].

mod codes;
mod events;
mod handshake;
mod publisher;
mod shared;
mod stats;
pub mod stream;
pub use codes::Codes;
pub use shared::SharedTransport;
mod subscriber;

pub use handshake::read_setup;
pub use stats::{SessionStats, StatsSnapshot};

use std::sync::Arc;

use tokio::task::{AbortHandle, JoinSet};
use web_transport_trait::Session as Transport;

use crate::Error;
use crate::coding::{Decode, Encode};
use crate::lite::{
    ClientSetup, ControlStream, DataStream, Goaway, HopId, Message, Parameters, Role, SETUP_ALPN,
    SETUP_VERSIONS, ServerSetup, SessionUpdate, Setup, SetupStream, StreamType, Version,
};
use crate::model::{OriginConsumer, OriginProducer, Path};
use handshake::{OurSetup, PeerSetup};
use publisher::Publisher;
use stream::{Reader, StreamError, Writer, transport_error};
use subscriber::Subscriber;

/// Set once the peer sent GOAWAY: from then on we open no new streams.
#[derive(Clone, Default, Debug)]
pub(crate) struct GoawayFlag(Arc<std::sync::atomic::AtomicBool>);

impl GoawayFlag {
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Where tasks the session's run loop does not own (subscriptions live
/// under their broadcast) report a protocol violation, which must still
/// close the session. Only the first counts: the session ends with it.
///
/// Not a channel: a tokio mpsc channel is about 1 KiB (cache-padded
/// halves, a block of slots) and every session has one, idle or not.
#[derive(Clone, Default)]
pub(crate) struct Fatal(Arc<FatalInner>);

#[derive(Default)]
struct FatalInner {
    first: std::sync::Mutex<Option<Error>>,
    reported: tokio::sync::Notify,
}

impl Fatal {
    /// Reports `err`; ignored if one was reported already.
    pub fn report(&self, err: Error) {
        let mut first = self.0.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(err);
            // A permit if the run loop is not waiting: it then wakes at once.
            self.0.reported.notify_one();
        }
    }

    /// The first violation reported, once there is one.
    async fn wait(&self) -> Error {
        loop {
            if let Some(err) = self.0.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return err;
            }
            self.0.reported.notified().await;
        }
    }
}

/// A running moq-lite session.
///
/// Dropping it closes the connection.
pub struct Session {
    version: Version,
    /// How the session ended and what the peer refused, shared with its
    /// tasks.
    events: Arc<events::Events>,
    close: Arc<dyn Fn(&Error) + Send + Sync>,
    goaway: Arc<dyn Fn(String) -> GoawayFuture + Send + Sync>,
    /// The open Goaway stream, kept until the session ends (its FIN would
    /// tell the peer we are done draining).
    goaway_stream: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
    stats: Arc<SessionStats>,
    task: AbortHandle,
}

type GoawayFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn std::any::Any + Send>, Error>> + Send>>;

/// What a session carries, for [`Session::connect_with`] and
/// [`Session::accept_with`].
#[derive(Debug, Default, Clone)]
pub struct SessionConfig {
    /// Broadcasts to serve to the peer.
    pub publish: Option<OriginConsumer>,
    /// Where the peer's broadcasts go.
    pub subscribe: Option<OriginProducer>,
    /// This node's hop ID, for relays (in `[1, 2^53)`): appended to the hops
    /// of every broadcast announced to the peer, sent as the Exclude Hop of
    /// our announce interest, and any announcement that already carries it
    /// (a loop) is ignored. Clients leave it `None`.
    pub hop_id: Option<u64>,
    /// The most broadcasts the peer may announce to us at once; past it the
    /// announce stream is refused with [`Error::Bounds`] (its broadcasts
    /// end). `None` means [`DEFAULT_MAX_ANNOUNCED`].
    pub max_announced: Option<usize>,
    /// For a client over raw QUIC, the URL it dialled. Raw QUIC has no
    /// request line, so IETF moq-transport sessions send its path (with the
    /// query, where a token may ride) and authority in SETUP, as PATH and
    /// AUTHORITY ("When connecting to a server using a URI with the 'moqt'
    /// scheme, the client MUST set the PATH parameter"). Leave it `None`
    /// over WebTransport, where the CONNECT request carries both (PATH there
    /// is an error), and on servers. moq-lite sessions do not use it.
    pub raw_quic_url: Option<url::Url>,
    /// The price of pulling over this link, for route choice in relay
    /// clusters (moq-lite-06): added to the cost of every route the peer
    /// announces to us, and, from a client, declared in SETUP so that the
    /// peer adds it to ours. `None`: the peer's declared price, else 1.
    pub link_cost: Option<u64>,
}

/// Default for [`SessionConfig::max_announced`].
pub const DEFAULT_MAX_ANNOUNCED: usize = 10_000;

impl Session {
    /// Starts a client session over `transport`: negotiates the version, then
    /// publishes `publish`'s broadcasts and/or subscribes into `subscribe`.
    pub async fn connect<T: Transport>(
        transport: T,
        publish: impl Into<Option<OriginConsumer>>,
        subscribe: impl Into<Option<OriginProducer>>,
    ) -> Result<Session, Error> {
        let config = SessionConfig {
            publish: publish.into(),
            subscribe: subscribe.into(),
            ..Default::default()
        };
        Self::connect_with(transport, config).await
    }

    /// [`connect`](Self::connect) with every option.
    pub async fn connect_with<T: Transport>(transport: T, config: SessionConfig) -> Result<Session, Error> {
        let negotiated = match negotiated(&transport)? {
            Some(version) => (version, None),
            None => setup_client(&transport).await?,
        };
        Ok(Self::start(
            transport,
            negotiated,
            config,
            Side::Client(PeerSetup::default()),
        ))
    }

    /// Starts a server session over an accepted `transport` (see
    /// [`connect`](Self::connect) for the rest).
    pub async fn accept<T: Transport>(
        transport: T,
        publish: impl Into<Option<OriginConsumer>>,
        subscribe: impl Into<Option<OriginProducer>>,
    ) -> Result<Session, Error> {
        let config = SessionConfig {
            publish: publish.into(),
            subscribe: subscribe.into(),
            ..Default::default()
        };
        Self::accept_with(transport, config).await
    }

    /// [`accept`](Self::accept) with every option.
    pub async fn accept_with<T: Transport>(transport: T, config: SessionConfig) -> Result<Session, Error> {
        let negotiated = match negotiated(&transport)? {
            Some(version) if version.has_setup_stream() => {
                let setup = match read_setup(&transport, version).await {
                    Ok(setup) => setup,
                    Err(err) => {
                        transport.close(err.code(), &err.to_string());
                        return Err(err);
                    }
                };
                return Self::accept_after_setup(transport, config, setup);
            }
            Some(version) => (version, None),
            None => match setup_server(&transport).await {
                Ok(negotiated) => negotiated,
                Err(err) => {
                    transport.close(err.code(), &err.to_string());
                    return Err(err);
                }
            },
        };
        Ok(Self::start(
            transport,
            negotiated,
            config,
            Side::Server(PeerSetup::default()),
        ))
    }

    /// Starts a server session on a moq-lite-05+ connection whose client
    /// SETUP the caller already read with [`read_setup`] (to learn the
    /// session root from its Path before deciding what to serve).
    pub fn accept_after_setup<T: Transport>(
        transport: T,
        config: SessionConfig,
        setup: Setup,
    ) -> Result<Session, Error> {
        let version = negotiated(&transport)?
            .filter(|v| v.has_setup_stream())
            .ok_or(Error::Version)?;
        Ok(Self::start(
            transport,
            (version, None),
            config,
            Side::Server(PeerSetup::known(setup)),
        ))
    }

    fn start<T: Transport>(
        transport: T,
        (version, session_stream): (Version, Option<SessionStream<T>>),
        config: SessionConfig,
        side: Side,
    ) -> Session {
        // From -05 the peer speaks moq-net 0.3's error registries.
        let transport = SharedTransport::with_codes(transport, Codes::for_version(version));
        let SessionConfig {
            publish,
            subscribe,
            hop_id,
            max_announced,
            raw_quic_url,
            link_cost,
        } = config;
        let ours = OurSetup {
            hop: hop_id.and_then(HopId::new).filter(|hop| !hop.is_unknown()),
            // The Path and Role parameters are the client's (shipped notes, section 4).
            path: match &side {
                Side::Client(_) => raw_quic_url.as_ref().map(setup_path),
                Side::Server(_) => None,
            },
            // Cost is the client's to declare (shipped notes, section 4).
            cost: match &side {
                Side::Client(_) => link_cost,
                Side::Server(_) => None,
            },
            role: match (&side, publish.is_some(), subscribe.is_some()) {
                (Side::Client(_), true, false) => Role::Publisher,
                (Side::Client(_), false, true) => Role::Subscriber,
                _ => Role::Both,
            },
        };
        let peer = side.peer();
        let max_announced = max_announced.unwrap_or(DEFAULT_MAX_ANNOUNCED);
        let hop_id = hop_id.and_then(HopId::new).filter(|hop| !hop.is_unknown());
        tracing::debug!(?version, "session established");
        let goaway_flag = GoawayFlag::default();
        let stats = Arc::new(SessionStats::default());
        let fatal = Fatal::default();
        // Publishing nothing still answers the peer the way a publisher with
        // nothing would: an Announce stream lists no broadcasts and stays
        // open, a SUBSCRIBE gets NotFound, PROBE gets estimates. Resetting
        // the Announce stream instead ends the session at deployed peers
        // (they treat an error there as fatal). `nothing` stays alive with
        // the session, so the stream is never finished either.
        let nothing = OriginProducer::new();
        let publisher = Publisher::new(
            transport.clone(),
            version,
            publish.unwrap_or_else(|| nothing.consume()),
            hop_id,
            goaway_flag.clone(),
            stats.clone(),
        )
        .with_peer(peer.clone());
        let events = publisher.events();
        let subscriber = subscribe.map(|origin| {
            Subscriber::new(
                transport.clone(),
                version,
                origin,
                hop_id,
                fatal.clone(),
                goaway_flag.clone(),
            )
            .with_max_announced(max_announced)
            .with_stats(stats.clone())
            .with_peer(peer.clone())
            .with_link_cost(link_cost)
        });
        let halves = Halves {
            publisher,
            subscriber,
            goaway: goaway_flag,
            fatal,
            setup: version.has_setup_stream().then_some((ours, peer)),
        };
        let task = tokio::spawn(drive::<_, T>(
            transport.clone(),
            version,
            halves,
            // Boxed: only SETUP-path sessions have one, and the task keeps
            // room for it for the session's life.
            session_stream.map(Box::new),
            events::CloseOnDrop(events.clone()),
            nothing,
        ));
        let closer = transport.clone();
        let goaway = move |uri: String| -> GoawayFuture {
            let transport = transport.clone();
            Box::pin(async move {
                let (send, _recv) = transport.open_bi().await.map_err(transport_error)?;
                let mut writer = Writer::new(send);
                let msg = Goaway { uri };
                writer
                    .encode(|b| {
                        ControlStream::Goaway.encode(version, b)?;
                        msg.encode(version, b)
                    })
                    .await
                    .map_err(|e| e.error().clone())?;
                let writer: Box<dyn std::any::Any + Send> = Box::new(writer);
                Ok(writer)
            })
        };
        Session {
            version,
            events,
            close: Arc::new(move |err: &Error| closer.close(err.code(), &err.to_string())),
            goaway: Arc::new(goaway),
            goaway_stream: std::sync::Mutex::new(None),
            stats,
            task: task.abort_handle(),
        }
    }

    /// Hook for crates that also speak other versions on the SETUP path (the
    /// IETF draft-14 crate, `moq-transport-compat`, reads CLIENT_SETUP itself
    /// to choose between moq-lite-02/-01 and draft-14): starts a moq-lite
    /// session on a SETUP stream whose CLIENT_SETUP / SERVER_SETUP exchange
    /// the caller already completed, `version` being the one selected. The
    /// caller must not have read past the SETUP message on `recv`.
    pub fn start_after_setup<T: Transport>(
        transport: T,
        version: Version,
        send: T::SendStream,
        recv: T::RecvStream,
        config: SessionConfig,
    ) -> Result<Session, Error> {
        if !SETUP_VERSIONS.contains(&version) {
            return Err(Error::Version);
        }
        let stream = (Writer::new(send), Reader::new(recv));
        Ok(Self::start(
            transport,
            (version, Some(stream)),
            config,
            Side::Server(PeerSetup::default()),
        ))
    }

    /// Waits until the peer refuses what we announce, and says under which
    /// announce prefix and why: it ended our Announce stream with
    /// [`Error::Bounds`] (more broadcasts than it takes) or
    /// [`Error::Unauthorized`]. moq-lite up to -04 has no answer to a single
    /// announcement, so a broadcast the peer merely ignores is not reported.
    /// Refusals before the call count; pending forever if none comes.
    pub async fn refused(&self) -> (Path, Error) {
        self.events.refused().await
    }

    /// What this session has carried so far.
    pub fn stats(&self) -> Arc<SessionStats> {
        self.stats.clone()
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Closes the session with `err`'s code and text.
    pub fn close(&self, err: Error) {
        (self.close)(&err);
    }

    /// Asks the peer to go away (moq-lite-04 GOAWAY), optionally to
    /// `uri`: it should open no new streams and close the session once it
    /// has moved on. The session stays usable meanwhile; close it (or drop
    /// it) when done draining. Older versions have no GOAWAY:
    /// [`Error::Unsupported`].
    pub async fn goaway(&self, uri: impl Into<String>) -> Result<(), Error> {
        if !self.version.has_goaway() {
            return Err(Error::Unsupported);
        }
        let stream = (self.goaway)(uri.into()).await?;
        *self.goaway_stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
        Ok(())
    }

    /// Waits until the session ends, and says why.
    pub async fn closed(&self) -> Error {
        self.events.closed().await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        (self.close)(&Error::Cancel);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("version", &self.version).finish()
    }
}

/// Which end of the connection we are, and what we know of the peer's
/// SETUP (-05+).
enum Side {
    Client(PeerSetup),
    Server(PeerSetup),
}

impl Side {
    fn peer(&self) -> PeerSetup {
        match self {
            Side::Client(peer) | Side::Server(peer) => peer.clone(),
        }
    }
}

/// The Path parameter for a raw QUIC URL: its path and query.
fn setup_path(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// The -01/02 session stream that stays open after SETUP.
type SessionStream<T> = (
    Writer<<T as Transport>::SendStream>,
    Reader<<T as Transport>::RecvStream>,
);

/// The version fixed by ALPN / WebTransport protocol, or `None` for the
/// SETUP path.
fn negotiated<T: Transport>(transport: &T) -> Result<Option<Version>, Error> {
    match transport.protocol() {
        None | Some(SETUP_ALPN) => Ok(None),
        Some(protocol) => match Version::from_alpn(protocol) {
            Some(version) => Ok(Some(version)),
            None => {
                tracing::debug!(protocol, "unsupported protocol");
                Err(Error::UnknownAlpn)
            }
        },
    }
}

async fn setup_client<T: Transport>(transport: &T) -> Result<(Version, Option<SessionStream<T>>), Error> {
    let (send, recv) = transport.open_bi().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let mut reader = Reader::new(recv);
    let setup = ClientSetup {
        versions: SETUP_VERSIONS.iter().map(|v| v.code()).collect(),
        parameters: Parameters::new(),
    };
    writer
        .encode(|b| setup.encode(b))
        .await
        .map_err(|e| e.error().clone())?;
    let reply = reader
        .decode_required(ServerSetup::decode)
        .await
        .map_err(|e| e.error().clone())?;
    let version = Version::from_code(reply.version)
        .filter(|v| SETUP_VERSIONS.contains(v))
        .ok_or(Error::Version)?;
    Ok((version, Some((writer, reader))))
}

async fn setup_server<T: Transport>(transport: &T) -> Result<(Version, Option<SessionStream<T>>), Error> {
    let (send, recv) = transport.accept_bi().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let mut reader = Reader::new(recv);
    let kind = reader
        .decode_required(SetupStream::decode)
        .await
        .map_err(|e| e.error().clone())?;
    let setup = match kind {
        StreamType::Known(SetupStream::Compat) => reader
            .decode_required(ClientSetup::decode_after_type)
            .await
            .map_err(|e| e.error().clone())?,
        // moq-lite-02's native SESSION_CLIENT is not used by deployed peers.
        StreamType::Known(SetupStream::Session) => return Err(Error::Unsupported),
        StreamType::Unknown(_) => return Err(Error::UnexpectedStream),
    };
    let version = setup.pick_lite(&SETUP_VERSIONS).ok_or(Error::Version)?;
    let reply = ServerSetup {
        version: version.code(),
        parameters: Parameters::new(),
    };
    writer
        .encode(|b| reply.encode(b))
        .await
        .map_err(|e| e.error().clone())?;
    Ok((version, Some((writer, reader))))
}

/// What the run loop drives.
struct Halves<T: Transport> {
    publisher: Publisher<T>,
    subscriber: Option<Subscriber<T>>,
    goaway: GoawayFlag,
    /// Protocol violations reported by tasks outside the run loop's set.
    fatal: Fatal,
    /// -05+: our SETUP to send, and where the peer's goes.
    setup: Option<(OurSetup, PeerSetup)>,
}

/// The session's task: [`run`], then closing the transport with the reason
/// and telling the [`Session`] handle.
///
/// The task lives as long as the session, so it holds the halves once and
/// [`run`] borrows them, rather than each layer keeping its own copy (they
/// were most of an idle session's task). Not an async fn: one of those
/// keeps each argument twice (as passed, and rebound inside), an `async
/// move` block only as captured.
#[allow(clippy::manual_async_fn)]
fn drive<T: Transport, U: Transport>(
    transport: T,
    version: Version,
    mut halves: Halves<T>,
    mut session_stream: Option<Box<SessionStream<U>>>,
    // Ends the handle's wait with the reason, or with `Closed` if this
    // task panics.
    closed: events::CloseOnDrop,
    nothing: OriginProducer,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        // Serves the peer "nothing" when we publish nothing (see `start`).
        let _nothing = &nothing;
        let err = run::<T, U>(&transport, version, &mut halves, &mut session_stream).await;
        tracing::debug!(%err, "session closed");
        transport.close(err.code(), &err.to_string());
        closed.0.close(err);
    }
}

/// Accepts the peer's streams and runs the halves until something fatal
/// happens; returns why the session ended.
/// `U` is the unwrapped transport, on which the SETUP path's session stream
/// was opened before the session began.
async fn run<T: Transport, U: Transport>(
    transport: &T,
    version: Version,
    halves: &mut Halves<T>,
    session_stream: &mut Option<Box<SessionStream<U>>>,
) -> Error {
    let mut tasks: JoinSet<Step> = JoinSet::new();
    let peer = halves.setup.as_ref().map(|(_, peer)| peer.clone());
    if let Some((ours, _)) = halves.setup.take() {
        let transport = transport.clone();
        // First, so that the peer (a server waits for it) can start.
        tasks.spawn(done(async move {
            handshake::send_setup(&transport, version, ours)
                .await
                .map_err(StreamError::Closed)
        }));
    }
    // Datagrams carry groups from -05 on; a transport without them stops this.
    let mut datagrams = version.has_timestamps() && halves.subscriber.is_some();
    if let Some(subscriber) = &halves.subscriber {
        tasks.spawn(done(subscriber.clone().run_announce()));
    }
    if let Some((writer, reader)) = session_stream.take().map(|stream| *stream) {
        tasks.spawn(done(serve_session_stream::<U>(version, writer, reader)));
    }
    let Halves {
        publisher,
        subscriber,
        goaway,
        fatal,
        ..
    } = halves;
    loop {
        // The accept futures are boxed: this task lives as long as the
        // session, and its state would otherwise hold both inline (several
        // KiB per idle session).
        tokio::select! {
            accepted = Box::pin(transport.accept_bi()) => match accepted {
                Ok((send, recv)) => {
                    let stream = (Writer::new(send), Reader::new(recv));
                    tasks.spawn(serve_bi(version, publisher.clone(), goaway.clone(), stream));
                }
                Err(err) => return transport_error(err),
            },
            accepted = Box::pin(transport.accept_uni()) => match accepted {
                Ok(recv) => {
                    tasks.spawn(done(serve_uni(version, subscriber.clone(), peer.clone(), Reader::new(recv))));
                }
                Err(err) => return transport_error(err),
            },
            datagram = Box::pin(transport.recv_datagram()), if datagrams => match (datagram, &*subscriber) {
                (Ok(datagram), Some(subscriber)) => subscriber.recv_datagram(datagram),
                _ => datagrams = false,
            },
            err = fatal.wait() => {
                tracing::debug!(%err, "protocol violation");
                return err;
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => match joined {
                Ok(Err(StreamError::Protocol(err))) => {
                    tracing::debug!(%err, "protocol violation");
                    return err;
                }
                Ok(Err(StreamError::Closed(err))) => tracing::trace!(%err, "stream closed"),
                Ok(Ok(Some(rest))) => {
                    tasks.spawn(done(rest));
                }
                Ok(Ok(None)) => {}
                Err(join) if join.is_panic() => {
                    tracing::error!("session task panicked");
                    return Error::ProtocolViolation;
                }
                Err(_) => {}
            },
        }
    }
}

/// The rest of a stream's work, once its type is known: run as a task of
/// its own, so that the first task (sized for reading the type, and holding
/// what any kind of stream needs) is freed rather than kept beside it for
/// the stream's life. An Announce stream lives as long as the session.
type Rest = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StreamError>> + Send>>;

/// What a task of the run loop ends with: done, or [`Rest`] to run next.
type Step = Result<Option<Rest>, StreamError>;

/// Reads a bidirectional stream's type and hands back what serves it.
// Not an async fn, so that the task keeps its arguments once (see `drive`).
#[allow(clippy::manual_async_fn)]
fn serve_bi<T: Transport>(
    version: Version,
    publisher: Publisher<T>,
    goaway: GoawayFlag,
    (mut writer, mut reader): (Writer<T::SendStream>, Reader<T::RecvStream>),
) -> impl std::future::Future<Output = Step> {
    async move {
        let kind = reader
            .decode_required(|b| ControlStream::decode(b, version))
            .await?;
        let kind = match kind {
            StreamType::Known(kind) => kind,
            StreamType::Unknown(code) => {
                // Extensions are probed with new stream types: reset just this one.
                tracing::debug!(code, "unknown stream type");
                writer.reset(Error::UnexpectedStream.code());
                reader.stop(Error::UnexpectedStream.code());
                return Ok(None);
            }
        };
        let rest: Rest = match kind {
            ControlStream::Goaway => {
                let msg = reader.decode_required(|b| Goaway::decode(b, version)).await?;
                tracing::info!(uri = %msg.uri, "peer is going away");
                goaway.set();
                // The peer finishes the stream when it is ready to terminate.
                reader.finished().await?;
                return Err(StreamError::Protocol(Error::Cancel));
            }
            ControlStream::Session => return Err(StreamError::Protocol(Error::UnexpectedStream)),
            // Each its own box, so that each stream's task is the size of
            // what it runs rather than of the largest of them.
            ControlStream::Announce => Box::pin(publisher.serve_announce(writer, reader)),
            ControlStream::Subscribe => Box::pin(publisher.serve_subscribe(writer, reader)),
            ControlStream::Fetch => Box::pin(publisher.serve_fetch(writer, reader)),
            ControlStream::Probe => Box::pin(publisher.serve_probe(writer, reader)),
            ControlStream::Track => Box::pin(publisher.serve_track(writer, reader)),
        };
        Ok(Some(rest))
    }
}

/// A task of the run loop that leaves nothing to run next.
fn done(
    task: impl std::future::Future<Output = Result<(), StreamError>>,
) -> impl std::future::Future<Output = Step> {
    use futures::FutureExt;
    task.map(|result| result.map(|()| None))
}

async fn serve_uni<T: Transport>(
    version: Version,
    subscriber: Option<Subscriber<T>>,
    peer: Option<PeerSetup>,
    mut reader: Reader<T::RecvStream>,
) -> Result<(), StreamError> {
    let kind = reader.decode_required(|b| DataStream::decode(b, version)).await?;
    match (kind, subscriber) {
        (StreamType::Known(DataStream::Setup), _) => {
            let setup = handshake::read_setup_message(&mut reader, version).await?;
            tracing::debug!(?setup, "peer setup");
            match peer {
                Some(peer) => peer.set(setup).map_err(StreamError::Protocol),
                None => Err(StreamError::Protocol(Error::UnexpectedStream)),
            }
        }
        (StreamType::Known(DataStream::Group), Some(subscriber)) => subscriber.recv_group(reader).await,
        (StreamType::Known(DataStream::Group), None) => Err(StreamError::Protocol(Error::UnexpectedStream)),
        (StreamType::Unknown(code), _) => {
            tracing::debug!(code, "unknown stream type");
            reader.stop(Error::UnexpectedStream.code());
            Ok(())
        }
    }
}

/// The -01/02 session stream: SESSION_UPDATE messages until it closes, which
/// ends the session.
async fn serve_session_stream<T: Transport>(
    version: Version,
    _writer: Writer<T::SendStream>,
    mut reader: Reader<T::RecvStream>,
) -> Result<(), StreamError> {
    while let Some(update) = reader.decode(|b| SessionUpdate::decode(b, version)).await? {
        tracing::trace!(?update, "session update");
    }
    Err(StreamError::Protocol(Error::Closed))
}

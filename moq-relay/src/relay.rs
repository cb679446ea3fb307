//! The relay: one origin shared by every session.
//!
//! A session's URL path is its root. What a client publishes lands in the
//! shared origin under that root; what it may read is the origin seen from
//! the same root. Fan-out, deduplication and late join come from the model:
//! the first downstream subscriber of a track makes the publisher's session
//! subscribe upstream once, every other subscriber reads the same cache, and
//! the upstream subscription ends when the last one leaves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use moq_lite::SessionConfig;
use moq_transport_compat::Session;

use crate::cluster::ClusterConfig;
use moq_lite::endpoint::{
    Accepted, Incoming, QuicConfig, QuicSession, Server, ServerConfig, ServerTls, Transport, websocket,
};
use moq_lite::model::{OriginConsumer, OriginProducer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::{AuthConfig, Authorizer};
use crate::config::Config;
use crate::metrics::{Live, Metrics};

/// State every session and the HTTP side share.
pub(crate) struct Shared {
    pub origin: OriginProducer,
    /// This relay's hop ID, stamped on every broadcast it announces.
    pub hop_id: u64,
    /// Broadcasts one session may announce at once.
    pub max_announced: usize,
    pub auth: Authorizer,
    pub metrics: Metrics,
    pub fingerprints: Vec<String>,
    /// Broadcasts active now, by path.
    pub active: Mutex<HashMap<moq_lite::model::Path, moq_lite::model::BroadcastConsumer>>,
    /// Open sessions, for GOAWAY at shutdown and live byte counts.
    pub sessions: Mutex<HashMap<u64, Open>>,
}

/// One open session.
pub(crate) struct Open {
    pub session: Arc<Session>,
    /// Bytes (received, sent) on its connection so far.
    pub bytes: ByteCounter,
}

/// Reads a connection's byte counts (received, sent): QUIC's UDP payload,
/// or a WebSocket's TCP bytes.
pub(crate) type ByteCounter = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

impl Shared {
    /// What the HTTP side may show: everything on an open relay, else only
    /// the public prefixes (HTTP requests carry no token).
    pub fn http_origin(&self) -> Option<OriginConsumer> {
        let consumer = self.origin.consume();
        if self.auth.is_open() {
            return Some(consumer);
        }
        consumer.scope(&self.auth.config().public)
    }

    /// Byte counts of the open sessions.
    pub fn live(&self) -> Live {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = Live::default();
        for open in sessions.values() {
            let (received, sent) = (open.bytes)();
            live.bytes_in += received;
            live.bytes_out += sent;
            live.sessions += open.session.stats().snapshot();
        }
        drop(sessions);
        let active: Vec<_> = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for broadcast in active {
            live.cache += broadcast.cache_stats();
        }
        live
    }
}

/// A bound relay, ready to [`run`](Relay::run).
pub struct Relay {
    config: Config,
    server: Server,
    http: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl Relay {
    /// Binds the QUIC and HTTP sockets and loads (or generates) certificates.
    pub async fn bind(config: Config) -> anyhow::Result<Relay> {
        if config.tls_cert.len() != config.tls_key.len() {
            anyhow::bail!("--tls-cert and --tls-key must be given the same number of times");
        }
        let mut tls = ServerTls {
            pem: config
                .tls_cert
                .iter()
                .zip(&config.tls_key)
                .map(|(chain, key)| moq_lite::endpoint::PemFiles {
                    chain: chain.clone(),
                    key: key.clone(),
                })
                .collect(),
            generate: config.tls_generate.clone(),
            ..Default::default()
        };
        if tls.pem.is_empty() && tls.generate.is_empty() {
            tls.generate = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        }
        let quic = QuicConfig {
            keep_alive: Some(config.quic_keep_alive),
            idle_timeout: Some(config.quic_idle_timeout),
            max_bidi_streams: config.quic_max_bidi_streams,
            max_uni_streams: config.quic_max_uni_streams,
            ..Default::default()
        };
        let server = Server::bind(ServerConfig {
            bind: config.bind,
            tls,
            quic,
            // moq-lite and the IETF drafts alike, on one port.
            protocols: moq_transport_compat::supported_protocols(),
            ..Default::default()
        })?;
        let http = match config.http_bind.trim() {
            "" => None,
            addr => {
                let addr: SocketAddr = addr
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--http-bind {addr}: {e}"))?;
                Some(bind_tcp(addr).await?)
            }
        };
        let auth = AuthConfig::load(config.auth_key.as_deref(), &config.auth_public)?;
        if auth.is_open() {
            tracing::warn!("no --auth-key: anyone may publish and subscribe anything");
        }
        let hop_id = match config.hop_id {
            Some(id) if (1..1 << 53).contains(&id) => id,
            Some(id) => anyhow::bail!("--hop-id {id} is outside [1, 2^53)"),
            None => crate::cluster::random_hop_id(),
        };
        let shared = Arc::new(Shared {
            hop_id,
            max_announced: config.max_announced,
            auth: Authorizer::new(auth),
            origin: OriginProducer::with_cache(config.cache()),
            metrics: Metrics::default(),
            fingerprints: server.fingerprints(),
            sessions: Mutex::default(),
            active: Mutex::default(),
        });
        Ok(Relay {
            config,
            server,
            http,
            shared,
        })
    }

    /// The UDP address sessions connect to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.server.local_addr()
    }

    /// The TCP address of the HTTP side, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Hex SHA-256 fingerprints of the certificates.
    pub fn fingerprints(&self) -> &[String] {
        &self.shared.fingerprints
    }

    /// This relay's hop ID in a cluster.
    pub fn hop_id(&self) -> u64 {
        self.shared.hop_id
    }

    /// A handle on the QUIC endpoint; [`Server::close`] on it drops every
    /// connection at once (what a crash looks like to peers, minus the wait).
    pub fn server(&self) -> Server {
        self.server.clone()
    }

    /// The shared origin (to publish or inspect in-process).
    pub fn origin(&self) -> &OriginProducer {
        &self.shared.origin
    }

    /// Serves until `shutdown` completes, then sends GOAWAY to every session
    /// and waits (at most the configured drain time) for them to leave.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let Relay {
            config,
            server,
            http,
            shared,
        } = self;
        tracing::info!(addr = %server.local_addr()?, "listening for QUIC and WebTransport");
        tracing::info!(sha256 = %shared.fingerprints.join(","), "certificate");
        let cluster = ClusterConfig {
            peers: config
                .cluster_connect
                .iter()
                .map(|peer| {
                    peer.parse()
                        .map_err(|e| anyhow::anyhow!("--cluster-connect {peer}: {e}"))
                })
                .collect::<anyhow::Result<_>>()?,
            token: match &config.cluster_token {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--cluster-token {}: {e}", path.display()))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            },
            disable_verify: config.cluster_tls_disable_verify,
        };
        // Everything the relay runs lives in these sets, so that dropping
        // `run` (a crash in tests, a cancelled task) stops all of it and
        // releases the sockets.
        let mut background = JoinSet::new();
        let admitted = Arc::new(AtomicUsize::new(0));
        // WebSocket sessions come from the HTTP side, upgraded, each with
        // its slot already taken.
        let (upgrades, mut upgraded) = tokio::sync::mpsc::channel(64);
        if let Some(listener) = http {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "listening for HTTP and WebSocket");
            }
            let context = crate::http::Context {
                shared: shared.clone(),
                subprotocols: websocket::subprotocols(&moq_transport_compat::supported_protocols()),
                admit: {
                    let admitted = admitted.clone();
                    let max = config.max_sessions;
                    Box::new(move || Slot::take(&admitted, max))
                },
                sessions: upgrades,
            };
            background.spawn(crate::http::serve(listener, Arc::new(context)));
        } else {
            drop(upgrades);
        }
        background.spawn(count_broadcasts(shared.clone()));
        for peer in &cluster.peers {
            background.spawn(crate::cluster::link(
                peer.clone(),
                cluster.clone(),
                shared.clone(),
                shared.hop_id,
            ));
        }
        let mut sessions = JoinSet::new();

        tokio::pin!(shutdown);
        let mut next_id = 0u64;
        loop {
            tokio::select! {
                incoming = server.accept() => {
                    let Some(incoming) = incoming else { break };
                    // Counted from the first packet, handshakes and setups included.
                    let Some(slot) = Slot::take(&admitted, config.max_sessions) else {
                        shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
                        incoming.refuse();
                        continue;
                    };
                    next_id += 1;
                    // Boxed: an async fn keeps its arguments for its whole
                    // life, and this one lives as long as the session.
                    sessions.spawn(serve_quic(Box::new(incoming), shared.clone(), next_id, slot));
                }
                Some(upgrade) = upgraded.recv() => {
                    next_id += 1;
                    sessions.spawn(serve_websocket(upgrade, shared.clone(), next_id));
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                _ = &mut shutdown => break,
            }
        }

        tracing::info!("shutting down: GOAWAY to every session");
        let open: Vec<Arc<Session>> = {
            let open = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
            open.values().map(|o| o.session.clone()).collect()
        };
        // All at once, and all within the drain time: a peer that grants no
        // stream for the GOAWAY must not hold up the others or the exit.
        let mut goodbyes = JoinSet::new();
        for session in open {
            goodbyes.spawn(async move {
                let _ = session.goaway("").await;
                session.closed().await;
            });
        }
        // Not `join_all`: it panics if the runtime cancels a task meanwhile.
        let drained = async { while goodbyes.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(config.shutdown_drain, drained).await;
        server.close();
        background.shutdown().await;
        sessions.shutdown().await;
        Ok(())
    }
}

/// One admitted connection, counted against `max_sessions` until dropped.
/// A connection the relay gives up on releases its slot before the peer is
/// told, so a client that reconnects the moment it hears the close is
/// judged against the freed slot.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(admitted: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(admitted.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a connection may take from its handshake to a running session
/// (a SETUP exchange that never comes must not hold a slot forever).
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds TCP, falling back from `[::]` to `0.0.0.0` where IPv6 is missing.
async fn bind_tcp(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(err) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            tracing::debug!(%err, "no IPv6; binding HTTP on IPv4");
            Ok(TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port()))).await?)
        }
        Err(err) => Err(anyhow::anyhow!("cannot bind HTTP on {addr}: {err}")),
    }
}

/// Keeps the set of active broadcasts (for the gauge and cache sizes).
async fn count_broadcasts(shared: Arc<Shared>) {
    let mut announced = shared.origin.consume();
    while let Some(change) = announced.announced().await {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        match change.broadcast {
            Some(broadcast) => active.insert(change.path, broadcast),
            None => active.remove(&change.path),
        };
        shared
            .metrics
            .broadcasts_active
            .store(active.len() as u64, Ordering::Relaxed);
    }
}

/// The URL path and `?jwt=` token of a session: from its request (the
/// WebTransport CONNECT or the WebSocket upgrade: `path`, `query`), or,
/// over raw QUIC (no request line), from the PATH the client sent in SETUP
/// (IETF drafts, and the moq-lite SETUP path), which carries the path and
/// query of the URL it dialled. Without either (moq-lite-03/04 over raw
/// QUIC) the root is `/` and the session is anonymous.
fn path_and_token(
    request: Option<(&str, Option<&str>)>,
    setup_path: Option<&str>,
) -> (String, Option<String>) {
    let jwt = |query: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "jwt")
            .map(|(_, v)| v.into_owned())
    };
    if let Some((path, query)) = request {
        return (path.to_string(), query.and_then(jwt));
    }
    match setup_path {
        Some(path) => {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let path = if path.is_empty() { "/" } else { path };
            (path.to_string(), jwt(query))
        }
        None => ("/".into(), None),
    }
}

/// Where a session came from, for its root, token and logs.
struct Link {
    remote: SocketAddr,
    transport: Transport,
    /// The request's path and query, where there was a request.
    request: Option<(String, Option<String>)>,
    bytes: ByteCounter,
}

async fn serve_quic(incoming: Box<Incoming>, shared: Arc<Shared>, id: u64, slot: Slot) {
    let remote = incoming.remote();
    // Setup futures are boxed: a task's state is as large as the largest
    // future it ever awaits, and an idle session would carry the QUIC and
    // WebTransport handshakes' size for its whole life otherwise.
    let accepted = match Box::pin(unbox(incoming).accept()).await {
        Ok(accepted) => accepted,
        Err(err) => {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, %err, "handshake failed");
            return;
        }
    };
    let (session, link) = quic_link(accepted, remote);
    serve(session, link, shared, id, slot).await
}

/// The session of an accepted QUIC connection, boxed for [`serve`], and
/// where it came from. A function of its own, so that `accepted` is gone
/// (not kept beside the running session) when it returns.
fn quic_link(accepted: Accepted, remote: SocketAddr) -> (Box<QuicSession>, Link) {
    let connection = (**accepted.session).clone();
    let link = Link {
        remote,
        transport: accepted.transport,
        request: accepted
            .session
            .request()
            .map(|r| (r.url.path().to_string(), r.url.query().map(str::to_string))),
        bytes: Box::new(move || {
            let stats = connection.stats();
            (stats.udp_rx.bytes, stats.udp_tx.bytes)
        }),
    };
    (Box::new(accepted.session), link)
}

async fn serve_websocket(upgrade: crate::http::Upgrade, shared: Arc<Shared>, id: u64) {
    let remote = upgrade.remote;
    let io = match upgrade.io.await {
        Ok(io) => io,
        Err(err) => {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, %err, "WebSocket upgrade failed");
            return;
        }
    };
    let counts = websocket::ByteCounts::default();
    let io = websocket::Counted::new(hyper_util::rt::TokioIo::new(io), counts.clone());
    let session = Box::pin(websocket::accept(io, upgrade.subprotocol.as_deref())).await;
    // A refusal must not overtake the transport parameters (see
    // `ByteCounts::written_once`); they go out at once, so the bound only
    // matters for a peer that never reads.
    if tokio::time::timeout(SETUP_TIMEOUT, counts.written_once())
        .await
        .is_err()
    {
        shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%remote, "WebSocket peer never took our transport parameters");
        return;
    }
    let link = Link {
        remote,
        transport: Transport::WebSocket,
        request: Some((upgrade.path, upgrade.query)),
        bytes: Box::new(move || (counts.received(), counts.sent())),
    };
    serve(Box::new(session), link, shared, id, upgrade.slot).await
}

/// SETUP and authorization: the running session and what the token
/// allows, or `None` once refused (the slot is then already released, and
/// the peer told why).
async fn admit<T: web_transport_trait::Session>(
    transport: T,
    link: &Link,
    shared: &Shared,
    slot: Slot,
) -> Option<(Arc<Session>, crate::auth::Access, Slot)> {
    let remote = link.remote;
    let handshake = tokio::time::timeout(SETUP_TIMEOUT, moq_transport_compat::handshake(transport.clone()));
    let handshake = match handshake.await.unwrap_or(Err(moq_lite::Error::Timeout)) {
        Ok(handshake) => handshake,
        Err(err) => {
            drop(slot);
            // Say why, rather than leaving QUIC to close with 0.
            transport.close(err.code(), &err.to_string());
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, %err, "session refused");
            return None;
        }
    };
    let request = link.request.as_ref().map(|(p, q)| (p.as_str(), q.as_deref()));
    let (path, token) = path_and_token(request, handshake.path());
    let access = match shared.auth.verify(&path, token.as_deref(), SystemTime::now()) {
        Ok(access) => access,
        Err(err) => {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%remote, %path, %err, "unauthorized");
            drop(slot);
            handshake.refuse(err.to_moq());
            return None;
        }
    };
    let publish = shared
        .origin
        .consume()
        .with_root(access.root.clone())
        .and_then(|o| o.scope(&access.get));
    let subscribe = shared
        .origin
        .with_root(access.root.clone())
        .and_then(|o| o.scope(&access.put));
    let config = SessionConfig {
        publish,
        subscribe,
        hop_id: Some(shared.hop_id),
        max_announced: Some(shared.max_announced),
        ..Default::default()
    };
    match handshake.start(config).await {
        Ok(session) => Some((Arc::new(session), access, slot)),
        Err(err) => {
            drop(slot);
            // Say why, rather than leaving QUIC to close with 0.
            transport.close(err.code(), &err.to_string());
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, %err, "session refused");
            None
        }
    }
}

/// The value out of `boxed`, the box freed now: moving out with `*boxed`
/// would free it only when `boxed` goes out of scope, at the end of the
/// session.
#[allow(clippy::boxed_local)] // the box is the point: it is freed here
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// Runs one session, whatever its transport: SETUP, authorization, then
/// the session until it ends.
///
/// The transport comes boxed: an async fn's arguments stay in its state
/// for as long as it runs, and a transport is several hundred bytes that
/// the running session (which has its own handle) no longer needs here.
async fn serve<T: web_transport_trait::Session>(
    transport: Box<T>,
    link: Link,
    shared: Arc<Shared>,
    id: u64,
    slot: Slot,
) {
    let remote = link.remote;
    // Boxed: the setup's futures are large, and this task lives as long as
    // the session; only what the running session needs stays inline.
    let Some((session, access, _slot)) = Box::pin(admit(unbox(transport), &link, &shared, slot)).await else {
        return;
    };
    tracing::info!(%remote, transport = %link.transport, version = ?session.version(), root = %access.root, "session");
    shared.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
    shared.metrics.count_transport(link.transport);
    shared.metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
    shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        Open {
            session: session.clone(),
            bytes: link.bytes,
        },
    );

    // The token's expiry holds for the whole session.
    let expiry = async {
        match access
            .expires
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
        {
            Some(left) => tokio::time::sleep(left).await,
            None if access.expires.is_some() => {}
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        reason = session.closed() => reason,
        _ = expiry => {
            tracing::info!(%remote, "token expired");
            session.close(moq_lite::Error::Unauthorized);
            moq_lite::Error::Unauthorized
        }
    };
    tracing::info!(%remote, %reason, "session ended");
    // Totals move from live to closed under the sessions lock, which
    // `Shared::live` takes too, so counters never appear to go back.
    let mut open = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let (received, sent) = open.remove(&id).map(|o| (o.bytes)()).unwrap_or_default();
    shared.metrics.sessions_active.fetch_sub(1, Ordering::Relaxed);
    shared
        .metrics
        .closed_bytes_in
        .fetch_add(received, Ordering::Relaxed);
    shared.metrics.closed_bytes_out.fetch_add(sent, Ordering::Relaxed);
    let mut carried = session.stats().snapshot();
    // A gauge, not a count of what was carried.
    carried.subscriptions = 0;
    *shared
        .metrics
        .closed_sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner()) += carried;
    drop(open);
}

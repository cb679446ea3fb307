//! The relay's HTTP side, on TCP beside QUIC's UDP port: a few GET
//! endpoints, and MoQ over WebSocket (QMux) on every other path.
//!
//! | path | answer |
//! |---|---|
//! | `/certificate.sha256` | hex SHA-256 of the certificate (for `http://` dev URLs and browsers) |
//! | `/health` | `ok` |
//! | `/announced[/prefix]` | live broadcast paths under the prefix, one per line |
//! | `/fetch/<broadcast>/<track>[?group=N]` | the frames of the latest (or given) group, concatenated |
//! | `/metrics` | Prometheus text |
//! | anything else, as a WebSocket upgrade | a MoQ session rooted at that path (`?jwt=` carries the token), see [`moq_lite::endpoint::websocket`] |
//!
//! hyper serves HTTP/1.1, one request per connection, the request head
//! bounded in size and time. An upgrade takes a session slot (the same
//! `max_sessions` as QUIC) before it is answered, and the session then runs
//! with the relay's others.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use moq_lite::endpoint::websocket;
use moq_lite::model::{FETCH_WAIT, OriginConsumer, Path, Track};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::relay::{Shared, Slot};

/// The largest request head accepted (hyper's smallest buffer).
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/fetch` waits for a live group to finish before answering with
/// what it has.
const FINISH_WAIT: Duration = Duration::from_secs(2);

/// Requests served at once; more wait in the kernel's accept queue.
/// WebSocket sessions leave this count once upgraded.
const MAX_CONNECTIONS: usize = 256;
/// How long writing a response may take (a client that does not read).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// An upgraded WebSocket connection, handed to the relay's session loop.
pub(crate) struct Upgrade {
    /// Resolves to the connection once the 101 response went out.
    pub io: hyper::upgrade::OnUpgrade,
    /// The subprotocol answered (`None`: the client offered none).
    pub subprotocol: Option<String>,
    /// The request path, the session root.
    pub path: String,
    /// The request query (`jwt=` carries the token).
    pub query: Option<String>,
    /// The client's address.
    pub remote: SocketAddr,
    /// The session's admission.
    pub slot: Slot,
}

/// What the HTTP side needs from the relay.
pub(crate) struct Context {
    pub shared: Arc<Shared>,
    /// Subprotocols accepted, preferred first.
    pub subprotocols: Vec<String>,
    /// Takes a session slot, or `None` at the relay's limit.
    pub admit: Box<dyn Fn() -> Option<Slot> + Send + Sync>,
    /// Where upgraded connections go.
    pub sessions: mpsc::Sender<Upgrade>,
}

/// Serves HTTP on `listener` until the task is dropped (which drops every
/// request in progress too; upgraded sessions belong to the relay).
pub(crate) async fn serve(listener: TcpListener, context: Arc<Context>) {
    let mut requests = tokio::task::JoinSet::new();
    loop {
        // At the cap, finish one before taking another.
        if requests.len() >= MAX_CONNECTIONS {
            requests.join_next().await;
            continue;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = requests.join_next(), if !requests.is_empty() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, say: back off rather than spin.
                tracing::warn!(%err, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        requests.spawn(async move {
            let service = hyper::service::service_fn(|request| {
                let context = context.clone();
                async move { Ok::<_, Infallible>(handle(request, remote, &context).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .max_buf_size(MAX_REQUEST)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            // Bounds a request's whole life; an upgraded connection has left
            // by the time its 101 is written, so the session is not bounded.
            match tokio::time::timeout(
                REQUEST_TIMEOUT + FETCH_WAIT + FINISH_WAIT + RESPONSE_TIMEOUT,
                connection,
            )
            .await
            {
                Ok(Err(err)) => tracing::debug!(%err, "http request failed"),
                Err(_) => tracing::debug!("http request timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.into().into_bytes())
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

async fn handle(request: Request<Incoming>, remote: SocketAddr, context: &Context) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let shared = &context.shared;
    let origin = shared.http_origin();
    let endpoint = matches!(path.as_str(), "/certificate.sha256" | "/health" | "/metrics")
        || path.starts_with("/announced")
        || path.starts_with("/fetch/");
    if !endpoint && is_upgrade(&request) {
        return upgrade(request, remote, context);
    }
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match path.as_str() {
        "/certificate.sha256" => match shared.fingerprints.first() {
            Some(hash) => text(StatusCode::OK, hash.clone()),
            None => text(StatusCode::NOT_FOUND, "no certificate\n"),
        },
        "/health" => text(StatusCode::OK, "ok\n"),
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(shared.live()).into_bytes(),
        ),
        _ => {
            if let Some(prefix) = path.strip_prefix("/announced") {
                return announced(origin, prefix);
            }
            if let Some(rest) = path.strip_prefix("/fetch/") {
                let group = query
                    .as_deref()
                    .unwrap_or_default()
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("group="))
                    .and_then(|g| g.parse().ok());
                return fetch(origin, rest, group).await;
            }
            text(StatusCode::NOT_FOUND, "not found\n")
        }
    }
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
fn is_upgrade<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers a WebSocket upgrade (RFC 6455 section 4.2.2) and hands the
/// connection to the relay once the 101 is out.
fn upgrade(mut request: Request<Incoming>, remote: SocketAddr, context: &Context) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| connection_upgrade)
    else {
        return text(StatusCode::BAD_REQUEST, "bad WebSocket upgrade\n");
    };
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade is a GET\n");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut response = text(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let offered = websocket::offered_subprotocols(
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // No offer at all: the legacy framing, as the reference relay does.
    let subprotocol = match offered.is_empty() {
        true => None,
        false => match websocket::choose_subprotocol(offered.iter().copied(), &context.subprotocols) {
            Some(chosen) => Some(chosen.to_string()),
            None => {
                context
                    .shared
                    .metrics
                    .sessions_refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(%remote, ?offered, "no common WebSocket subprotocol");
                return text(StatusCode::BAD_REQUEST, "no supported protocol\n");
            }
        },
    };
    let accept = websocket::accept_key(key.as_bytes());
    let Some(slot) = (context.admit)() else {
        context
            .shared
            .metrics
            .sessions_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many sessions\n");
    };
    let upgrade = Upgrade {
        io: hyper::upgrade::on(&mut request),
        subprotocol: subprotocol.clone(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        remote,
        slot,
    };
    if context.sessions.try_send(upgrade).is_err() {
        // The relay is shutting down, or sessions arrive faster than it
        // starts them.
        context
            .shared
            .metrics
            .sessions_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return text(StatusCode::SERVICE_UNAVAILABLE, "try again\n");
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(chosen) = subprotocol.and_then(|s| HeaderValue::from_str(&s).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, chosen);
    }
    response
}

fn announced(origin: Option<OriginConsumer>, prefix: &str) -> Response<Full<Bytes>> {
    let Ok(prefix) = Path::parse(prefix) else {
        return text(StatusCode::BAD_REQUEST, "invalid prefix\n");
    };
    let Some(mut origin) = origin.and_then(|o| o.scope(std::slice::from_ref(&prefix))) else {
        return text(StatusCode::OK, "");
    };
    let mut active = std::collections::BTreeSet::new();
    while let Some(announced) = origin.try_announced() {
        match announced.broadcast {
            Some(_) => active.insert(announced.path),
            None => active.remove(&announced.path),
        };
    }
    let mut body = String::new();
    for path in active {
        body.push_str(path.as_str());
        body.push('\n');
    }
    text(StatusCode::OK, body)
}

async fn fetch(origin: Option<OriginConsumer>, rest: &str, group: Option<u64>) -> Response<Full<Bytes>> {
    let not_found = || text(StatusCode::NOT_FOUND, "not found\n");
    let Some((broadcast, track)) = rest.rsplit_once('/') else {
        return not_found();
    };
    let Ok(broadcast) = Path::parse(broadcast) else {
        return text(StatusCode::BAD_REQUEST, "invalid broadcast path\n");
    };
    let Some(broadcast) = origin.and_then(|o| o.consume_broadcast(broadcast)) else {
        return not_found();
    };
    // A group asked for by number travels upstream as the start, so a
    // publisher that still holds it sends it even if this relay never had it.
    let Ok(mut track) = broadcast.subscribe_track_from(&Track::new(track), group) else {
        return not_found();
    };
    // A track fetched from upstream on demand needs a moment for its first group.
    let found = tokio::time::timeout(FETCH_WAIT, async {
        match group {
            // Held, or on its way from upstream (a backfill when the relay
            // already serves the track from a later group).
            Some(sequence) => track.wait_group(sequence).await,
            None => match track.latest_group() {
                Some(group) => Some(group),
                None => track.next_group().await.ok().flatten(),
            },
        }
    })
    .await;
    let Ok(Some(mut group)) = found else {
        return not_found();
    };
    let mut body = Vec::new();
    let _ = tokio::time::timeout(FINISH_WAIT, async {
        while let Ok(Some(frame)) = group.read_frame().await {
            body.extend_from_slice(&frame);
        }
    })
    .await;
    respond(StatusCode::OK, "application/octet-stream", body)
}

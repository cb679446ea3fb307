//! The relay's HTTP side: a few GET endpoints on TCP, beside QUIC's UDP port.
//!
//! | path | answer |
//! |---|---|
//! | `/certificate.sha256` | hex SHA-256 of the certificate (for `http://` dev URLs and browsers) |
//! | `/health` | `ok` |
//! | `/announced[/prefix]` | live broadcast paths under the prefix, one per line |
//! | `/fetch/<broadcast>/<track>[?group=N]` | the frames of the latest (or given) group, concatenated |
//! | `/metrics` | Prometheus text |
//!
//! Deliberately tiny HTTP/1.1: one request per connection, GET only, the
//! request head bounded in size and time, `Connection: close`.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use moq_lite::model::{OriginConsumer, Path, Track};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::relay::Shared;

/// The largest request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/fetch` waits for a live group to finish before answering with
/// what it has.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// Requests served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 256;
/// How long writing a response may take (a client that does not read).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP on `listener` until the task is dropped (which drops every
/// request in progress too).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
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
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: back off rather than spin.
                tracing::warn!(%err, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        requests.spawn(async move {
            match tokio::time::timeout(
                REQUEST_TIMEOUT + FETCH_WAIT * 2 + RESPONSE_TIMEOUT,
                handle(stream, &shared),
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

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
}

async fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let response = match head {
        Some(target) => route(&target, shared).await,
        None => Response::text("400 Bad Request", "bad request\n"),
    };
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(&response.body).await?;
    stream.shutdown().await
}

/// The target of a `GET` request, or `None` for anything else.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
            return Ok(match (parts.next(), parts.next()) {
                (Some("GET"), Some(target)) => Some(target.to_string()),
                _ => None,
            });
        }
        if buf.len() >= MAX_REQUEST || stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn route(target: &str, shared: &Shared) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let origin = shared.http_origin();
    match path {
        "/certificate.sha256" => match shared.fingerprints.first() {
            Some(hash) => Response::text("200 OK", hash.clone()),
            None => Response::text("404 Not Found", "no certificate\n"),
        },
        "/health" => Response::text("200 OK", "ok\n"),
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4",
            body: shared.metrics.render(shared.live()).into_bytes(),
        },
        _ => {
            if let Some(prefix) = path.strip_prefix("/announced") {
                return announced(origin, prefix);
            }
            if let Some(rest) = path.strip_prefix("/fetch/") {
                let group = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("group="))
                    .and_then(|g| g.parse().ok());
                return fetch(origin, rest, group).await;
            }
            Response::text("404 Not Found", "not found\n")
        }
    }
}

fn announced(origin: Option<OriginConsumer>, prefix: &str) -> Response {
    let Ok(prefix) = Path::parse(prefix) else {
        return Response::text("400 Bad Request", "invalid prefix\n");
    };
    let Some(mut origin) = origin.and_then(|o| o.scope(std::slice::from_ref(&prefix))) else {
        return Response::text("200 OK", "");
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
    Response::text("200 OK", body)
}

async fn fetch(origin: Option<OriginConsumer>, rest: &str, group: Option<u64>) -> Response {
    let not_found = || Response::text("404 Not Found", "not found\n");
    let Some((broadcast, track)) = rest.rsplit_once('/') else {
        return not_found();
    };
    let Ok(broadcast) = Path::parse(broadcast) else {
        return Response::text("400 Bad Request", "invalid broadcast path\n");
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
            Some(sequence) => loop {
                if let Some(group) = track.group(sequence) {
                    return Some(group);
                }
                match track.next_group().await {
                    Ok(Some(g)) if g.sequence() == sequence => return Some(g),
                    Ok(Some(_)) => continue,
                    _ => return None,
                }
            },
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
    let _ = tokio::time::timeout(FETCH_WAIT, async {
        while let Ok(Some(frame)) = group.read_frame().await {
            body.extend_from_slice(&frame);
        }
    })
    .await;
    Response {
        status: "200 OK",
        content_type: "application/octet-stream",
        body,
    }
}

//! Clustering: relays linked to each other with moq-lite itself.
//!
//! A relay given `--cluster-connect URL` dials that relay and keeps the link
//! up, reconnecting with exponential backoff. A link is an ordinary session
//! in both directions: each side publishes its whole origin to the other and
//! subscribes to the other's into its own. What makes it a cluster is the hop
//! ID every relay stamps on the broadcasts it announces (see
//! `moq_lite::SessionConfig::hop_id`):
//! - loops are cut: a relay asks its peers to exclude broadcasts that already
//!   went through it, and ignores any that slip through;
//! - the shortest route wins: the origin prefers the publication with the
//!   fewest hops, and keeps the others as backups that take over when it ends;
//! - one subscription per track per link: a link is one session, and the
//!   model deduplicates requests for the same track.
//!
//! When a link dies its session ends, and every broadcast learned through it
//! is withdrawn (within the QUIC idle timeout if the peer vanished silently).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use moq_lite::endpoint::{Client, ClientConfig, ClientTls};
use moq_lite::{Session, SessionConfig};
use url::Url;

use crate::relay::Shared;

/// First wait before redialing a lost link; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between redials.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A link that stayed up this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);

/// A random hop ID in `[1, 2^53)`: unique per relay process with
/// overwhelming odds, and within what JavaScript peers can decode.
pub fn random_hop_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    let id = hasher.finish() & ((1 << 53) - 1);
    id.max(1)
}

/// How to dial the other relays.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    pub peers: Vec<Url>,
    pub token: Option<String>,
    pub disable_verify: bool,
}

/// Keeps a link to `peer` up for as long as the task lives.
pub(crate) async fn link(peer: Url, config: ClusterConfig, shared: Arc<Shared>, hop_id: u64) {
    let (mut url, cost) = link_cost(&peer);
    if let Some(token) = &config.token {
        url.query_pairs_mut().append_pair("jwt", token);
    }
    let client = match Client::new(ClientConfig {
        tls: ClientTls {
            disable_verify: config.disable_verify,
            ..Default::default()
        },
        ..Default::default()
    }) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%peer, %err, "cannot create the cluster client");
            return;
        }
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = tokio::time::Instant::now();
        match dial(&client, &url, &shared, hop_id, cost).await {
            Ok(session) => {
                tracing::info!(%peer, "cluster link up");
                let reason = session.closed().await;
                tracing::warn!(%peer, %reason, "cluster link down");
            }
            Err(err) => tracing::debug!(%peer, %err, "cluster link failed"),
        }
        if started.elapsed() > STABLE {
            backoff = MIN_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A peer URL's `?cost=N` (the link's price for route choice, as the
/// reference relay takes it), and the URL without it.
fn link_cost(peer: &Url) -> (Url, Option<u64>) {
    let mut cost = None;
    let kept: Vec<(String, String)> = peer
        .query_pairs()
        .filter(|(k, v)| {
            if k == "cost" {
                cost = v.parse().ok();
                false
            } else {
                true
            }
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = peer.clone();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    (url, cost)
}

async fn dial(
    client: &Client,
    url: &Url,
    shared: &Shared,
    hop_id: u64,
    cost: Option<u64>,
) -> anyhow::Result<Session> {
    let connected = client.connect(url).await?;
    let config = SessionConfig {
        publish: Some(shared.origin.consume()),
        subscribe: Some(shared.origin.clone()),
        hop_id: Some(hop_id),
        max_announced: Some(shared.max_announced),
        link_cost: cost,
        ..Default::default()
    };
    Ok(Session::connect_with(connected.session, config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_comes_off_the_peer_url() {
        let (url, cost) = link_cost(&Url::parse("https://b.example:4443/?cost=5&x=1").unwrap());
        assert_eq!((url.as_str(), cost), ("https://b.example:4443/?x=1", Some(5)));
        let (url, cost) = link_cost(&Url::parse("https://b.example/").unwrap());
        assert_eq!((url.as_str(), cost), ("https://b.example/", None));
    }
}

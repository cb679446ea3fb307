//! `moq announced`: broadcasts as they come (`+path`) and go (`-path`).
//!
//! With `once`, it prints the broadcasts active now and exits. The relay
//! replays what is active as soon as the session starts, but moq-lite-03/04
//! do not mark the end of that replay; so the set is taken as complete once
//! announcements stop arriving for a quiet period (a few round trips,
//! restarted by each announcement), after waiting a little longer for the
//! first one.

use std::collections::BTreeSet;
use std::time::Duration;

use moq_lite::endpoint::Client;
use moq_lite::model::{OriginProducer, Path};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::connection::Connection;
use crate::error::explain;

/// Prints announcements under `prefix` to stdout.
pub async fn announced(connection: &Connection, prefix: Option<&str>, once: bool) -> anyhow::Result<()> {
    announced_to(connection, prefix, once, tokio::io::stdout()).await
}

/// Prints announcements under `prefix` to `output`.
pub async fn announced_to<W: AsyncWrite + Unpin>(
    connection: &Connection,
    prefix: Option<&str>,
    once: bool,
    mut output: W,
) -> anyhow::Result<()> {
    connection
        .with_client(async |client| print_announced(connection, client, prefix, once, &mut output).await)
        .await
}

/// Prints announcements through `client` (see [`announced_to`]).
async fn print_announced<W: AsyncWrite + Unpin>(
    connection: &Connection,
    client: &Client,
    prefix: Option<&str>,
    once: bool,
    output: &mut W,
) -> anyhow::Result<()> {
    let origin = OriginProducer::new();
    let live = connection.connect(client, None, Some(origin.clone())).await?;
    let prefix = Path::new(prefix.unwrap_or_default());
    let mut consumer = origin
        .consume()
        .scope(std::slice::from_ref(&prefix))
        .ok_or_else(|| anyhow::anyhow!("bad prefix `{prefix}`"))?;

    if once {
        let rtt = live.conn.rtt();
        let first_wait = (rtt * 6).max(Duration::from_millis(500));
        let quiet = (rtt * 3).max(Duration::from_millis(100));
        let mut active = BTreeSet::new();
        let mut wait = first_wait;
        loop {
            tokio::select! {
                next = consumer.announced() => match next {
                    Some(next) => {
                        match next.broadcast {
                            Some(_) => active.insert(next.path),
                            None => active.remove(&next.path),
                        };
                        wait = quiet;
                    }
                    None => break,
                },
                err = live.closed() => anyhow::bail!("lost the session: {}", explain(&err)),
                _ = tokio::time::sleep(wait) => break,
            }
        }
        // Anything already queued belongs to the same snapshot.
        while let Some(next) = consumer.try_announced() {
            match next.broadcast {
                Some(_) => active.insert(next.path),
                None => active.remove(&next.path),
            };
        }
        let mut text = String::new();
        for path in active {
            text.push_str(&format!("+{path}\n"));
        }
        output.write_all(text.as_bytes()).await?;
        output.flush().await?;
        return Ok(());
    }

    loop {
        tokio::select! {
            next = consumer.announced() => match next {
                Some(next) => {
                    let sign = if next.broadcast.is_some() { '+' } else { '-' };
                    let line = format!("{sign}{}\n", next.path);
                    if let Err(err) = output.write_all(line.as_bytes()).await {
                        if err.kind() == std::io::ErrorKind::BrokenPipe {
                            return Ok(());
                        }
                        return Err(err.into());
                    }
                    output.flush().await?;
                }
                None => return Ok(()),
            },
            err = live.closed() => anyhow::bail!("lost the session with {}: {}", connection.url, explain(&err)),
        }
    }
}

//! A tiny moq-lite server that publishes a clock: broadcast `clock`, track
//! `seconds`, one group per minute and one frame (the wall-clock time) per
//! second. Any moq-lite client can subscribe to it directly; once the relay
//! exists, `publish` does the same through it.
//!
//! ```sh
//! cargo run -p moq-lite --example clock_server            # listens on [::]:4443
//! cargo run -p moq-lite --example subscribe -- moql://127.0.0.1:4443 --insecure
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::Session;
use moq_lite::endpoint::{Server, ServerConfig, ServerTls};
use moq_lite::model::{OriginProducer, Track, TrackProducer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "[::]:4443".into());
    let server = Server::bind(ServerConfig {
        bind: bind.parse()?,
        tls: ServerTls {
            generate: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            ..Default::default()
        },
        ..Default::default()
    })?;
    println!("listening on {}", server.local_addr()?);
    println!("certificate sha256: {}", server.fingerprints().join(", "));

    let origin = OriginProducer::new();
    let broadcast = origin.create_broadcast("clock")?;
    tokio::spawn(tick(broadcast.create_track(Track::new("seconds"))));

    while let Some(incoming) = server.accept().await {
        let origin = origin.consume();
        tokio::spawn(async move {
            let accepted = incoming.accept().await?;
            let session = Session::accept(accepted.session, origin, None).await?;
            println!("{} connected with {:?}", accepted.remote, session.version());
            let reason = session.closed().await;
            println!("{} left: {reason}", accepted.remote);
            anyhow::Ok(())
        });
    }
    Ok(())
}

/// One group per minute, one frame per second.
async fn tick(mut track: TrackProducer) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    let mut group = None;
    loop {
        interval.tick().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        if now % 60 == 0 || group.is_none() {
            group = Some(track.append_group()?);
        }
        let text = format!("{:02}:{:02}:{:02} UTC", now / 3600 % 24, now / 60 % 60, now % 60);
        if let Some(group) = group.as_mut() {
            group.write_frame(text.into())?;
        }
    }
}

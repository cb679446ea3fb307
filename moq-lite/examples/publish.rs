//! Publishes stdin, one frame per line and one group per line, as a track
//! through a relay (or any server that subscribes to what clients publish).
//!
//! ```sh
//! printf 'a\nb\nc\n' | cargo run -p moq-lite --example publish -- <URL> [BROADCAST] [TRACK] [--insecure]
//! ```

use moq_lite::Session;
use moq_lite::endpoint::{Client, ClientConfig};
use moq_lite::model::{OriginProducer, Track};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = ClientConfig::default();
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--insecure" => config.tls.disable_verify = true,
            _ => positional.push(arg),
        }
    }
    let url = positional
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: publish <URL> [BROADCAST] [TRACK]"))?;
    let name = positional.get(1).cloned().unwrap_or_else(|| "stdin".into());
    let track = positional.get(2).cloned().unwrap_or_else(|| "data".into());

    let origin = OriginProducer::new();
    let broadcast = origin.create_broadcast(name.as_str())?;
    let mut track = broadcast.create_track(Track::new(track));

    let client = Client::new(config)?;
    let connected = client.connect(&url.parse()?).await?;
    let session = Session::connect(connected.session, origin.consume(), None).await?;
    eprintln!("connected with {:?}; publishing {name}", session.version());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut group = track.append_group()?;
        group.write_frame(line.into())?;
        group.finish()?;
    }
    track.finish()?;
    // Give subscribers a moment to drain before the connection closes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
}

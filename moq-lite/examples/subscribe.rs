//! Subscribes to one track and prints its frames, one line each.
//!
//! ```sh
//! cargo run -p moq-lite --example subscribe -- <URL> [BROADCAST] [TRACK] [--insecure] [--fingerprint HEX]
//! cargo run -p moq-lite --example subscribe -- moql://127.0.0.1:4443 clock seconds --insecure
//! ```
//!
//! `moql://` / `moqt://` URLs use raw QUIC, `https://` WebTransport, and
//! `http://` fetches the server's certificate hash first (development).

use moq_lite::Session;
use moq_lite::endpoint::{Client, ClientConfig};
use moq_lite::model::{OriginProducer, Path, Track};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (positional, config) = parse_args()?;
    let url = positional
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: subscribe <URL> [BROADCAST] [TRACK]"))?;
    let broadcast = Path::new(positional.get(1).map_or("clock", String::as_str));
    let track = Track::new(positional.get(2).map_or("seconds", String::as_str));

    let client = Client::new(config)?;
    let connected = client.connect(&url.parse()?).await?;
    let origin = OriginProducer::new();
    let session = Session::connect(connected.session, None, origin.clone()).await?;
    eprintln!("connected with {:?}; waiting for {broadcast}", session.version());

    let mut announced = origin.consume();
    let found = loop {
        let next = announced
            .announced()
            .await
            .ok_or_else(|| anyhow::anyhow!("session closed"))?;
        if next.path == broadcast {
            if let Some(found) = next.broadcast {
                break found;
            }
        }
    };
    let mut track = found.subscribe_track(&track)?;
    while let Some(mut group) = track.next_group().await? {
        while let Some(frame) = group.read_frame().await? {
            println!("{}", String::from_utf8_lossy(&frame));
        }
    }
    eprintln!("track ended");
    Ok(())
}

/// Positional arguments, and a client config from `--insecure` / `--fingerprint`.
fn parse_args() -> anyhow::Result<(Vec<String>, ClientConfig)> {
    let mut config = ClientConfig::default();
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--insecure" => config.tls.disable_verify = true,
            "--fingerprint" => config.tls.fingerprints.push(args.next().unwrap_or_default()),
            _ => positional.push(arg),
        }
    }
    Ok((positional, config))
}

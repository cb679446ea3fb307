//! The command line: `moq-bench [URL]`, `moq-bench baseline`,
//! `moq-bench standard`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use moq_lite::endpoint::{ClientConfig, ClientTls};
use url::Url;

use crate::knobs::{self, Knobs, Scenario};
use crate::load::{self, Options, Target};
use crate::stats::Summary;

/// Load generator for MoQ relays: many publishing and subscribing
/// connections, end-to-end latency, loss, throughput, relay CPU and memory.
#[derive(Parser, Debug)]
#[command(name = "moq-bench", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand; `None` is a load run against a relay (`run`).
    pub command: Option<Command>,
    #[command(flatten)]
    /// The load run's arguments, used when no subcommand is given.
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
/// `moq-bench`'s subcommands.
pub enum Command {
    /// The same fan-out over raw QUIC streams without MoQ: one sender, N
    /// connections, a stream per group (the physical limit).
    Baseline(Box<BaselineArgs>),
    /// The standard report: starts the relay binary on loopback per
    /// scenario, runs them all and the baseline, writes BENCHMARKS.md.
    Standard(crate::standard::StandardArgs),
}

/// A load run.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Relay URL: `moql://host:port/` (raw QUIC), `https://` (WebTransport),
    /// `http://` (WebTransport, certificate hash fetched from the relay) or
    /// `ws://` / `wss://` (WebSocket, QMux on the relay's TCP port).
    pub url: Option<Url>,
    /// Start a relay inside this process on 127.0.0.1 and measure it (its
    /// CPU and memory then include the load generator's).
    #[arg(long = "local-relay", conflicts_with = "url")]
    pub local_relay: bool,
    /// A preset (`fanout`, `hd`, `audio`, `chat`, `churn`) or a TOML file;
    /// flags override it.
    #[arg(long)]
    pub preset: Option<String>,
    /// Accept any certificate (development only).
    #[arg(long = "tls-disable-verify")]
    pub tls_disable_verify: bool,
    /// Extra root certificate (PEM) to trust.
    #[arg(long = "tls-root")]
    pub tls_root: Vec<PathBuf>,
    /// The relay's process ID: sample its CPU and RSS.
    #[arg(long = "relay-pid")]
    pub relay_pid: Option<u32>,
    /// Offer this protocol version only: moq-lite-06 .. -02, or
    /// moq-transport-22 .. -14 (IETF); by default every version, the
    /// newest moq-lite first.
    #[arg(long, value_name = "NAME")]
    pub protocol: Option<moq_transport_compat::Version>,
    /// Also write JSON lines (each interval, then the summary) here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    /// The load's shape; each flag given overrides the preset's value.
    pub knobs: Knobs,
}

/// `moq-bench baseline`.
#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    /// A preset or TOML file for the shape; flags override it. Receivers =
    /// --connections minus --publishers.
    #[arg(long)]
    pub preset: Option<String>,
    /// Also write the summary as a JSON line here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    /// The shape of the fan-out; each flag given overrides the preset's value.
    pub knobs: Knobs,
}

/// The scenario from the flags over the preset.
pub fn scenario(knobs: Knobs, preset: Option<&str>) -> anyhow::Result<Scenario> {
    let base = match preset {
        Some(name) => knobs::preset(name)?,
        None => Knobs::default(),
    };
    knobs.or(base).resolve()
}

/// The client settings for `url` and the TLS flags.
pub fn client_config(tls_disable_verify: bool, roots: Vec<PathBuf>) -> ClientConfig {
    ClientConfig {
        tls: ClientTls {
            disable_verify: tls_disable_verify,
            system_roots: !tls_disable_verify && roots.is_empty(),
            roots,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A load run: against `url`, or an in-process relay.
pub async fn run(args: RunArgs) -> anyhow::Result<Summary> {
    let scenario = scenario(args.knobs.clone(), args.preset.as_deref())?;
    let mut options = Options {
        relay_pid: args.relay_pid,
        output: args.output.clone(),
        ..Default::default()
    };
    if args.local_relay {
        let relay = LocalRelay::start().await?;
        options.relay_pid = Some(std::process::id());
        options.shared_process = true;
        let mut target = relay.target();
        offer(&mut target, args.protocol);
        let summary = load::run(&target, &scenario, &options).await;
        relay.stop().await;
        return summary;
    }
    let Some(url) = args.url else {
        anyhow::bail!("give a relay URL (e.g. moql://127.0.0.1:4443/ --tls-disable-verify) or --local-relay");
    };
    let mut target = Target {
        url,
        client: client_config(args.tls_disable_verify, args.tls_root),
    };
    offer(&mut target, args.protocol);
    load::run(&target, &scenario, &options).await
}

/// Makes every connection of `target` offer `protocol` alone, if given.
pub fn offer(target: &mut Target, protocol: Option<moq_transport_compat::Version>) {
    if let Some(version) = protocol {
        target.client.protocols = vec![version.alpn().to_string()];
    }
}

/// A relay running inside this process on 127.0.0.1 (a free port, no HTTP).
pub struct LocalRelay {
    /// The relay's bound UDP address: 127.0.0.1 and a port the OS chose.
    pub addr: std::net::SocketAddr,
    /// Hex SHA-256 fingerprint of the relay's certificate, pinned by
    /// [`LocalRelay::target`] (empty if the relay reported none).
    pub fingerprint: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LocalRelay {
    /// Binds and runs a relay with loopback defaults.
    pub async fn start() -> anyhow::Result<LocalRelay> {
        let config = moq_relay::Config {
            bind: "127.0.0.1:0".parse()?,
            http_bind: String::new(),
            shutdown_drain: std::time::Duration::from_millis(200),
            ..Default::default()
        };
        let relay = moq_relay::Relay::bind(config).await?;
        let addr = relay.local_addr()?;
        let fingerprint = relay.fingerprints().first().cloned().unwrap_or_default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        Ok(LocalRelay {
            addr,
            fingerprint,
            stop,
            task,
        })
    }

    /// Where to point the load (raw QUIC, the relay's certificate pinned).
    pub fn target(&self) -> Target {
        Target {
            url: format!("moql://127.0.0.1:{}/", self.addr.port())
                .parse()
                .expect("valid URL"),
            client: ClientConfig {
                bind: "127.0.0.1:0".parse().expect("valid address"),
                tls: ClientTls {
                    fingerprints: vec![self.fingerprint.clone()],
                    system_roots: false,
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// Stops the relay and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Prints the summary as one JSON line on stdout.
pub fn print_summary(summary: &Summary) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(summary)?);
    Ok(())
}

/// What `main` does.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let summary = run(cli.run).await?;
            print_summary(&summary)
        }
        Some(Command::Baseline(args)) => {
            let scenario = scenario(args.knobs.clone(), args.preset.as_deref())?;
            let summary = crate::baseline::run(&scenario, false).await?;
            if let Some(path) = &args.output {
                std::fs::write(path, format!("{}\n", serde_json::to_string(&summary)?))?;
            }
            print_summary(&summary)
        }
        Some(Command::Standard(args)) => crate::standard::run(args).await,
    }
}

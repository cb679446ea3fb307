//! `moq`: publish, subscribe and list broadcasts on any MoQ relay.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use moq_cli::{
    Connection, Format, Protocol, PublishOptions, Start, SubscribeOptions, TrackSpec, TransportPin,
};

/// Publish, subscribe and list broadcasts on a MoQ relay.
///
/// URLs: https://host/path (WebTransport, falling back to WebSocket),
/// moql://host:port or moqt://host:port (raw QUIC), wss://host/path or
/// ws://host:port/path (WebSocket), http://host:port (development relay: pins
/// the certificate hash it serves at /certificate.sha256). Logs go to stderr;
/// stdout is data.
#[derive(Debug, Parser)]
#[command(name = "moq", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Accept any TLS certificate (development only).
    #[arg(long, global = true)]
    tls_disable_verify: bool,

    /// Trust the root certificates in this PEM file (repeatable).
    #[arg(long, global = true, value_name = "PEM")]
    tls_root: Vec<PathBuf>,

    /// Force one protocol version: moq-lite-06, moq-lite-05, moq-lite-04, moq-lite-03, moq-lite-02,
    /// moq-transport-14 .. -22 (IETF).
    #[arg(long, global = true, value_name = "NAME")]
    protocol: Option<Protocol>,

    /// An authentication token, sent as `?jwt=` in the URL.
    #[arg(
        long,
        global = true,
        env = "MOQ_JWT",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    jwt: Option<String>,

    /// Do not reconnect when the relay goes away (publish, subscribe).
    #[arg(long, global = true)]
    no_reconnect: bool,

    /// One transport only: quic (raw QUIC to the URL's host and port),
    /// webtransport (no WebSocket fallback) or websocket (QMux over TCP).
    /// Default: what the URL says; https:// and http:// try WebTransport,
    /// then WebSocket after 500 ms without a QUIC answer.
    #[arg(long, global = true, value_name = "quic|webtransport|websocket")]
    transport: Option<TransportPin>,

    /// How long one connection attempt may take (e.g. 10s, 500ms).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,

    /// A live stats line on stderr (frames, bytes, rate, group) and a summary at exit.
    #[arg(long, global = true)]
    stats: bool,

    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Less logging (-q errors only, -qq nothing). RUST_LOG wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish stdin (or files) as tracks of a broadcast.
    Publish {
        /// The relay URL.
        url: String,
        /// The broadcast path.
        broadcast: String,
        /// A track: NAME (reads stdin) or NAME=FILE; repeatable. Default `data` from stdin.
        #[arg(long = "track", value_name = "NAME[=FILE]")]
        tracks: Vec<TrackSpec>,
        /// How input splits into frames: lines, length (varint length + bytes) or raw.
        #[arg(long, default_value = "lines")]
        format: Format,
        /// A new group every N frames (default 1; raw: unbounded).
        #[arg(long, value_name = "N")]
        group_frames: Option<u64>,
        /// A new group once the current one is this many ms old (default: raw 1000, else off).
        #[arg(long, value_name = "MS")]
        group_ms: Option<u64>,
        /// Read a track's input only once someone subscribes to it.
        #[arg(long)]
        wait_subscriber: bool,
        /// At end of input, wait at most this long for subscribers to get everything.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
        linger: Duration,
    },
    /// Write a track's frames to stdout.
    Subscribe {
        /// The relay URL.
        url: String,
        /// The broadcast path.
        broadcast: String,
        /// The track name.
        #[arg(long, default_value = moq_cli::publish::DEFAULT_TRACK)]
        track: String,
        /// How frames are written: lines, length (varint length + bytes) or raw.
        #[arg(long, default_value = "lines")]
        format: Format,
        /// Where to start: oldest (the earliest group the relay or the publisher still holds, so a
        /// subscriber started before the publisher gets everything), latest (the live edge), or a
        /// group number.
        #[arg(long, default_value = "oldest")]
        start: Start,
        /// Exit after N frames.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// How long to wait for the broadcast to be announced.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Print broadcasts as they come (+path) and go (-path).
    Announced {
        /// The relay URL.
        url: String,
        /// Only broadcasts under this prefix.
        prefix: Option<String>,
        /// Print the broadcasts active now and exit.
        #[arg(long)]
        once: bool,
    },
    /// The clock smoke test: one frame per second, one group per minute.
    Clock {
        #[command(subcommand)]
        command: ClockCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ClockCommand {
    /// Publish the wall-clock time as track `seconds`.
    Publish {
        /// The relay URL.
        url: String,
        /// The broadcast path.
        #[arg(default_value = "clock")]
        broadcast: String,
    },
    /// Print the time from a clock publisher.
    Subscribe {
        /// The relay URL.
        url: String,
        /// The broadcast path.
        #[arg(default_value = "clock")]
        broadcast: String,
        /// Exit after N lines.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// How long to wait for the broadcast to be announced.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// `500ms`, `2s`, `1m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration `{text}`: expected e.g. 500ms, 5s, 1m"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("bad duration `{text}`: expected e.g. 500ms, 5s, 1m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn init_logging(verbose: u8, quiet: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match (verbose as i8) - (quiet as i8) {
        ..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // web-transport-quinn warns about the CONNECT stream ending while a
    // session closes normally (the peer's close wins the race): noise at
    // the levels meant for people.
    let quiet_libraries = if matches!(level, "warn" | "info") {
        ",web_transport_quinn=error"
    } else {
        ""
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::new(env),
        _ => EnvFilter::new(format!("{level}{quiet_libraries}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

impl Global {
    fn connection(&self, url: &str) -> anyhow::Result<Connection> {
        let mut connection = Connection::new(Connection::parse_url(url)?);
        connection.tls_disable_verify = self.tls_disable_verify;
        connection.tls_roots = self.tls_root.clone();
        connection.protocol = self.protocol;
        connection.jwt = self.jwt.clone();
        connection.reconnect = !self.no_reconnect;
        connection.connect_timeout = self.connect_timeout;
        connection.transport = self.transport;
        Ok(connection)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Publish {
            url,
            broadcast,
            tracks,
            format,
            group_frames,
            group_ms,
            wait_subscriber,
            linger,
        } => {
            let connection = global.connection(&url)?;
            let mut options = PublishOptions::new(broadcast);
            options.tracks = tracks;
            options.format = format;
            options.group_frames = group_frames;
            options.group_ms = group_ms;
            options.wait_subscriber = wait_subscriber;
            options.linger = linger;
            options.stats = global.stats;
            moq_cli::publish(&connection, options).await
        }
        Command::Subscribe {
            url,
            broadcast,
            track,
            format,
            start,
            count,
            timeout,
        } => {
            let connection = global.connection(&url)?;
            let mut options = SubscribeOptions::new(broadcast);
            options.track = track;
            options.format = format;
            options.start = start;
            options.count = count;
            options.timeout = timeout;
            options.stats = global.stats;
            moq_cli::subscribe(&connection, options).await
        }
        Command::Announced { url, prefix, once } => {
            let connection = global.connection(&url)?;
            moq_cli::announced(&connection, prefix.as_deref(), once).await
        }
        Command::Clock { command } => match command {
            ClockCommand::Publish { url, broadcast } => {
                moq_cli::clock::publish(&global.connection(&url)?, &broadcast).await
            }
            ClockCommand::Subscribe {
                url,
                broadcast,
                count,
                timeout,
            } => moq_cli::clock::subscribe(&global.connection(&url)?, &broadcast, count, timeout).await,
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("moq: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(cli) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // Do not wait for tasks still blocked on stdin.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("moq: {err:#}");
            ExitCode::FAILURE
        }
    }
}

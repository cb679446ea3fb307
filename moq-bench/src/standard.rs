//! `moq-bench standard`: the standard report (what `just bench` runs).
//!
//! For each scenario a fresh relay process (the release `moq-relay` binary)
//! is started on a free loopback port, the load runs in this process with
//! `--relay-pid` pointing at the relay, and the relay is killed. With
//! `--compare PATH`, the same scenario then runs the same way against that
//! other relay binary (the reference relay's command line). Then the raw
//! QUIC baseline runs at the same fan-out sizes. Everything lands in one
//! Markdown file (default `BENCHMARKS.md`) with the command of every row,
//! SVG plots beside it (`plot.rs`), and the JSON summaries in
//! `target/moq-bench/standard.jsonl`.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::client_config;
use crate::knobs::{Dur, Range, Scenario};
use crate::load::{self, Options, Target};
use crate::stats::Summary;

/// The heading of the criterion codec section that a rewrite keeps.
const CODEC_SECTION: &str = "## Codec micro-benchmarks";

/// `moq-bench standard`.
#[derive(clap::Args, Debug, Clone)]
pub struct StandardArgs {
    /// The relay binary (default: `moq-relay` next to this executable).
    #[arg(long = "relay-bin")]
    pub relay_bin: Option<PathBuf>,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Measured time per scenario (after its ramp).
    #[arg(long, default_value = "6s")]
    pub duration: Dur,
    /// Run only these scenarios: a name (`fanout-10`), or a family
    /// (`fanout`: every `fanout-N`).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Another relay to run every scenario against too, side by side: the
    /// reference relay's binary (crates.io `moq-relay`, started as
    /// `--listen ADDR --listen-tls-generate localhost --auth-public '**'`).
    #[arg(long, value_name = "PATH")]
    pub compare: Option<PathBuf>,
}

/// The 2 Mbit/s track of the issue: 30 fps x 8333 B, one group per second.
fn track(connections: u64, publishers: u64, subscribe: u64, ramp: Duration, duration: Duration) -> Scenario {
    Scenario {
        connections,
        publishers,
        broadcasts: Range::one(1),
        subscribe: Range::one(subscribe),
        fps: Range::one(30.0),
        frame_size: Range::one(8333),
        group_size: Range::one(30),
        duration,
        ramp,
        ..Default::default()
    }
}

struct Case {
    name: &'static str,
    what: &'static str,
    scenario: Scenario,
    /// A preset the scenario came from (shown in the command).
    preset: Option<&'static str>,
    baseline: bool,
}

fn cases(duration: Duration) -> anyhow::Result<Vec<Case>> {
    let s = Duration::from_secs;
    let mut out = Vec::new();
    for (n, ramp) in [(1, s(1)), (10, s(1)), (100, s(2)), (500, s(5))] {
        out.push(Case {
            name: ["fanout-1", "fanout-10", "fanout-100", "fanout-500"][out.len()],
            what: "1 publisher -> N subscribers, 2 Mbit/s (30 fps x 8333 B, 1 s groups)",
            scenario: track(n + 1, 1, 1, ramp, duration),
            preset: None,
            baseline: false,
        });
    }
    out.push(Case {
        name: "mesh-50x4",
        what: "50 publishers x 4 subscribers each (every connection publishes one 2 Mbit/s track, watches 4)",
        scenario: track(50, 0, 4, s(2), duration),
        preset: None,
        baseline: false,
    });
    for (name, what) in [
        (
            "chat",
            "chat preset: 20 connections, 1-frame groups of 64-512 B at 10/s, each watches 4",
        ),
        (
            "churn",
            "churn preset: 1 publisher (2 Mbit/s), 20 viewers living 1-3 s each, replaced as they leave",
        ),
    ] {
        let mut scenario = crate::knobs::preset(name)?.resolve()?;
        scenario.duration = duration;
        out.push(Case {
            name,
            what,
            scenario,
            preset: Some(name),
            baseline: false,
        });
    }
    out.push(Case {
        name: "chat-500",
        what: "message bus sized like real use: 500 connections, each publishing 5 messages/s of 200 B (one-frame groups) and watching 10 others",
        scenario: Scenario {
            connections: 500,
            broadcasts: Range::one(1),
            subscribe: Range::one(10),
            fps: Range::one(5.0),
            frame_size: Range::one(200),
            group_size: Range::one(1),
            ramp: s(5),
            duration,
            ..Default::default()
        },
        preset: None,
        baseline: false,
    });
    for (name, n) in [("idle-50", 50), ("idle-500", 500)] {
        out.push(Case {
            name,
            what: "idle sessions (each with an announce interest, nothing published): memory per idle connection",
            scenario: Scenario {
                connections: n,
                broadcasts: Range::one(0),
                subscribe: Range::one(0),
                ramp: s(if n > 200 { 4 } else { 1 }),
                duration: duration.min(s(3)),
                ..Default::default()
            },
            preset: None,
            baseline: false,
        });
    }
    out.push(Case {
        name: "idle-200",
        what: "200 idle sessions (each with an announce interest, nothing published): memory per idle connection",
        scenario: Scenario {
            connections: 200,
            broadcasts: Range::one(0),
            subscribe: Range::one(0),
            ramp: s(2),
            duration: duration.min(s(3)),
            ..Default::default()
        },
        preset: None,
        baseline: false,
    });
    for (i, n) in [1, 10, 100, 500].into_iter().enumerate() {
        out.push(Case {
            name: ["baseline-1", "baseline-10", "baseline-100", "baseline-500"][i],
            what: "raw QUIC: 1 sender -> N connections, same track, a stream per group",
            scenario: track(n + 1, 1, 1, if n >= 100 { s(2) } else { s(1) }, duration),
            preset: None,
            baseline: true,
        });
    }
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Which relay a process runs, which decides its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// This workspace's `moq-relay`.
    Ours,
    /// The reference relay (crates.io `moq-relay`): another command line,
    /// anonymous access opened with `--auth-public '**'`.
    Reference,
}

/// A relay process on loopback.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    args: Vec<String>,
    flavor: Flavor,
}

impl RelayProcess {
    fn start(bin: &PathBuf, flavor: Flavor) -> anyhow::Result<RelayProcess> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let addr_text = addr.to_string();
        let args: &[&str] = match flavor {
            Flavor::Ours => &["--bind", &addr_text, "--http-bind", "", "--log-level", "warn"],
            Flavor::Reference => &[
                "--listen",
                &addr_text,
                "--listen-tls-generate",
                "localhost",
                "--auth-public",
                "**",
                "--iroh-enabled=false",
                "--log-level",
                "warn",
            ],
        };
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {}: {e} (build it: cargo build --release -p moq-relay)",
                    bin.display()
                )
            })?;
        let mut relay = RelayProcess {
            child,
            addr,
            args,
            flavor,
        };
        // Ready once the port is taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(addr).is_ok() {
            if let Some(status) = relay.child.try_wait()? {
                anyhow::bail!("the relay exited at once: {status}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the relay did not bind {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let it finish starting (the port is bound just before serving).
        std::thread::sleep(Duration::from_millis(100));
        Ok(relay)
    }

    fn command(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| match a.as_str() {
                "" => "''".into(),
                "**" => "'**'".into(),
                _ => a.clone(),
            })
            .collect();
        let name = match self.flavor {
            Flavor::Ours => "moq-relay",
            Flavor::Reference => "reference-moq-relay",
        };
        format!("{name} {}", args.join(" "))
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Row {
    case: Case,
    command: String,
    result: Result<Summary, String>,
    /// The same scenario against the `--compare` relay: its command and result.
    other: Option<(String, Result<Summary, String>)>,
}

impl Row {
    /// The scenario's name.
    pub fn name(&self) -> &str {
        self.case.name
    }

    /// Our relay's figures (or the baseline's), if the run worked.
    pub fn ours(&self) -> Option<&Summary> {
        self.result.as_ref().ok()
    }

    /// The `--compare` relay's figures, if it ran and worked.
    pub fn other(&self) -> Option<&Summary> {
        self.other.as_ref()?.1.as_ref().ok()
    }
}

/// Runs `scenario` against a fresh `bin` relay of `flavor`: the command to
/// repeat it, and the summary.
async fn against(
    bin: &PathBuf,
    flavor: Flavor,
    scenario: &Scenario,
    flags: &str,
) -> (String, Result<Summary, String>) {
    let relay = match RelayProcess::start(bin, flavor) {
        Ok(relay) => relay,
        Err(err) => return (String::new(), Err(format!("{err:#}"))),
    };
    // The reference relay roots raw QUIC sessions at "" too; both accept
    // any broadcast path from an anonymous client.
    let url = format!("moql://{}/", relay.addr);
    let command = format!(
        "{} & moq-bench {url} --tls-disable-verify --relay-pid $! {flags}",
        relay.command()
    );
    let target = Target {
        url: match url.parse() {
            Ok(url) => url,
            Err(err) => return (command, Err(err.to_string())),
        },
        client: client_config(true, Vec::new()),
    };
    let options = Options {
        relay_pid: Some(relay.child.id()),
        ..Default::default()
    };
    let result = load::run(&target, scenario, &options).await;
    if let Ok(Some(status)) = relay.child_status() {
        eprintln!("the relay exited during the run: {status}");
    }
    (command, result.map_err(|e| format!("{e:#}")))
}

/// Runs every scenario and writes the report.
pub async fn run(args: StandardArgs) -> anyhow::Result<()> {
    let bin = match args.relay_bin.clone() {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("moq-relay"),
    };
    let jsonl_path = PathBuf::from("target/moq-bench/standard.jsonl");
    if let Some(dir) = jsonl_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut jsonl = String::new();
    let mut rows = Vec::new();
    for case in cases(args.duration.0)? {
        let picked = |o: &String| case.name == o || case.name.starts_with(&format!("{o}-"));
        if !args.only.is_empty() && !args.only.iter().any(picked) {
            continue;
        }
        eprintln!("\n=== {}: {}", case.name, case.what);
        let flags = match case.preset {
            Some(p) => format!("--preset {p} {}", case.scenario.flags()),
            None => case.scenario.flags(),
        };
        let (command, result) = if case.baseline {
            let command = format!("moq-bench baseline {flags}");
            let result = crate::baseline::run(&case.scenario, false).await;
            (command, result.map_err(|e| format!("{e:#}")))
        } else {
            against(&bin, Flavor::Ours, &case.scenario, &flags).await
        };
        let other = match (&args.compare, case.baseline) {
            (Some(other), false) => {
                eprintln!("--- {} against {}", case.name, other.display());
                Some(against(other, Flavor::Reference, &case.scenario, &flags).await)
            }
            _ => None,
        };
        for (who, result) in [("ours", Some(&result)), ("other", other.as_ref().map(|o| &o.1))] {
            match result {
                Some(Ok(summary)) => {
                    let mut value = serde_json::to_value(summary)?;
                    value["relay_under_test"] = who.into();
                    let line = value.to_string();
                    println!("{line}");
                    jsonl.push_str(&line);
                    jsonl.push('\n');
                }
                Some(Err(err)) => eprintln!("{} ({who}): failed: {err}", case.name),
                None => {}
            }
        }
        rows.push(Row {
            case,
            command,
            result,
            other,
        });
    }
    std::fs::write(&jsonl_path, jsonl)?;
    let report = render(&rows, &args);
    // The codec micro-benchmarks are measured by criterion, not here: keep
    // their section when rewriting the report.
    let mut report = report;
    if let Ok(previous) = std::fs::read_to_string(&args.out) {
        if let Some(at) = previous.find(CODEC_SECTION) {
            report.push('\n');
            report.push_str(&previous[at..]);
        }
    }
    std::fs::write(&args.out, report)?;
    for written in crate::plot::write_all(&rows, &args.out)? {
        eprintln!("wrote {}", written.display());
    }
    eprintln!("\nwrote {} and {}", args.out.display(), jsonl_path.display());
    Ok(())
}

impl RelayProcess {
    fn child_status(&self) -> std::io::Result<Option<std::process::ExitStatus>> {
        // try_wait needs &mut; a cheap check through /proc instead.
        let alive = std::path::Path::new(&format!("/proc/{}", self.child.id())).exists();
        Ok(if alive {
            None
        } else {
            Some(std::process::ExitStatus::default())
        })
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into())
}

fn render(rows: &[Row], args: &StandardArgs) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `just bench` (`moq-bench standard --duration {}`); do not edit by hand, rerun it. \
         How the figures are made and what they mean: [moq-bench/README.md](moq-bench/README.md).\n",
        args.duration
    );
    let _ = writeln!(md, "- Date: {}", date());
    let _ = writeln!(md, "- Machine: {}", machine());
    let _ = writeln!(md, "- Commit: {}", commit());
    let _ = writeln!(
        md,
        "- Toolchain: {}",
        output("rustc", &["--version"]).unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(
        md,
        "- Relay: release `moq-relay`, one fresh process per scenario on 127.0.0.1 (raw QUIC, \
         self-signed certificate, default cache and QUIC settings); the load generator runs in another \
         process on the same machine and competes for the same cores.\n"
    );

    let _ = writeln!(md, "## Figures\n");
    let _ = writeln!(
        md,
        "Over the measured window (after the ramp). Mbps are payload megabits per second; latency is \
         publisher write to subscriber read, per frame; setup is QUIC + TLS + MoQ session per connection; \
         CPU and RSS are the relay process's (for `baseline-*`: the sender thread's, RSS of the whole \
         bench process).\n"
    );
    let _ = writeln!(
        md,
        "| scenario | conns | send Mbps | recv Mbps | frames recv | groups recv | groups lost | loss % | \
         latency p50 / p90 / p99 / max (ms) | setup p50 / p99 (ms) | CPU % of a core | CPU s / GB | RSS / conn (KiB) | moq-bench CPU % | errors |"
    );
    let _ = writeln!(
        md,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for row in rows {
        match &row.result {
            Ok(s) => {
                let process = s.relay.as_ref().or(s.sender.as_ref());
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {} / {} / {} / {} | {} / {} | {} | {} | {} | {} | {} |",
                    row.case.name,
                    s.connections,
                    s.send_mbps,
                    s.recv_mbps,
                    s.frames_received,
                    s.groups_received,
                    s.groups_lost + s.groups_incomplete,
                    s.loss_pct,
                    opt(s.latency_p50_ms, 2),
                    opt(s.latency_p90_ms, 2),
                    opt(s.latency_p99_ms, 2),
                    opt(s.latency_max_ms, 1),
                    opt(s.setup_p50_ms, 1),
                    opt(s.setup_p99_ms, 1),
                    opt(process.map(|p| p.cpu_pct), 0),
                    opt(process.and_then(|p| p.cpu_s_per_gb), 1),
                    if row.case.baseline {
                        "-".into()
                    } else {
                        opt(
                            process
                                .and_then(|p| p.rss_per_connection_bytes)
                                .map(|b| b / 1024.0),
                            1,
                        )
                    },
                    opt(s.load_cpu_pct, 0),
                    s.errors,
                );
            }
            Err(err) => {
                let _ = writeln!(
                    md,
                    "| {} | failed: {} ||||||||||||||",
                    row.case.name,
                    err.replace('|', "/")
                );
            }
        }
    }

    if rows.iter().any(|r| r.other.is_some()) {
        side_by_side(&mut md, rows, args);
    }
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "BENCHMARKS".into());
    let _ = writeln!(md, "\n## Plots\n");
    for (kind, what) in [
        ("latency", "latency p50 / p99 vs subscribers"),
        ("cpu", "relay CPU per GB vs subscribers"),
        ("memory", "relay memory per idle connection vs connections"),
    ] {
        let _ = writeln!(md, "- [{what}]({stem}-{kind}.svg)");
    }
    let _ = writeln!(
        md,
        "\n![latency]({stem}-latency.svg)\n![cpu]({stem}-cpu.svg)\n![memory]({stem}-memory.svg)"
    );

    let _ = writeln!(md, "\n## Targets (from the issue)\n");
    let get = |name: &str| {
        rows.iter()
            .find(|r| r.case.name == name)
            .and_then(|r| r.result.as_ref().ok())
    };
    for n in [1, 10, 100, 500] {
        let name = format!("fanout-{n}");
        let Some(s) = get(&name) else {
            let _ = writeln!(md, "- `{name}`: not run or failed (see the table).");
            continue;
        };
        let lost = s.groups_lost + s.groups_incomplete;
        let p99 = s.latency_p99_ms.unwrap_or(f64::INFINITY);
        let ok = lost == 0 && p99 < 50.0 && s.errors == 0 && s.frames_received > 0;
        let _ = writeln!(
            md,
            "- `{name}`: {} 0 lost groups and p99 < 50 ms: {lost} lost, p99 {} ms, {} errors, \
             {:.0} % of the expected frames delivered.",
            if ok { "PASS" } else { "MISS" },
            opt(s.latency_p99_ms, 2),
            s.errors,
            if s.send_fps > 0.0 {
                s.recv_fps / (s.send_fps * n as f64) * 100.0
            } else {
                0.0
            },
        );
    }
    for n in [1, 10, 100, 500] {
        let relay = get(&format!("fanout-{n}")).and_then(|s| s.relay.as_ref()?.cpu_s_per_gb);
        let base = get(&format!("baseline-{n}")).and_then(|s| s.sender.as_ref()?.cpu_s_per_gb);
        match (relay, base) {
            (Some(r), Some(b)) if b > 0.0 => {
                let ratio = r / b;
                let _ = writeln!(
                    md,
                    "- CPU per GB at fan-out {n}: {} within 2x of raw QUIC: relay {r:.1} s/GB vs baseline \
                     sender {b:.1} s/GB = {ratio:.2}x.",
                    if ratio <= 2.0 { "PASS" } else { "MISS" },
                );
            }
            _ => {
                let _ = writeln!(
                    md,
                    "- CPU per GB at fan-out {n}: no figure (a run failed or measured no CPU)."
                );
            }
        }
    }
    // The goal of issue 20: under 50 KiB per idle connection, at 200 and at
    // 500 connections (at 50 a fixed start-up cost still shows).
    for n in [200, 500] {
        match get(&format!("idle-{n}")).and_then(|s| s.relay.as_ref()?.rss_per_connection_bytes) {
            Some(b) => {
                let _ = writeln!(
                    md,
                    "- Memory per idle connection at {n}: {} under 50 KiB: {:.1} KiB (relay RSS growth / connections).",
                    if b < 50.0 * 1024.0 { "PASS" } else { "MISS" },
                    b / 1024.0
                );
            }
            None => {
                let _ = writeln!(md, "- Memory per idle connection at {n}: no figure.");
            }
        }
    }

    let _ = writeln!(md, "\n## Scenarios and commands\n");
    let _ = writeln!(
        md,
        "Each row as a shell command (`$!` is the relay's PID; the standard run picks a free port and \
         starts the relay itself):\n"
    );
    for row in rows {
        let _ = writeln!(md, "- `{}`: {}", row.case.name, row.case.what);
        if !row.command.is_empty() {
            let _ = writeln!(md, "  ```sh\n  {}\n  ```", row.command);
        }
        if let Some((command, _)) = &row.other {
            if !command.is_empty() {
                let _ = writeln!(
                    md,
                    "  the reference relay, same load:\n  ```sh\n  {command}\n  ```"
                );
            }
        }
        if let Ok(s) = &row.result {
            if !s.error_samples.is_empty() {
                let _ = writeln!(md, "  errors: {}", s.error_samples.join("; "));
            }
        }
    }
    md
}

/// Whether a run's load generator and relay together kept every core busy:
/// then the figures measure the machine, not the relay, and are flagged.
fn saturated(s: &Summary) -> bool {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let relay = s.relay.as_ref().map_or(0.0, |p| p.cpu_pct);
    s.load_cpu_pct.unwrap_or(0.0) + relay >= 90.0 * cores
}

/// The `--compare` table: every scenario's figures for both relays, with
/// the ratio where lower is better (reference / ours: above 1, ours uses
/// less).
fn side_by_side(md: &mut String, rows: &[Row], args: &StandardArgs) {
    let other = args
        .compare
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(md, "\n## Side by side with the reference relay\n");
    let _ = writeln!(
        md,
        "The same load against the reference relay (`{other}`), in a fresh process of its own right after \
         ours, on the same machine; its command line is under each scenario below. Ratios are reference / \
         ours: above 1, ours uses less CPU or memory, or answers faster. Rows marked *saturated* had the \
         load generator and the relay together keeping every core busy: their figures measure the machine, \
         not the relay.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | CPU s / GB ours / ref (ratio) | CPU µs / message ours / ref (ratio) | latency p50 ours / ref (ms) | \
         latency p99 ours / ref (ms, ratio) | loss % ours / ref | RSS / conn KiB ours / ref (ratio) | setup p50 ours / ref (ms) | note |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|---|");
    let ratio = |ours: Option<f64>, other: Option<f64>| match (ours, other) {
        (Some(o), Some(r)) if o > 0.0 => format!(" ({:.2}x)", r / o),
        _ => String::new(),
    };
    for row in rows.iter().filter(|r| r.other.is_some()) {
        let (Some(o), Some(r)) = (row.ours(), row.other()) else {
            let why = |res: Option<&Result<Summary, String>>| match res {
                Some(Err(e)) => e.replace('|', "/"),
                _ => "ok".into(),
            };
            let _ = writeln!(
                md,
                "| {} | failed: ours {}, reference {} ||||||||",
                row.case.name,
                why(Some(&row.result)),
                why(row.other.as_ref().map(|o| &o.1))
            );
            continue;
        };
        let cpu = |s: &Summary| s.relay.as_ref().and_then(|p| p.cpu_s_per_gb);
        // CPU per message delivered to a subscriber: the chat workload's unit.
        let per_message = |s: &Summary| {
            let cpu = s.relay.as_ref()?.cpu_s;
            (s.frames_received > 0).then(|| cpu / s.frames_received as f64 * 1e6)
        };
        let rss = |s: &Summary| {
            s.relay
                .as_ref()
                .and_then(|p| p.rss_per_connection_bytes)
                .map(|b| b / 1024.0)
        };
        let mut notes = Vec::new();
        if saturated(o) {
            notes.push("ours saturated");
        }
        if saturated(r) {
            notes.push("reference saturated");
        }
        if o.errors > 0 || r.errors > 0 {
            notes.push("errors: see the JSON lines");
        }
        let _ = writeln!(
            md,
            "| {} | {} / {}{} | {} / {}{} | {} / {} | {} / {}{} | {:.2} / {:.2} | {} / {}{} | {} / {} | {} |",
            row.case.name,
            opt(cpu(o), 1),
            opt(cpu(r), 1),
            ratio(cpu(o), cpu(r)),
            opt(per_message(o), 1),
            opt(per_message(r), 1),
            ratio(per_message(o), per_message(r)),
            opt(o.latency_p50_ms, 2),
            opt(r.latency_p50_ms, 2),
            opt(o.latency_p99_ms, 2),
            opt(r.latency_p99_ms, 2),
            ratio(o.latency_p99_ms, r.latency_p99_ms),
            o.loss_pct,
            r.loss_pct,
            opt(rss(o), 1),
            opt(rss(r), 1),
            ratio(rss(o), rss(r)),
            opt(o.setup_p50_ms, 1),
            opt(r.setup_p50_ms, 1),
            notes.join(", "),
        );
    }
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit() -> String {
    let head = output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM, Linux {}", kernel.trim())
}

fn date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60
    )
}

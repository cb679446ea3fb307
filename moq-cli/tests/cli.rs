//! The real `moq` binary against an in-process relay.
//!
//! Every wait is on an event: a line on the child's stdout, its exit, an
//! announcement seen by an in-process client. Each test is bounded by
//! [`LIMIT`].

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use moq_lite::model::OriginProducer;
use rs_tests::TestRelay;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(40);

/// A running `moq` with piped stdio; stderr is collected in the background.
struct Moq {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    lines: Option<Lines<BufReader<ChildStdout>>>,
    stderr: JoinHandle<String>,
}

impl Moq {
    fn spawn(args: &[&str]) -> Moq {
        let mut child = Command::new(env!("CARGO_BIN_EXE_moq"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("moq runs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Moq {
            child,
            stdin,
            stdout,
            lines: None,
            stderr,
        }
    }

    async fn write(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(data).await.expect("write to moq");
        stdin.flush().await.unwrap();
    }

    /// Closes stdin: end of input.
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line.
    async fn line(&mut self) -> Option<String> {
        if self.lines.is_none() {
            self.lines = Some(BufReader::new(self.stdout.take().unwrap()).lines());
        }
        self.lines
            .as_mut()
            .unwrap()
            .next_line()
            .await
            .expect("read stdout")
    }

    /// Waits for the exit: status, the rest of stdout, stderr.
    async fn finish(mut self) -> (ExitStatus, Vec<u8>, String) {
        self.stdin = None;
        let mut rest = Vec::new();
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_end(&mut rest).await.unwrap();
        } else if let Some(lines) = self.lines.take() {
            lines.into_inner().read_to_end(&mut rest).await.unwrap();
        }
        let status = self.child.wait().await.unwrap();
        let stderr = self.stderr.await.unwrap();
        (status, rest, stderr)
    }
}

/// A relay whose HTTP side (TCP) listens on the same port number as QUIC
/// (UDP), as a real one does, so `http://` URLs work.
async fn relay() -> TestRelay {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = std::net::TcpListener::bind(addr) else {
            continue;
        };
        drop((udp, tcp));
        // Someone may take the port in between: then binding panics; retry.
        let started = tokio::spawn(TestRelay::start(move |c| {
            c.bind = addr;
            c.http_bind = addr.to_string();
        }))
        .await;
        if let Ok(relay) = started {
            return relay;
        }
    }
    panic!("no free port for both UDP and TCP");
}

fn quic(relay: &TestRelay) -> String {
    format!("moql://127.0.0.1:{}/", relay.addr.port())
}

fn http(relay: &TestRelay) -> String {
    format!("http://127.0.0.1:{}/", relay.addr.port())
}

fn https(relay: &TestRelay) -> String {
    format!("https://127.0.0.1:{}/", relay.addr.port())
}

/// Waits until an in-process client sees `path` announced on the relay.
async fn announced(relay: &TestRelay, path: &str, track: &str) -> moq_lite::model::TrackConsumer {
    let origin = OriginProducer::new();
    let (session, client) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
    let track = rs_tests::subscribe(&origin, path, track).await;
    // The track stays readable after the session is gone only if we keep it: leak both.
    std::mem::forget((session, client));
    track
}

/// `printf 'a\nb\nc\n' | moq publish` to `moq subscribe --count 3`, the
/// subscriber first; `extra` goes to both.
async fn lines_through(url: &str, broadcast: &str, extra: &[&str]) -> String {
    let mut sub_args = vec![
        "-v",
        "subscribe",
        url,
        broadcast,
        "--count",
        "3",
        "--timeout",
        "20s",
    ];
    sub_args.extend_from_slice(extra);
    let subscriber = Moq::spawn(&sub_args);
    let mut pub_args = vec!["publish", url, broadcast, "--wait-subscriber"];
    pub_args.extend_from_slice(extra);
    let mut publisher = Moq::spawn(&pub_args);
    publisher.write(b"a\nb\nc\n").await;
    publisher.close_stdin();
    let (status, out, stderr) = subscriber.finish().await;
    assert!(status.success(), "subscriber failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out), "a\nb\nc\n", "{stderr}");
    let (status, _, pub_err) = publisher.finish().await;
    assert!(status.success(), "publisher failed: {pub_err}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_raw_quic_subscriber_first() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        lines_through(&quic(&relay), "b", &["--tls-disable-verify"]).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_webtransport_subscriber_first() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        // http:// pins the hash the relay serves at /certificate.sha256.
        lines_through(&http(&relay), "room/b", &[]).await;
        lines_through(&https(&relay), "room/c", &["--tls-disable-verify"]).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_websocket_by_url_and_by_pin() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let ws = format!("ws://127.0.0.1:{}/", relay.addr.port());
        let stderr = lines_through(&ws, "w/a", &[]).await;
        assert!(stderr.contains("transport=WebSocket"), "{stderr}");
        // --transport websocket turns http:// into ws:// on the same port.
        let stderr = lines_through(&http(&relay), "w/b", &["--transport", "websocket"]).await;
        assert!(stderr.contains("transport=WebSocket"), "{stderr}");
        assert!(
            !stderr.contains("trying WebSocket"),
            "pinned, not a fallback: {stderr}"
        );
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_urls_fall_back_to_websocket_when_quic_is_silent() {
    tokio::time::timeout(LIMIT, async {
        // The test relay's HTTP port is a TCP port with no QUIC behind the
        // same UDP port number: QUIC gets no answer, as behind a firewall
        // that drops UDP.
        let relay = rs_tests::TestRelay::start(|_| {}).await;
        let url = format!("http://127.0.0.1:{}/", relay.http.port());
        let stderr = lines_through(&url, "fallback", &[]).await;
        assert!(stderr.contains("trying WebSocket as well"), "{stderr}");
        assert!(stderr.contains("transport=WebSocket"), "{stderr}");

        // Pinned to WebTransport, it fails instead, and says so.
        let (status, _, stderr) = Moq::spawn(&[
            "--transport",
            "webtransport",
            "--connect-timeout",
            "1s",
            "subscribe",
            &url,
            "fallback",
            "--timeout",
            "2s",
        ])
        .finish()
        .await;
        assert!(!status.success());
        assert!(stderr.contains("could not connect"), "{stderr}");
    })
    .await
    .expect("timed out");
}

/// Publishes and subscribes through one relay with `--protocol` forced, over
/// raw QUIC, WebTransport and WebSocket, and checks the version each side negotiated.
/// The publisher writes its lines the moment it is subscribed and exits
/// once they are delivered, so a publisher that closes with data in flight
/// (or a subscription that starts after the first frame) fails here.
async fn forced_versions(cases: &[(&'static str, &'static str, &'static str)]) {
    tokio::time::timeout(LIMIT * 2, async {
        let relay = relay().await;
        for (i, &(scheme, protocol, version)) in cases.iter().enumerate() {
            let url = match scheme {
                "quic" => quic(&relay),
                "ws" => format!("ws://127.0.0.1:{}/", relay.addr.port()),
                _ => http(&relay),
            };
            let extra = ["--tls-disable-verify", "--protocol", protocol];
            let stderr = tokio::time::timeout(LIMIT / 2, lines_through(&url, &format!("v{i}"), &extra))
                .await
                .unwrap_or_else(|_| panic!("{protocol} over {scheme}: timed out"));
            assert!(
                stderr.contains(version),
                "{protocol} did not negotiate {version}: {stderr}"
            );
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_with_forced_lite_versions() {
    forced_versions(&[
        ("quic", "moq-lite-03", "Lite03"),
        ("http", "moq-lite-03", "Lite03"),
        ("quic", "moq-lite-02", "Lite02"),
        ("http", "moq-lite-02", "Lite02"),
        ("ws", "moq-lite-03", "Lite03"),
        ("ws", "moq-lite-02", "Lite02"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_with_forced_ietf_versions() {
    forced_versions(&[
        ("quic", "moq-transport-14", "D14"),
        ("http", "moq-transport-15", "D15"),
        ("http", "moq-transport-16", "D16"),
        ("quic", "moq-transport-17", "D17"),
        ("http", "moq-transport-17", "D17"),
        ("ws", "moq-transport-14", "D14"),
        ("ws", "moq-transport-17", "D17"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_joins_the_latest_group() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        // All lines in one group, so a late subscriber starting at the
        // latest group still sees them all.
        let mut publisher = Moq::spawn(&["publish", &url, "late", "--group-frames", "100"]);
        publisher.write(b"a\nb\nc\n").await;
        // The relay has the three frames before the subscriber starts.
        let mut track = announced(&relay, "late", "data").await;
        let mut group = track.next_group().await.unwrap().unwrap();
        for expected in ["a", "b", "c"] {
            assert_eq!(group.read_frame().await.unwrap().unwrap(), expected);
        }

        let subscriber = Moq::spawn(&["subscribe", &url, "late", "--count", "3"]);
        let (status, out, stderr) = subscriber.finish().await;
        assert!(status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out), "a\nb\nc\n");

        publisher.close_stdin();
        let (status, _, stderr) = publisher.finish().await;
        assert!(status.success(), "{stderr}");
    })
    .await
    .expect("timed out");
}

/// A fixed-seed xorshift64*: reproducible random bytes without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn varint(value: u64, out: &mut Vec<u8>) {
    moq_cli::format::encode_varint(value, out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_length_frames_byte_for_byte() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut sizes = vec![0usize, 1, 1 << 20];
        for _ in 0..9 {
            sizes.push((rng.next() % ((1 << 20) + 1)) as usize);
        }
        let mut input = Vec::new();
        for &size in &sizes {
            varint(size as u64, &mut input);
            input.extend((0..size).map(|_| rng.next() as u8));
        }
        let count = sizes.len().to_string();

        for url in [https(&relay), quic(&relay)] {
            let subscriber = Moq::spawn(&[
                "--tls-disable-verify",
                "subscribe",
                &url,
                "bin",
                "--format",
                "length",
                "--count",
                &count,
                "--timeout",
                "20s",
            ]);
            let mut publisher = Moq::spawn(&[
                "--tls-disable-verify",
                "publish",
                &url,
                "bin",
                "--format",
                "length",
                "--wait-subscriber",
            ]);
            // Feed stdin while reading the subscriber's stdout: both pipes are small.
            let mut stdin = publisher.stdin.take().unwrap();
            let data = input.clone();
            let writer = tokio::spawn(async move { stdin.write_all(&data).await });
            let (status, out, stderr) = subscriber.finish().await;
            writer.await.unwrap().unwrap();
            assert!(status.success(), "{stderr}");
            assert_eq!(out.len(), input.len(), "{stderr}");
            assert!(out == input, "the bytes differ");
            let (status, _, stderr) = publisher.finish().await;
            assert!(status.success(), "{stderr}");
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_once_lists_what_is_published() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = quic(&relay);
        let mut alice = Moq::spawn(&["--tls-disable-verify", "publish", &url, "room/alice"]);
        let mut bob = Moq::spawn(&["--tls-disable-verify", "publish", &url, "room/bob"]);
        let mut other = Moq::spawn(&["--tls-disable-verify", "publish", &url, "other"]);
        announced(&relay, "room/alice", "data").await;
        announced(&relay, "room/bob", "data").await;
        announced(&relay, "other", "data").await;

        let all = Moq::spawn(&["--tls-disable-verify", "announced", &url, "--once"]);
        let (status, out, stderr) = all.finish().await;
        assert!(status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out), "+other\n+room/alice\n+room/bob\n");

        let room = Moq::spawn(&[
            "--tls-disable-verify",
            "announced",
            &http(&relay),
            "room",
            "--once",
        ]);
        let (status, out, stderr) = room.finish().await;
        assert!(status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out), "+room/alice\n+room/bob\n");

        // Live mode: what is there, then changes.
        let mut live = Moq::spawn(&["--tls-disable-verify", "announced", &url, "room"]);
        let mut first = vec![live.line().await.unwrap(), live.line().await.unwrap()];
        first.sort();
        assert_eq!(first, ["+room/alice", "+room/bob"]);
        bob.close_stdin();
        assert_eq!(live.line().await.unwrap(), "-room/bob");

        for publisher in [&mut alice, &mut other] {
            publisher.close_stdin();
        }
        for publisher in [alice, bob, other] {
            let (status, _, stderr) = publisher.finish().await;
            assert!(status.success(), "{stderr}");
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_broadcast_fails_clearly_within_the_timeout() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let started = Instant::now();
        let subscriber = Moq::spawn(&["subscribe", &http(&relay), "nobody", "--timeout", "500ms"]);
        let (status, out, stderr) = subscriber.finish().await;
        assert!(!status.success());
        assert!(out.is_empty());
        assert!(stderr.contains("`nobody` is not announced"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_track_fails_clearly() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = quic(&relay);
        let mut publisher = Moq::spawn(&["--tls-disable-verify", "publish", &url, "t"]);
        announced(&relay, "t", "data").await;
        let subscriber = Moq::spawn(&["--tls-disable-verify", "subscribe", &url, "t", "--track", "nope"]);
        let (status, _, stderr) = subscriber.finish().await;
        assert!(!status.success());
        assert!(stderr.contains("track `nope` not found"), "{stderr}");
        publisher.close_stdin();
        assert!(publisher.finish().await.0.success());
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_publish_and_subscribe() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        let publisher = Moq::spawn(&["clock", "publish", &url, "clock"]);
        let subscriber = Moq::spawn(&[
            "clock",
            "subscribe",
            &url,
            "clock",
            "--count",
            "2",
            "--timeout",
            "20s",
        ]);
        let (status, out, stderr) = subscriber.finish().await;
        assert!(status.success(), "{stderr}");
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        for line in lines {
            // 2024-01-02 03:04:05: the minute frame and a seconds frame
            assert_eq!(line.len(), 19, "{line}");
            let bytes = line.as_bytes();
            assert!(
                bytes[4] == b'-' && bytes[13] == b':' && bytes[16] == b':',
                "{line}"
            );
        }
        drop(publisher);
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_try() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let run = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (status, _, stderr) = Moq::spawn(&args).finish().await;
            assert!(!status.success(), "{args:?} succeeded");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            stderr
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let stderr = run(s(&["subscribe", "ftp://127.0.0.1/", "b"])).await;
        assert!(stderr.contains("unsupported scheme `ftp`"), "{stderr}");
        let stderr = run(s(&["subscribe", "not a url", "b"])).await;
        assert!(stderr.contains("bad URL"), "{stderr}");

        // The relay's certificate is self-signed: verification fails, and
        // the message points at the ways out.
        let stderr = run(s(&["subscribe", &https(&relay), "b"])).await;
        assert!(stderr.contains("TLS"), "{stderr}");
        assert!(
            stderr.contains("--tls-disable-verify") && stderr.contains("http://"),
            "{stderr}"
        );

        let (status, _, stderr) = Moq::spawn(&["--protocol", "moq-lite-99", "subscribe", "moql://x/", "b"])
            .finish()
            .await;
        assert!(!status.success());
        assert!(stderr.contains("unknown protocol"), "{stderr}");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_resume_after_a_relay_crash() {
    resume_after_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_resume_after_a_relay_shutdown() {
    resume_after_restart(false).await;
}

/// Publisher and subscriber through a relay that goes away and comes back
/// on the same ports: `crash` drops every connection at once, otherwise it
/// shuts down (GOAWAY, drain).
async fn resume_after_restart(crash: bool) {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let (addr, http_addr) = (relay.addr, relay.http);
        let mut subscriber = Moq::spawn(&[
            "--tls-disable-verify",
            "subscribe",
            &quic(&relay),
            "r",
            "--timeout",
            "20s",
        ]);
        let mut publisher = Moq::spawn(&["publish", &http(&relay), "r", "--wait-subscriber"]);
        publisher.write(b"before\n").await;
        assert_eq!(subscriber.line().await.unwrap(), "before");

        if crash {
            relay.kill().await;
        } else {
            relay.stop().await;
        }
        let relay = TestRelay::restart(|c| {
            c.bind = addr;
            c.http_bind = http_addr.to_string();
        })
        .await;

        // Written while both are reconnecting: the latest group, which the
        // resumed subscription starts at.
        publisher.write(b"after\n").await;
        assert_eq!(subscriber.line().await.unwrap(), "after");
        publisher.write(b"again\n").await;
        assert_eq!(subscriber.line().await.unwrap(), "again");

        // The end of input ends the track, and the subscriber with it.
        publisher.close_stdin();
        let (status, rest, stderr) = subscriber.finish().await;
        assert!(status.success(), "{stderr}");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        let (status, _, stderr) = publisher.finish().await;
        assert!(status.success(), "{stderr}");
        relay.stop().await;
    })
    .await
    .expect("timed out");
}

/// A publisher that exits closes its connection, so the relay withdraws its
/// broadcast at once; without the close it would linger until the QUIC
/// idle timeout (10 s, the lower of both ends'), announced but dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exiting_publisher_is_withdrawn_at_once() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let origin = OriginProducer::new();
        let (_session, _client) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
        let mut announcements = origin.consume();
        for (i, url) in [quic(&relay), http(&relay)].into_iter().enumerate() {
            let name = format!("gone{i}");
            let mut publisher = Moq::spawn(&["publish", &url, &name, "--tls-disable-verify"]);
            publisher.write(b"a\n").await;
            loop {
                let next = announcements.announced().await.expect("origin open");
                if next.path.as_str() == name && next.broadcast.is_some() {
                    break;
                }
            }
            publisher.close_stdin();
            let (status, _, stderr) = publisher.finish().await;
            assert!(status.success(), "{stderr}");
            let withdrawn = async {
                loop {
                    let next = announcements.announced().await.expect("origin open");
                    if next.path.as_str() == name && next.broadcast.is_none() {
                        break;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(5), withdrawn)
                .await
                .unwrap_or_else(|_| panic!("{url}: still announced 5 s after the publisher exited"));
        }
    })
    .await
    .expect("timed out");
}

/// A subscriber asked for more frames than the track held before it
/// ended: it says so and exits non-zero, instead of reporting success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_that_ends_short_of_count_is_a_failure() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        let subscriber = Moq::spawn(&["subscribe", &url, "short", "--count", "3", "--timeout", "20s"]);
        let mut publisher = Moq::spawn(&[
            "publish",
            &url,
            "short",
            "--wait-subscriber",
            "--group-frames",
            "10",
        ]);
        publisher.write(b"only\n").await;
        publisher.close_stdin();
        let (status, out, stderr) = subscriber.finish().await;
        assert!(!status.success(), "exit 0 after 1 of 3 frames: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out), "only\n");
        assert!(stderr.contains("1 of the 3 frames"), "{stderr}");
        let (status, _, stderr) = publisher.finish().await;
        assert!(status.success(), "{stderr}");
    })
    .await
    .expect("timed out");
}

/// The README's pipe without `--wait-subscriber`: the subscriber waits for
/// the broadcast, the publisher reads all its input at once and exits. The
/// subscriber starts at the oldest group (the default), so it gets every
/// line from the publisher's cache through the relay, in every protocol
/// family and transport; the publisher waits for it before leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_delivers_every_line_without_waiting_for_a_subscriber() {
    tokio::time::timeout(LIMIT * 2, async {
        let relay = relay().await;
        let cases = [
            (quic(&relay), "moq-lite-04"),
            (http(&relay), "moq-lite-04"),
            (quic(&relay), "moq-transport-17"),
            (http(&relay), "moq-transport-14"),
        ];
        for (round, (url, protocol)) in cases.iter().enumerate() {
            let broadcast = format!("pipe{round}");
            let common = ["--tls-disable-verify", "--protocol", protocol];
            let mut sub_args = vec!["subscribe", url, &broadcast, "--count", "3", "--timeout", "20s"];
            sub_args.extend_from_slice(&common);
            let subscriber = Moq::spawn(&sub_args);
            let mut pub_args = vec!["publish", url, &broadcast];
            pub_args.extend_from_slice(&common);
            let mut publisher = Moq::spawn(&pub_args);
            publisher.write(b"alpha\nbeta\ngamma\n").await;
            publisher.close_stdin();
            let (status, out, stderr) = subscriber.finish().await;
            assert!(status.success(), "{protocol} via {url}: {stderr}");
            assert_eq!(
                String::from_utf8_lossy(&out),
                "alpha\nbeta\ngamma\n",
                "{protocol} via {url}: {stderr}"
            );
            let (status, _, stderr) = publisher.finish().await;
            assert!(status.success(), "{protocol} via {url}: {stderr}");
        }
    })
    .await
    .expect("timed out");
}

/// `--start oldest`, `--start N` and `--start latest` through the relay,
/// after the publisher wrote ten groups (one line each): each gets exactly
/// the lines from its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_oldest_a_group_or_latest_through_the_relay() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        let mut publisher = Moq::spawn(&["publish", &url, "ten"]);
        let input: String = (0..10).map(|i| format!("line{i}\n")).collect();
        publisher.write(input.as_bytes()).await;
        // Once the relay holds group 9 (fetched from group 0 on), every
        // start below is answered from its cache.
        let origin = OriginProducer::new();
        let (_session, _client) = relay.connect(&relay.url("moql", "/"), None, Some(&origin)).await;
        let mut announced = origin.consume();
        let broadcast = loop {
            let next = announced.announced().await.expect("origin open");
            if next.path == moq_lite::model::Path::new("ten") {
                if let Some(broadcast) = next.broadcast {
                    break broadcast;
                }
            }
        };
        let mut track = broadcast
            .subscribe_track_from(&moq_lite::model::Track::new("data"), Some(0))
            .unwrap();
        while track.next_group().await.unwrap().expect("group").sequence() < 9 {}

        // moq-lite's SUBSCRIBE start group, IETF AbsoluteStart (draft-14
        // field, draft-17 parameter) and LargestObject.
        for protocol in [
            "moq-lite-06",
            "moq-lite-05",
            "moq-lite-04",
            "moq-transport-14",
            "moq-transport-17",
        ] {
            for (start, count, expected) in [("oldest", 10, 0), ("4", 6, 4), ("latest", 1, 9)] {
                let count = count.to_string();
                let args = [
                    "subscribe",
                    &url,
                    "ten",
                    "--protocol",
                    protocol,
                    "--start",
                    start,
                    "--count",
                    &count,
                ];
                let (status, out, stderr) = Moq::spawn(&args).finish().await;
                assert!(status.success(), "{protocol} --start {start}: {stderr}");
                let want: String = (expected..10).map(|i| format!("line{i}\n")).collect();
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    want,
                    "{protocol} --start {start}: {stderr}"
                );
            }
        }
        publisher.close_stdin();
        let (status, _, stderr) = publisher.finish().await;
        assert!(status.success(), "{stderr}");
    })
    .await
    .expect("timed out");
}

/// The relay serves the track from its live edge (a live subscriber came
/// first); `--start N` below that gets the older groups fetched from the
/// publisher through the relay (a backfill each time, as each start is
/// lower), in order, over moq-lite and IETF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_older_than_the_relay_holds_is_fetched_from_the_publisher() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        // All ten groups exist before the relay subscribes, at the live edge.
        let published = OriginProducer::new();
        let broadcast = published.create_broadcast("history").unwrap();
        let mut track = broadcast.create_track(moq_lite::model::Track::new("data"));
        for i in 0..10 {
            let mut group = track.append_group().unwrap();
            group.write_frame(format!("line{i}").into()).unwrap();
            group.finish().unwrap();
        }
        let (_publisher, _client) = relay
            .connect(&relay.url("moql", "/"), Some(&published), None)
            .await;
        let mut live = announced(&relay, "history", "data").await;
        assert_eq!(live.next_group().await.unwrap().expect("group").sequence(), 9);

        for (protocol, start) in [
            ("moq-lite-06", 7),
            ("moq-lite-05", 5),
            ("moq-transport-20", 4),
            ("moq-lite-04", 2),
            ("moq-transport-17", 0),
        ] {
            let (start, count) = (start.to_string(), (10 - start).to_string());
            let args = [
                "subscribe",
                &url,
                "history",
                "--protocol",
                protocol,
                "--start",
                &start,
                "--count",
                &count,
            ];
            let (status, out, stderr) = Moq::spawn(&args).finish().await;
            assert!(status.success(), "{protocol} --start {start}: {stderr}");
            let from: u64 = start.parse().unwrap();
            let want: String = (from..10).map(|i| format!("line{i}\n")).collect();
            assert_eq!(
                String::from_utf8_lossy(&out),
                want,
                "{protocol} --start {start}: {stderr}"
            );
        }
    })
    .await
    .expect("timed out");
}

/// `--start N` older than what the relay and the publisher still hold:
/// the subscriber gets what there is, says which groups are gone, and exits
/// non-zero, over moq-lite and IETF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_older_than_anything_held_is_reported() {
    tokio::time::timeout(LIMIT, async {
        use moq_lite::model::{CacheConfig, GROUP_OVERHEAD, Track, TrackProducer};
        let relay = relay().await;
        let url = http(&relay);
        // A publisher whose own cache keeps its last three groups only.
        let origin = OriginProducer::new();
        let broadcast = origin.new_broadcast();
        let config = CacheConfig {
            max_bytes: 3 * (GROUP_OVERHEAD + 128),
            ..Default::default()
        };
        let mut track = TrackProducer::with_cache(Track::new("data"), config);
        broadcast.insert_track(&track);
        for i in 0..10 {
            let mut group = track.append_group().unwrap();
            group.write_frame(format!("line{i}").into()).unwrap();
            group.finish().unwrap();
        }
        origin.publish("old", &broadcast.consume()).unwrap();
        let (_session, _client) = relay.connect(&relay.url("moql", "/"), Some(&origin), None).await;
        for protocol in ["moq-lite-06", "moq-lite-04", "moq-transport-17"] {
            let args = [
                "subscribe",
                &url,
                "old",
                "--protocol",
                protocol,
                "--start",
                "2",
                "--count",
                "3",
            ];
            let (status, out, stderr) = Moq::spawn(&args).finish().await;
            assert!(!status.success(), "{protocol}: {stderr}");
            assert_eq!(
                String::from_utf8_lossy(&out),
                "line7\nline8\nline9\n",
                "{protocol}: {stderr}"
            );
            assert!(
                stderr.contains("groups 2..6 are no longer held"),
                "{protocol}: {stderr}"
            );
            assert!(stderr.contains("5 group(s)"), "{protocol}: {stderr}");
        }
        drop(track);
    })
    .await
    .expect("timed out");
}

/// Groups the publisher says will not come (SUBSCRIBE_DROP through the
/// relay) are reported as dropped upstream, and the subscriber exits
/// non-zero for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_dropped_upstream_are_reported() {
    tokio::time::timeout(LIMIT, async {
        let relay = relay().await;
        let url = http(&relay);
        let origin = OriginProducer::new();
        let broadcast = origin.create_broadcast("gappy").unwrap();
        let mut track = broadcast.create_track(moq_lite::model::Track::new("data"));
        let write = |track: &mut moq_lite::model::TrackProducer, i: u64| {
            let mut group = track.create_group(i).unwrap();
            group.write_frame(format!("line{i}").into()).unwrap();
            group.finish().unwrap();
        };
        write(&mut track, 0);
        let (_session, _client) = relay.connect(&relay.url("moql", "/"), Some(&origin), None).await;
        let args = [
            "subscribe",
            &url,
            "gappy",
            "--protocol",
            "moq-lite-06",
            "--start",
            "0",
            "--count",
            "2",
        ];
        let mut subscriber = Moq::spawn(&args);
        assert_eq!(subscriber.line().await.as_deref(), Some("line0"));
        track.drop_groups(1..=2);
        write(&mut track, 3);
        let (status, out, stderr) = subscriber.finish().await;
        assert!(!status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out), "line3\n", "{stderr}");
        assert!(stderr.contains("groups 1..2 were dropped upstream"), "{stderr}");
    })
    .await
    .expect("timed out");
}

/// A relay that checks tokens refuses a publisher without one, and an IETF
/// publisher's broadcast outside its token's grant: `moq publish` says so
/// and exits non-zero, even when all its input was read before the refusal
/// arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publisher_fails_with_the_reason() {
    tokio::time::timeout(LIMIT, async {
        let dir = std::env::temp_dir().join(format!("moq-cli-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.jwk");
        let key = moq_relay::auth::Key::generate(moq_relay::auth::Algorithm::ES256).unwrap();
        key.save(&path).unwrap();
        let relay = TestRelay::start(|c| c.auth_key = Some(path.clone())).await;
        let ws = format!("ws://127.0.0.1:{}/", relay.http.port());
        for url in [quic(&relay), https(&relay), ws] {
            let mut publisher =
                Moq::spawn(&["publish", &url, "nope", "--tls-disable-verify", "--no-reconnect"]);
            publisher.write(b"a\nb\n").await;
            publisher.close_stdin();
            let (status, _, stderr) = publisher.finish().await;
            assert!(
                !status.success(),
                "{url}: exit 0 from a refused publisher: {stderr}"
            );
            assert!(stderr.contains("unauthorized"), "{url}: {stderr}");
        }
        // A token that lets it publish `alice` only: publishing `bob`, an
        // IETF publisher hears UNAUTHORIZED for its PUBLISH_NAMESPACE and
        // fails with it. (moq-lite up to -04 has no answer to an
        // announcement: the relay ignores it, and the publisher can only
        // say that nobody subscribed.)
        let mut claims = moq_relay::auth::Claims::new("");
        claims.put = vec!["alice".into()];
        let token = moq_relay::auth::sign(&key, &claims).unwrap();
        for protocol in ["moq-transport-14", "moq-transport-16", "moq-transport-17"] {
            let url = quic(&relay);
            let args = [
                "publish",
                &url,
                "bob",
                "--tls-disable-verify",
                "--no-reconnect",
                "--jwt",
                &token,
                "--protocol",
                protocol,
            ];
            let mut publisher = Moq::spawn(&args);
            publisher.write(b"a\n").await;
            let (status, _, stderr) = publisher.finish().await;
            assert!(
                !status.success(),
                "{protocol}: exit 0 from a refused publisher: {stderr}"
            );
            assert!(
                stderr.contains("refused to take `bob`") && stderr.contains("unauthorized"),
                "{protocol}: {stderr}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("timed out");
}

//! Runs the load against an in-process relay for about a second and checks
//! the JSON summary.

use std::time::Duration;

use moq_bench::knobs::{Range, Scenario};
use moq_bench::{LocalRelay, Options};

/// About a second and a half of one publisher at 50 fps to the others.
fn short_load(connections: u64) -> Scenario {
    Scenario {
        connections,
        publishers: 1,
        fps: Range::one(50.0),
        frame_size: Range::one(1000),
        group_size: Range::one(10),
        ramp: Duration::from_millis(300),
        duration: Duration::from_millis(1500),
        report: Duration::from_millis(500),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_against_local_relay() {
    let relay = LocalRelay::start().await.expect("relay starts");
    let scenario = short_load(4);
    let options = Options {
        relay_pid: Some(std::process::id()),
        shared_process: true,
        quiet: true,
        ..Default::default()
    };
    let summary = moq_bench::load::run(&relay.target(), &scenario, &options)
        .await
        .expect("load runs");
    relay.stop().await;

    let json: serde_json::Value = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["kind"], "summary");
    assert_eq!(json["connections"], 4, "{json}");
    assert!(json["frames_received"].as_u64().unwrap() > 0, "{json}");
    assert!(json["groups_received"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["groups_lost"], 0, "{json}");
    assert_eq!(json["groups_incomplete"], 0, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    for field in [
        "latency_p50_ms",
        "latency_p90_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "setup_p50_ms",
        "setup_p99_ms",
    ] {
        assert!(
            json[field].as_f64().is_some_and(|v| v >= 0.0),
            "{field} missing: {json}"
        );
    }
    assert!(json["recv_mbps"].as_f64().unwrap() > 0.0);
    assert!(json["relay"]["rss_end_bytes"].as_u64().unwrap() > 0);
}

/// The same load over an IETF draft (`--protocol moq-transport-20`): the
/// relay serves it through the same origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_over_an_ietf_draft() {
    let relay = LocalRelay::start().await.expect("relay starts");
    let scenario = short_load(3);
    let options = Options {
        quiet: true,
        ..Default::default()
    };
    let mut target = relay.target();
    moq_bench::cli::offer(&mut target, Some("moq-transport-20".parse().unwrap()));
    assert_eq!(target.client.protocols, ["moqt-20"]);
    let summary = moq_bench::load::run(&target, &scenario, &options)
        .await
        .expect("load runs");
    relay.stop().await;
    let json: serde_json::Value = serde_json::to_value(&summary).unwrap();
    assert!(json["frames_received"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
}

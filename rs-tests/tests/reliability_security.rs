//! Security beyond the auth matrix: segment-wise prefixes (`/a` is not
//! `/ab`), announcing outside `put` through path tricks, and cluster links
//! to a keyed relay needing the cluster token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::Session;
use moq_lite::model::{OriginProducer, Track};
use moq_relay::auth::{Algorithm, Claims, Key, sign};
use rs_tests::TestRelay;

const LIMIT: Duration = Duration::from_secs(30);

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("moq-reliability-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn token(key: &Key, root: &str, put: &[&str], get: &[&str]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut claims = Claims::new(root);
    claims.put = put.iter().map(|s| s.to_string()).collect();
    claims.get = get.iter().map(|s| s.to_string()).collect();
    claims.exp = Some(now + 600);
    sign(key, &claims).unwrap()
}

/// A relay checking tokens against a fresh key, with nothing public.
async fn keyed(name: &str) -> (TestRelay, Key, std::path::PathBuf) {
    let dir = temp_dir(name);
    let key = Key::generate(Algorithm::ES256).unwrap();
    let path = dir.join("key.jwk");
    key.save(&path).unwrap();
    let relay = TestRelay::start(|config| config.auth_key = Some(path.clone())).await;
    (relay, key, dir)
}

async fn connect(
    relay: &TestRelay,
    path: &str,
    token: &str,
    publish: Option<&OriginProducer>,
    subscribe: Option<&OriginProducer>,
) -> (Session, moq_lite::endpoint::Client) {
    let mut url = relay.url("https", path);
    url.set_query(Some(&format!("jwt={token}")));
    relay.connect(&url, publish, subscribe).await
}

/// Every broadcast currently announced in `origin`, after a moment to settle.
async fn visible(origin: &OriginProducer, settle: Duration) -> Vec<String> {
    tokio::time::sleep(settle).await;
    let mut consumer = origin.consume();
    let mut paths = Vec::new();
    while let Some(a) = consumer.try_announced() {
        match a.broadcast {
            Some(_) => paths.push(a.path.to_string()),
            None => paths.retain(|p| *p != a.path.to_string()),
        }
    }
    paths.sort();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_a_sees_nothing_of_ab() {
    tokio::time::timeout(LIMIT, async {
        let (relay, key, _dir) = keyed("ab").await;
        let publisher = OriginProducer::new();
        let admin = token(&key, "", &[""], &[""]);
        let (_p, _pc) = connect(&relay, "/", &admin, Some(&publisher), None).await;
        let mut tracks = Vec::new();
        let mut broadcasts = Vec::new();
        for path in ["a/x", "ab/x", "ab", "abc/a"] {
            let broadcast = publisher.create_broadcast(path).unwrap();
            let mut track = broadcast.create_track(Track::new("t"));
            track
                .append_group()
                .unwrap()
                .write_frame("secret".into())
                .unwrap();
            tracks.push(track);
            broadcasts.push(broadcast);
        }
        let everything = OriginProducer::new();
        let (_e, _ec) = connect(&relay, "/", &admin, None, Some(&everything)).await;
        assert_eq!(
            visible(&everything, Duration::from_millis(300)).await,
            ["a/x", "ab", "ab/x", "abc/a"]
        );

        // Rooted at a: sees a/x (as x), nothing of ab.
        let viewer = OriginProducer::new();
        let rooted = token(&key, "a", &[], &[""]);
        let (_v, _vc) = connect(&relay, "/a", &rooted, None, Some(&viewer)).await;
        assert_eq!(visible(&viewer, Duration::from_millis(300)).await, ["x"]);
        let mut consumer = rs_tests::subscribe(&viewer, "x", "t").await;
        assert_eq!(
            consumer
                .next_group()
                .await
                .unwrap()
                .unwrap()
                .read_frame()
                .await
                .unwrap()
                .unwrap(),
            "secret"
        );
        // The same token at /ab is refused.
        let (session, _c) = connect(&relay, "/ab", &rooted, None, None).await;
        assert_eq!(session.closed().await, moq_lite::Error::Unauthorized);
        // Nor do URL tricks reach ab: the URL is normalised before the check.
        for path in ["/a/../ab", "/a/%2e%2e/ab", "/a/..%2fab"] {
            let other = OriginProducer::new();
            let (session, _c) = connect(&relay, path, &rooted, None, Some(&other)).await;
            let seen = tokio::select! {
                _ = session.closed() => Vec::new(),
                seen = visible(&other, Duration::from_millis(300)) => seen,
            };
            assert!(seen.is_empty(), "{path}: {seen:?}");
        }

        // Rooted at the top with get ["a"]: the same.
        let viewer = OriginProducer::new();
        let prefixed = token(&key, "", &[], &["a"]);
        let (_v2, _vc2) = connect(&relay, "/", &prefixed, None, Some(&viewer)).await;
        assert_eq!(visible(&viewer, Duration::from_millis(300)).await, ["a/x"]);
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_announcing_outside_put_through_path_tricks() {
    tokio::time::timeout(LIMIT, async {
        let (relay, key, _dir) = keyed("put").await;
        let everything = OriginProducer::new();
        let admin = token(&key, "", &[""], &[""]);
        let (_e, _ec) = connect(&relay, "/", &admin, None, Some(&everything)).await;

        // May publish under room/a only. Each trick from its own session, as
        // an invalid path may end the session that sent it.
        let put = token(&key, "room", &["a"], &[]);
        let tricks = [
            "a/../b",
            "a/./../b",
            "a/..",
            "a%2F..%2Fb",
            "a%2f%2e%2e%2fb",
            "ab",
            "a\u{0}/../b",
            "b/../a/../../b",
            "../room/b",
        ];
        let mut keep = Vec::new();
        for trick in tricks {
            let origin = OriginProducer::new();
            let (session, client) = connect(&relay, "/room", &put, Some(&origin), None).await;
            let broadcast = origin.create_broadcast(trick).unwrap();
            keep.push((broadcast, origin, session, client));
        }
        // Legitimate ones, including normalised slashes.
        let origin = OriginProducer::new();
        let (_s, _c) = connect(&relay, "/room", &put, Some(&origin), None).await;
        let _ok1 = origin.create_broadcast("a/cam").unwrap();
        let _ok2 = origin.create_broadcast("/a//mic/").unwrap();
        let seen = visible(&everything, Duration::from_millis(600)).await;
        for path in &seen {
            assert!(
                path == "room/a" || path.starts_with("room/a/"),
                "{path:?} was announced outside room/a: {seen:?}"
            );
            assert!(!path.split('/').any(|s| s == ".." || s == "."), "{path:?}");
        }
        assert!(seen.contains(&"room/a/cam".to_string()), "{seen:?}");
        assert!(seen.contains(&"room/a/mic".to_string()), "{seen:?}");
        // The relay is fine afterwards.
        let (status, _) = relay.get("/health").await;
        assert!(status.contains("200"));
    })
    .await
    .expect("timed out");
}

/// A relay linked to a keyed relay: broadcasts flow only with the cluster
/// token, and only over WebTransport (raw QUIC carries no token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_links_need_the_cluster_token() {
    tokio::time::timeout(LIMIT, async {
        let (hub, key, dir) = keyed("cluster").await;
        let token_file = dir.join("cluster.jwt");
        std::fs::write(&token_file, token(&key, "", &[""], &[""])).unwrap();
        let https = format!("https://127.0.0.1:{}/", hub.addr.port());
        let leaf = |peer: String, token: Option<std::path::PathBuf>| {
            TestRelay::start(move |config| {
                config.cluster_connect = vec![peer.clone()];
                config.cluster_token = token.clone();
                config.cluster_tls_disable_verify = true;
            })
        };
        let no_token = leaf(https.clone(), None).await;
        let raw_with_token = leaf(hub.cluster_url(), Some(token_file.clone())).await;
        let with_token = leaf(https.clone(), Some(token_file.clone())).await;

        // Something published at each leaf.
        let mut keep = Vec::new();
        for (relay, name) in [
            (&no_token, "no-token"),
            (&raw_with_token, "raw"),
            (&with_token, "token"),
        ] {
            let origin = OriginProducer::new();
            let (s, c) = relay.connect(&relay.url("moql", "/"), Some(&origin), None).await;
            let broadcast = origin.create_broadcast(name).unwrap();
            keep.push((broadcast, origin, s, c));
        }
        let hub_view = OriginProducer::new();
        let admin = token(&key, "", &[], &[""]);
        let (_h, _hc) = connect(&hub, "/", &admin, None, Some(&hub_view)).await;
        // Give links time to come up (and fail).
        let mut seen = Vec::new();
        for _ in 0..30 {
            seen = visible(&hub_view, Duration::from_millis(100)).await;
            if seen.contains(&"token".to_string()) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen_later = visible(&hub_view, Duration::ZERO).await;
        assert_eq!(
            seen_later,
            ["token"],
            "only the tokened https link carries broadcasts ({seen:?})"
        );
        let (_, metrics) = hub.get("/metrics").await;
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(
            !metrics.contains("moq_relay_sessions_refused_total 0\n"),
            "{metrics}"
        );
    })
    .await
    .expect("timed out");
}

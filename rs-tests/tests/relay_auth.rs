//! The relay's auth matrix: who may connect, publish and subscribe where.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::model::{OriginProducer, Track};
use moq_lite::{Error, Session};
use moq_relay::auth::{Algorithm, Claims, Key, sign};
use rs_tests::TestRelay;

const LIMIT: Duration = Duration::from_secs(20);

struct Keys {
    key: Key,
    other: Key,
    _dir: std::path::PathBuf,
}

/// A relay that checks tokens against a fresh ES256 key, with `demo` public.
async fn relay() -> (TestRelay, Keys) {
    let dir = std::env::temp_dir().join(format!(
        "moq-auth-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = Key::generate(Algorithm::ES256).unwrap();
    let path = dir.join("key.jwk");
    key.save(&path).unwrap();
    let relay = TestRelay::start(|config| {
        config.auth_key = Some(path.clone());
        config.auth_public = vec!["demo".into()];
    })
    .await;
    let other = Key::generate(Algorithm::ES256).unwrap();
    (
        relay,
        Keys {
            key,
            other,
            _dir: dir,
        },
    )
}

fn token(key: &Key, root: &str, put: &[&str], get: &[&str], expires_in: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut claims = Claims::new(root);
    claims.put = put.iter().map(|s| s.to_string()).collect();
    claims.get = get.iter().map(|s| s.to_string()).collect();
    claims.exp = Some((now + expires_in) as u64);
    sign(key, &claims).unwrap()
}

/// Connects over WebTransport to `path?jwt=token`.
async fn connect(
    relay: &TestRelay,
    path: &str,
    token: Option<&str>,
    publish: Option<&OriginProducer>,
    subscribe: Option<&OriginProducer>,
) -> (Session, moq_lite::endpoint::Client) {
    let mut url = relay.url("https", path);
    if let Some(token) = token {
        url.set_query(Some(&format!("jwt={token}")));
    }
    relay.connect(&url, publish, subscribe).await
}

/// Every announcement currently visible in `origin`.
async fn visible(origin: &OriginProducer) -> Vec<String> {
    // Announcements travel through the relay: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut consumer = origin.consume();
    let mut paths = Vec::new();
    while let Some(a) = consumer.try_announced() {
        if a.broadcast.is_some() {
            paths.push(a.path.to_string());
        }
    }
    paths.sort();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sessions_get_unauthorized() {
    tokio::time::timeout(LIMIT, async {
        let (relay, keys) = relay().await;
        let cases = [
            ("no token outside public", "/room", None),
            (
                "expired",
                "/room",
                Some(token(&keys.key, "room", &[""], &[""], -10)),
            ),
            (
                "wrong key",
                "/room",
                Some(token(&keys.other, "room", &[""], &[""], 60)),
            ),
            (
                "outside the root",
                "/roomba",
                Some(token(&keys.key, "room", &[""], &[""], 60)),
            ),
            ("garbage", "/room", Some("not.a.token".to_string())),
        ];
        for (name, path, token) in cases {
            let (session, _client) = connect(&relay, path, token.as_deref(), None, None).await;
            assert_eq!(session.closed().await, Error::Unauthorized, "{name}");
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_prefixes_are_enforced() {
    tokio::time::timeout(LIMIT, async {
        let (relay, keys) = relay().await;
        // Alice may publish room/alice only; Bob may read room/alice only.
        let alice = OriginProducer::new();
        let alice_token = token(&keys.key, "room", &["alice"], &[], 60);
        let (alice_session, _ac) = connect(&relay, "/room", Some(&alice_token), Some(&alice), None).await;
        let _mine = alice.create_broadcast("alice").unwrap();
        let _sneaky = alice.create_broadcast("alice2").unwrap(); // not under `alice`
        let escape = alice.create_broadcast("bob").unwrap();

        let admin = OriginProducer::new();
        let admin_token = token(&keys.key, "", &[], &[""], 60);
        let (_x, _xc) = connect(&relay, "/", Some(&admin_token), None, Some(&admin)).await;
        assert_eq!(visible(&admin).await, vec!["room/alice".to_string()]);

        // A refused broadcast ending is not a protocol error: Alice stays.
        drop(escape);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), alice_session.closed())
                .await
                .is_err(),
            "alice's session survives"
        );
        assert_eq!(visible(&admin).await, vec!["room/alice".to_string()]);

        let bob = OriginProducer::new();
        let bob_token = token(&keys.key, "room", &[], &["alice"], 60);
        let (_b, _bc) = connect(&relay, "/room", Some(&bob_token), None, Some(&bob)).await;
        assert_eq!(visible(&bob).await, vec!["alice".to_string()]);

        // A token for room/carol sees nothing of room/alice, nor of room/alicex.
        let carol = OriginProducer::new();
        let carol_token = token(&keys.key, "room", &[], &["carol"], 60);
        let (_c, _cc) = connect(&relay, "/room", Some(&carol_token), None, Some(&carol)).await;
        assert!(visible(&carol).await.is_empty());
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_only_under_public_prefixes() {
    tokio::time::timeout(LIMIT, async {
        let (relay, _keys) = relay().await;
        let publisher = OriginProducer::new();
        let (_p, _pc) = connect(&relay, "/demo", None, Some(&publisher), None).await;
        let broadcast = publisher.create_broadcast("clock").unwrap();
        let mut track = broadcast.create_track(Track::new("seconds"));
        track.append_group().unwrap().write_frame("12:00".into()).unwrap();

        let viewer = OriginProducer::new();
        let (_v, _vc) = connect(&relay, "/demo", None, None, Some(&viewer)).await;
        let mut consumer = rs_tests::subscribe(&viewer, "clock", "seconds").await;
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.read_frame().await.unwrap().unwrap(), "12:00");

        // The HTTP side shows public broadcasts only.
        let (_, body) = relay.get("/announced").await;
        assert_eq!(body, b"demo/clock\n");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_ends_its_session() {
    tokio::time::timeout(LIMIT, async {
        let (relay, keys) = relay().await;
        let short = token(&keys.key, "room", &[""], &[""], 2);
        let (session, _client) = connect(&relay, "/room", Some(&short), None, None).await;
        assert_eq!(session.closed().await, Error::Unauthorized);
    })
    .await
    .expect("timed out");
}

/// Raw QUIC has no URL on the wire, but IETF clients (and the moq-lite
/// SETUP path, with draft-14 parameters) send the path and query they
/// dialled as the PATH setup parameter: the relay roots the session there
/// and checks the `?jwt=` token in it, as it does for WebTransport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_quic_sessions_carry_path_and_token_in_setup() {
    tokio::time::timeout(LIMIT, async {
        let (relay, keys) = relay().await;
        let admin = OriginProducer::new();
        let admin_token = token(&keys.key, "", &[], &[""], 60);
        let (_x, _xc) = connect(&relay, "/", Some(&admin_token), None, Some(&admin)).await;
        for (i, protocol) in ["moql", "moqt-16", "moqt-17", "moq-00"].into_iter().enumerate() {
            let client = relay.client_offering(&[protocol]);
            let dial = |token: Option<&str>| {
                let mut url = relay.url("moqt", "/room");
                if let Some(token) = token {
                    url.set_query(Some(&format!("jwt={token}")));
                }
                url
            };
            // No token: refused, as over WebTransport.
            let url = dial(None);
            let connected = client.connect(&url).await.expect("connects");
            let config = moq_lite::SessionConfig {
                raw_quic_url: Some(url),
                ..Default::default()
            };
            // Refused once SETUP showed where it is going.
            let refused = match moq_transport_compat::connect(connected.session, config).await {
                Ok(session) => session.closed().await,
                Err(err) => err,
            };
            assert_eq!(refused, Error::Unauthorized, "{protocol}");

            // With a token for room: published at room/<name>.
            let origin = OriginProducer::new();
            let url = dial(Some(&token(&keys.key, "room", &[""], &[], 60)));
            let connected = client.connect(&url).await.expect("connects");
            let config = moq_lite::SessionConfig {
                publish: Some(origin.consume()),
                raw_quic_url: Some(url),
                ..Default::default()
            };
            let session = moq_transport_compat::connect(connected.session, config)
                .await
                .unwrap_or_else(|e| panic!("{protocol}: {e}"));
            let name = format!("cam{i}");
            let _broadcast = origin.create_broadcast(name.as_str()).unwrap();
            let expected = format!("room/{name}");
            let mut announced = admin.consume();
            loop {
                let next = announced.announced().await.expect("origin open");
                if next.path.as_str() == expected && next.broadcast.is_some() {
                    break;
                }
            }
            drop(session);
        }
    })
    .await
    .expect("timed out");
}

/// Over WebSocket the upgrade request's path and `?jwt=` play the part of
/// the WebTransport URL: refused without a token, rooted with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_carry_path_and_token_in_the_request() {
    tokio::time::timeout(LIMIT, async {
        let (relay, keys) = relay().await;
        let admin = OriginProducer::new();
        let admin_token = token(&keys.key, "", &[], &[""], 60);
        let (_x, _xc) = connect(&relay, "/", Some(&admin_token), None, Some(&admin)).await;
        let client = relay.client_offering(&["moq-lite-04"]);
        let dial = |token: Option<&str>| {
            let mut url: url::Url = format!("ws://127.0.0.1:{}/room", relay.http.port())
                .parse()
                .unwrap();
            if let Some(token) = token {
                url.set_query(Some(&format!("jwt={token}")));
            }
            url
        };

        let connected = client.connect_websocket(&dial(None)).await.expect("connects");
        let refused = match moq_transport_compat::connect(connected.session, Default::default()).await {
            Ok(session) => session.closed().await,
            Err(err) => err,
        };
        assert_eq!(refused, Error::Unauthorized);

        let origin = OriginProducer::new();
        let connected = client
            .connect_websocket(&dial(Some(&token(&keys.key, "room", &[""], &[], 60))))
            .await
            .expect("connects");
        let _session = moq_transport_compat::connect(
            connected.session,
            moq_lite::SessionConfig {
                publish: Some(origin.consume()),
                ..Default::default()
            },
        )
        .await
        .expect("session");
        let _cam = origin.create_broadcast("cam").unwrap();
        assert_eq!(visible(&admin).await, vec!["room/cam".to_string()]);
    })
    .await
    .expect("timed out");
}

use bytes::Bytes;
use moq_lite::model::{OriginProducer, Track};
use rs_tests::{TestRelay, subscribe};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let relay = TestRelay::start(|config| {
        config.quic_idle_timeout = Duration::from_millis(1000);
        config.quic_keep_alive = Duration::from_millis(250);
    })
    .await;
    let p = OriginProducer::new();
    let (_s, _c) = relay.connect(&relay.url("moql", "/"), Some(&p), None).await;
    let b = p.create_broadcast("x").unwrap();
    let mut t = b.create_track(Track::new("a"));
    let mut g0 = t.append_group().unwrap();
    g0.write_frame(Bytes::from_static(b"0")).unwrap();
    g0.finish().unwrap();
    let o = OriginProducer::new();
    let (_vs, _vc) = relay.connect(&relay.url("moql", "/"), None, Some(&o)).await;
    let mut c = subscribe(&o, "x", "a").await;
    let o2 = OriginProducer::new();
    let (_vs2, _vc2) = relay.connect(&relay.url("https", "/"), None, Some(&o2)).await;
    let _c2 = subscribe(&o2, "x", "a").await;
    let mut r0 = c.next_group().await.unwrap().unwrap();
    eprintln!("g0 {:?}", r0.read_frame().await);
    let mut g1 = t.append_group().unwrap();
    g1.write_frame(Bytes::from_static(b"one")).unwrap();
    let mut r1 = c.next_group().await.unwrap().unwrap();
    eprintln!("seq {}", r1.sequence());
    eprintln!(
        "g1 first: {:?}",
        tokio::time::timeout(Duration::from_secs(2), r1.read_frame()).await
    );
    g1.write_frame(Bytes::from_static(b"two")).unwrap();
    eprintln!(
        "g1 after second write: {:?}",
        tokio::time::timeout(Duration::from_secs(2), r1.read_frame()).await
    );
    eprintln!(
        "g1 next: {:?}",
        tokio::time::timeout(Duration::from_secs(2), r1.read_frame()).await
    );
    drop(g1);
}

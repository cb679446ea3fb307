//! The WebSocket (QMux) session fuzz target's harness on stable, bounded:
//! its seeds, every input of its committed corpus, and every truncation of
//! the seeds, each a whole server session that must end without a panic.

#[path = "../../fuzz/src/websocket.rs"]
mod websocket;

#[test]
fn seeds_and_their_truncations_end_cleanly() {
    let seeds = websocket::seeds();
    assert!(seeds.len() >= 12);
    for seed in &seeds {
        for len in 0..=seed.len() {
            websocket::session(&seed[..len]);
        }
    }
}

#[test]
fn the_committed_corpus_ends_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/websocket_session");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let input = std::fs::read(entry.unwrap().path()).unwrap();
        websocket::session(&input);
        inputs += 1;
    }
    assert!(inputs > 0);
}

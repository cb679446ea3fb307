//! Writes valid encodings into `fuzz/seeds/<target>/` (not committed) as
//! starting points, read beside the committed corpus `fuzz/corpus/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --bin fuzz_seeds`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let lite = moq_fuzz::lite::seeds();
    let ietf = moq_fuzz::ietf::seeds();
    let sets: [(&str, &Vec<Vec<u8>>); 8] = [
        ("lite_messages", &lite),
        ("lite_setup", &lite),
        ("lite_streams", &lite),
        ("path", &lite),
        ("ietf_control", &ietf),
        ("ietf_data", &ietf),
        ("token", &moq_fuzz::token::seeds()),
        ("websocket_session", &moq_fuzz::websocket::seeds()),
    ];
    for (target, seeds) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed)?;
        }
    }
    Ok(())
}

//! Random and mutated bytes against every moq-lite decoder (a stable,
//! bounded stand-in for the fuzz targets in `fuzz/`, sharing their checks).
//!
//! For every message of every version, the SETUP path, stream types, group
//! streams and paths: no decoder panics, and whatever decodes re-encodes to
//! bytes that decode to the same value. Inputs are random bytes, and valid
//! encodings with bytes flipped, inserted, deleted or cut off.

#[path = "../../fuzz/src/lite.rs"]
mod lite;

#[path = "support/mutate.rs"]
mod mutate;

use mutate::{apply, edit, every_single_byte_change};
use proptest::prelude::*;

/// The seeds themselves decode and round-trip, and so does every one-byte
/// change and every truncation of them (exhaustive, deterministic).
#[test]
fn seeds_and_every_single_byte_change() {
    let seeds = lite::seeds();
    assert!(seeds.len() > 40, "every message has a seed");
    every_single_byte_change(&seeds, lite::all);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        lite::all(&bytes);
    }

    #[test]
    fn mutated_valid_encodings(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let seeds = lite::seeds();
        let seed = &seeds[pick.index(seeds.len())];
        lite::all(&apply(seed, &edits));
    }
}

/// Every committed fuzz input of the moq-lite targets (corpora and seeds,
/// regressions included) passes the same checks on stable.
#[test]
fn committed_fuzz_inputs_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "seeds"] {
        for target in ["lite_messages", "lite_streams", "lite_setup"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let data = std::fs::read(entry.path()).unwrap();
                lite::all(&data);
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0, "no fuzz inputs found under {}", root.display());
}

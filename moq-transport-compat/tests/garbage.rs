//! Random and mutated bytes against every moq-transport-compat decoder (a
//! stable, bounded stand-in for the fuzz targets in `fuzz/`, sharing their
//! checks).
//!
//! For every control message of drafts 14 to 22, stream headers, whole
//! subgroup and fetch streams, and datagrams: no decoder panics, and
//! whatever decodes re-encodes to bytes that decode to the same value. Inputs are random bytes, and valid
//! encodings with bytes flipped, inserted, deleted or cut off.

#[path = "../../fuzz/src/ietf.rs"]
mod ietf;

#[path = "../../moq-lite/tests/support/mutate.rs"]
mod mutate;

use mutate::{apply, edit, every_single_byte_change};
use proptest::prelude::*;

/// The seeds themselves decode and round-trip, and so does every one-byte
/// change and every truncation of them (exhaustive, deterministic).
#[test]
fn seeds_and_every_single_byte_change() {
    let seeds = ietf::seeds();
    assert!(seeds.len() > 80, "every message has a seed");
    every_single_byte_change(&seeds, ietf::all);
}

/// Every committed fuzz input of the IETF targets (regressions included)
/// passes the same checks on stable.
#[test]
fn committed_fuzz_inputs_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for target in ["ietf_control", "ietf_data"] {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            ietf::all(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no fuzz inputs found under {}", root.display());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        ietf::all(&bytes);
    }

    #[test]
    fn mutated_valid_encodings(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let seeds = ietf::seeds();
        let seed = &seeds[pick.index(seeds.len())];
        ietf::all(&apply(seed, &edits));
    }
}

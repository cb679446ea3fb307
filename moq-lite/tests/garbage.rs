//! Random and mutated bytes against every moq-lite decoder (a stable,
//! bounded stand-in for the fuzz targets in `fuzz/`, sharing their checks).
//!
//! For every message of every version, the SETUP path, stream types, group
//! streams and paths: no decoder panics, and whatever decodes re-encodes to
//! bytes that decode to the same value. Inputs are random bytes, and valid
//! encodings with bytes flipped, inserted, deleted or cut off.

#[path = "../../fuzz/src/lite.rs"]
mod lite;

use proptest::prelude::*;

/// One edit of a valid encoding.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        let len = out.len().max(1);
        match *edit {
            Edit::Flip(at, mask) if !out.is_empty() => out[at % len] ^= mask.max(1),
            Edit::Set(at, value) if !out.is_empty() => out[at % len] = value,
            Edit::Insert(at, value) => out.insert(at % (out.len() + 1), value),
            Edit::Delete(at) if !out.is_empty() => {
                out.remove(at % len);
            }
            Edit::Truncate(at) => out.truncate(at % (out.len() + 1)),
            _ => {}
        }
    }
    out
}

fn edit() -> impl Strategy<Value = Edit> {
    // Values that matter to varints and lengths: 0, the 1/2/4/8-byte tags, 0xff.
    let value = prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff])
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, m)| Edit::Flip(a, m)),
        (any::<usize>(), value.clone()).prop_map(|(a, v)| Edit::Set(a, v)),
        (any::<usize>(), value).prop_map(|(a, v)| Edit::Insert(a, v)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// The seeds themselves decode and round-trip, and so does every one-byte
/// change and every truncation of them (exhaustive, deterministic).
#[test]
fn seeds_and_every_single_byte_change() {
    let seeds = lite::seeds();
    assert!(seeds.len() > 40, "every message has a seed");
    for seed in &seeds {
        lite::all(seed);
        for at in 0..seed.len() {
            lite::all(&seed[..at]);
            for value in [
                0x00,
                0x01,
                0x3f,
                0x40,
                0x80,
                0xc0,
                0xff,
                seed[at] ^ 0x01,
                seed[at] ^ 0x80,
            ] {
                let mut changed = seed.clone();
                changed[at] = value;
                lite::all(&changed);
            }
        }
    }
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

//! Mutations of valid encodings, shared by the garbage tests of moq-lite and
//! moq-transport-compat (each includes this file with `#[path]`).

use proptest::prelude::*;

/// One edit of a valid encoding.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

/// `seed` with `edits` applied (positions wrap around its length).
pub fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
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

/// A random edit, biased towards the bytes that matter to varints and
/// lengths: 0, the 1/2/4/8-byte tags, 0xff.
pub fn edit() -> impl Strategy<Value = Edit> {
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

/// Runs `check` on every seed, every truncation of it, and a set of
/// one-byte changes at every position (exhaustive, deterministic).
pub fn every_single_byte_change(seeds: &[Vec<u8>], check: impl Fn(&[u8])) {
    for seed in seeds {
        check(seed);
        for at in 0..seed.len() {
            check(&seed[..at]);
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
                check(&changed);
            }
        }
    }
}

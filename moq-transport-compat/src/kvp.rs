//! Key-value pairs (setup parameters, message parameters of drafts 14 to
//! 16, object extension headers, track extensions): moq-lite's
//! [`moq_lite::coding::KeyValuePairs`], shared by both protocol families.
//! Here each draft names its [`KvpCoding`]: QUIC varints with absolute types
//! in drafts 14 and 15, delta-coded types from draft-16, leading-ones
//! integers from draft-17. Every method that takes a coding takes a [`Draft`].
//!
//! Draft-17 message parameters are not key-value pairs but type-value pairs
//! whose value form depends on the type: see [`crate::control::Parameters`].

pub use moq_lite::coding::{
    KeyValuePair, KeyValuePairs, KvpCoding, MAX_EXTENSIONS_LEN, MAX_KEY_VALUE_LEN, MAX_KEY_VALUE_PAIRS, Value,
};

use crate::Draft;

impl From<Draft> for KvpCoding {
    fn from(draft: Draft) -> Self {
        KvpCoding {
            ints: draft.ints(),
            delta: draft.delta_kvp(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A pair whose value takes the form `key`'s parity asks for.
    pub fn pair(key: u64, int: u64, bytes: Vec<u8>) -> KeyValuePair {
        let value = match key % 2 {
            0 => Value::Int(int),
            _ => Value::Bytes(bytes.into()),
        };
        KeyValuePair { key, value }
    }

    /// Arbitrary pairs whose value matches the type's parity.
    pub fn any_pairs() -> impl Strategy<Value = KeyValuePairs> {
        let one = (
            0u64..300,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..6),
        );
        proptest::collection::vec(
            one.prop_map(|(key, int, bytes)| pair(key, int.into(), bytes)),
            0..5,
        )
        .prop_map(KeyValuePairs)
    }
}

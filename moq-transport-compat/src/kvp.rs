//! Key-value pairs: setup parameters, message parameters (drafts 14 to 16),
//! object extension headers and track extensions.
//!
//! A pair's type decides its value's form (every draft, section 1.4): an even
//! type carries one varint, an odd type a length (at most 2^16 - 1) and that
//! many bytes. Drafts 14 and 15 write each type as is; from draft-16 each
//! type is written as the delta from the previous pair's type, so pairs go
//! on the wire sorted by type. [`KeyValuePairs`] keeps pairs in order,
//! duplicates included (receivers MUST allow duplicates of unknown types);
//! encoding for draft-16 or later sorts a copy stably by type.
//!
//! Draft-17 message parameters are not key-value pairs but type-value pairs
//! whose value form depends on the type: see [`crate::control::Parameters`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError};

use crate::Draft;
use crate::varint::{get_bytes, get_len, get_vi, put_bytes, put_vi};

/// The most pairs one list may hold.
pub const MAX_KEY_VALUE_PAIRS: usize = 128;

/// The longest odd-typed value: 2^16 - 1 bytes (section 1.4).
pub const MAX_KEY_VALUE_LEN: usize = u16::MAX as usize;

/// The longest object extension header block (the `Extension Headers Length`
/// field), in bytes.
pub const MAX_EXTENSIONS_LEN: usize = u16::MAX as usize;

/// The value of one pair; its kind follows from the type's parity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The value of an even type.
    Int(u64),
    /// The value of an odd type.
    Bytes(Bytes),
}

/// One key-value pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValuePair {
    /// The type.
    pub key: u64,
    /// The value; must match the parity of `key` to encode.
    pub value: Value,
}

/// An ordered list of key-value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValuePairs(pub Vec<KeyValuePair>);

impl KeyValuePairs {
    /// No pairs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets an integer (even type), replacing earlier pairs of that type.
    pub fn set_int(&mut self, key: u64, value: u64) {
        self.0.retain(|p| p.key != key);
        self.0.push(KeyValuePair {
            key,
            value: Value::Int(value),
        });
    }

    /// Sets a byte value (odd type), replacing earlier pairs of that type.
    pub fn set_bytes(&mut self, key: u64, value: impl Into<Bytes>) {
        self.0.retain(|p| p.key != key);
        self.0.push(KeyValuePair {
            key,
            value: Value::Bytes(value.into()),
        });
    }

    /// The first integer value of `key`.
    pub fn get_int(&self, key: u64) -> Option<u64> {
        self.0.iter().find_map(|p| match (&p.value, p.key == key) {
            (Value::Int(v), true) => Some(*v),
            _ => None,
        })
    }

    /// The first byte value of `key`.
    pub fn get_bytes(&self, key: u64) -> Option<&Bytes> {
        self.0.iter().find_map(|p| match (&p.value, p.key == key) {
            (Value::Bytes(v), true) => Some(v),
            _ => None,
        })
    }

    /// How many pairs have type `key`.
    pub fn count(&self, key: u64) -> usize {
        self.0.iter().filter(|p| p.key == key).count()
    }

    /// The pairs in wire order for `draft`: sorted by type when delta-coded.
    fn wire_order(&self, draft: Draft) -> Vec<&KeyValuePair> {
        let mut pairs: Vec<&KeyValuePair> = self.0.iter().collect();
        if draft.delta_kvp() {
            pairs.sort_by_key(|p| p.key);
        }
        pairs
    }

    /// Writes the pairs, without a count or length.
    pub fn encode_pairs<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        if self.0.len() > MAX_KEY_VALUE_PAIRS {
            return Err(EncodeError::TooLarge("key-value pair count"));
        }
        let mut prev = 0u64;
        for p in self.wire_order(draft) {
            let wire_key = if draft.delta_kvp() { p.key - prev } else { p.key };
            prev = p.key;
            put_vi(draft, wire_key, buf)?;
            match (&p.value, p.key % 2) {
                (Value::Int(v), 0) => put_vi(draft, *v, buf)?,
                (Value::Bytes(b), 1) => put_bytes(draft, b, MAX_KEY_VALUE_LEN, "key-value value", buf)?,
                _ => {
                    return Err(EncodeError::Invalid(
                        "key-value value kind does not match type parity",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads one pair after `prev` (the previous absolute type, for delta coding).
    fn decode_pair<B: Buf>(buf: &mut B, draft: Draft, prev: u64) -> Result<KeyValuePair, DecodeError> {
        let wire_key = get_vi(buf, draft)?;
        let key = if draft.delta_kvp() {
            prev.checked_add(wire_key)
                .ok_or(DecodeError::Invalid("key-value delta type over 2^64 - 1"))?
        } else {
            wire_key
        };
        let value = if key % 2 == 0 {
            Value::Int(get_vi(buf, draft)?)
        } else {
            Value::Bytes(get_bytes(buf, draft, MAX_KEY_VALUE_LEN, "key-value value")?)
        };
        Ok(KeyValuePair { key, value })
    }

    /// Writes a count, then the pairs.
    pub fn encode_counted<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        if self.0.len() > MAX_KEY_VALUE_PAIRS {
            return Err(EncodeError::TooLarge("key-value pair count"));
        }
        put_vi(draft, self.0.len() as u64, buf)?;
        self.encode_pairs(draft, buf)
    }

    /// Reads a count, then that many pairs.
    pub fn decode_counted<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        let count = get_len(buf, draft, MAX_KEY_VALUE_PAIRS, "key-value pair count")?;
        // Each pair takes at least two bytes: never reserve more than is buffered.
        let mut pairs = Vec::with_capacity(count.min(buf.remaining() / 2));
        let mut prev = 0;
        for _ in 0..count {
            let p = Self::decode_pair(buf, draft, prev)?;
            prev = p.key;
            pairs.push(p);
        }
        Ok(KeyValuePairs(pairs))
    }

    /// Reads pairs until `buf` is empty (track extensions at the end of a
    /// message, draft-17 setup options).
    pub fn decode_to_end(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError> {
        let mut pairs = Vec::new();
        let mut prev = 0;
        while buf.has_remaining() {
            if pairs.len() == MAX_KEY_VALUE_PAIRS {
                return Err(DecodeError::TooLarge("key-value pair count"));
            }
            let p = Self::decode_pair(buf, draft, prev)?;
            prev = p.key;
            pairs.push(p);
        }
        Ok(KeyValuePairs(pairs))
    }

    /// Writes an `Extensions` block: the byte length of the pairs, then the pairs.
    pub fn encode_block<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        let mut scratch = BytesMut::new();
        self.encode_pairs(draft, &mut scratch)?;
        put_bytes(
            draft,
            &scratch,
            MAX_EXTENSIONS_LEN,
            "extension headers length",
            buf,
        )
    }

    /// Reads an `Extensions` block: a byte length (at most
    /// [`MAX_EXTENSIONS_LEN`]) and the pairs filling exactly that many bytes.
    pub fn decode_block<B: Buf>(buf: &mut B, draft: Draft) -> Result<Self, DecodeError> {
        let mut block = get_bytes(buf, draft, MAX_EXTENSIONS_LEN, "extension headers length")?;
        Self::decode_to_end(&mut block, draft).map_err(|e| match e {
            DecodeError::Short => DecodeError::Invalid("extension header runs past its block"),
            e => e,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Arbitrary pairs whose value matches the type's parity.
    pub fn any_pairs() -> impl Strategy<Value = KeyValuePairs> {
        proptest::collection::vec(
            (
                0u64..300,
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..6),
            )
                .prop_map(|(key, int, bytes)| KeyValuePair {
                    key,
                    value: if key % 2 == 0 {
                        Value::Int(int as u64)
                    } else {
                        Value::Bytes(bytes.into())
                    },
                }),
            0..5,
        )
        .prop_map(KeyValuePairs)
    }

    #[test]
    fn plain_and_delta() {
        let mut kv = KeyValuePairs::new();
        kv.set_bytes(0x05, &b"ab"[..]);
        kv.set_int(0x02, 7);
        let mut out = Vec::new();
        kv.encode_counted(Draft::D15, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x02,                 // two pairs
            0x05, 0x02, b'a', b'b', // type 5 (odd): length 2, "ab"
            0x02, 0x07,           // type 2 (even): 7
        ]);
        let mut out = Vec::new();
        kv.encode_counted(Draft::D16, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x02,                   // two pairs
            0x02, 0x07,             // delta 2 from 0: type 2, value 7
            0x03, 0x02, b'a', b'b', // delta 3 from 2: type 5, length 2, "ab"
        ]);
        let back = KeyValuePairs::decode_counted(&mut &out[..], Draft::D16).unwrap();
        assert_eq!(back.get_int(2), Some(7));
        assert_eq!(back.get_bytes(5).map(|b| &b[..]), Some(&b"ab"[..]));
    }

    #[test]
    fn limits() {
        // A delta that overflows u64 (draft-17 allows 64-bit deltas).
        let mut bytes = vec![0x02];
        bytes.extend_from_slice(&[0xff; 9]); // delta u64::MAX (odd)
        bytes.extend_from_slice(&[0x00]);
        bytes.extend_from_slice(&[0x02, 0x00]); // delta 2: overflows
        assert!(matches!(
            KeyValuePairs::decode_counted(&mut &bytes[..], Draft::D17),
            Err(DecodeError::Invalid(_))
        ));
        // An odd value longer than 2^16 - 1.
        let mut c: &[u8] = &[0x01, 0x01, 0x80, 0x01, 0x00, 0x00];
        assert!(matches!(
            KeyValuePairs::decode_counted(&mut c, Draft::D14),
            Err(DecodeError::TooLarge(_))
        ));
        // A count over the limit.
        let mut c: &[u8] = &[0x40, 0x81];
        assert!(matches!(
            KeyValuePairs::decode_counted(&mut c, Draft::D14),
            Err(DecodeError::TooLarge(_))
        ));
        // Parity mismatch.
        let bad = KeyValuePairs(vec![KeyValuePair {
            key: 1,
            value: Value::Int(1),
        }]);
        assert!(bad.encode_counted(Draft::D14, &mut Vec::new()).is_err());
        // A block whose pair runs past its length.
        let mut c: &[u8] = &[0x02, 0x01, 0x05];
        assert!(matches!(
            KeyValuePairs::decode_block(&mut c, Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(kv in any_pairs()) {
            for d in Draft::ALL {
                let mut out = Vec::new();
                kv.encode_counted(d, &mut out).unwrap();
                let back = KeyValuePairs::decode_counted(&mut &out[..], d).unwrap();
                let mut again = Vec::new();
                back.encode_counted(d, &mut again).unwrap();
                prop_assert_eq!(&out, &again);
                if !d.delta_kvp() { prop_assert_eq!(&back, &kv); }
                let mut out = Vec::new();
                kv.encode_block(d, &mut out).unwrap();
                let back2 = KeyValuePairs::decode_block(&mut &out[..], d).unwrap();
                prop_assert_eq!(back2, back);
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for d in Draft::ALL {
                let _ = KeyValuePairs::decode_counted(&mut &bytes[..], d);
                let _ = KeyValuePairs::decode_block(&mut &bytes[..], d);
                let _ = KeyValuePairs::decode_to_end(&mut Bytes::copy_from_slice(&bytes), d);
            }
        }
    }
}

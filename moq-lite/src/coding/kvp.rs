//! Key-value pairs: the SETUP parameters of moq-lite-01/02 and every IETF
//! draft, IETF message parameters (drafts 14 to 16), object extension
//! headers and track extensions. One type serves both protocol families.
//!
//! A pair's type decides its value's form (draft-ietf-moq-transport-14
//! section 1.4.2, unchanged since): an even type carries one integer, an odd
//! type a length (at most 2^16 - 1) and that many bytes. Draft-14 and 15 write
//! each type as is; from draft-16 each type is written as the delta from the
//! previous pair's type, so pairs go on the wire sorted by type; draft-17
//! writes the integers as [`Vi64`](super::Vi64). [`KvpCoding`] says which.
//! [`KeyValuePairs`] keeps pairs in order, duplicates included (receivers
//! MUST allow duplicates of unknown types and ignore unrecognized ones), so
//! the codec keeps everything and lets the session pick what it understands;
//! a delta-coded encoding sorts a copy stably by type.
//!
//! Its [`Encode`] / [`Decode`] impls are the draft-14 form with a count, as
//! moq-lite's SETUP path writes it:
//!
//! ```
//! use moq_lite::coding::{Encode, KeyValuePairs, KvpCoding};
//!
//! let mut params = KeyValuePairs::new();
//! params.set_int(0x02, 7); // MAX_REQUEST_ID
//! let mut out = Vec::new();
//! params.encode(&mut out).unwrap();
//! assert_eq!(out, [0x01, 0x02, 0x07]); // one pair: type 2, value 7
//! let mut delta = Vec::new();
//! params.encode_counted(KvpCoding::DELTA, &mut delta).unwrap();
//! assert_eq!(delta, out); // the first delta is from 0
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Decode, DecodeError, Encode, EncodeError, IntEncoding};

/// How a version writes key-value pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KvpCoding {
    /// The integer encoding of types, integer values and lengths.
    pub ints: IntEncoding,
    /// Whether each type is the delta from the previous pair's (draft-16 on).
    pub delta: bool,
}

impl KvpCoding {
    /// Draft-14 and 15, and moq-lite's SETUP path: QUIC varints, absolute types.
    pub const PLAIN: KvpCoding = KvpCoding {
        ints: IntEncoding::Quic,
        delta: false,
    };
    /// Draft-16: QUIC varints, delta-coded types.
    pub const DELTA: KvpCoding = KvpCoding {
        ints: IntEncoding::Quic,
        delta: true,
    };
}

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

    /// The pairs in wire order: sorted by type when delta-coded.
    fn wire_order(&self, coding: KvpCoding) -> Vec<&KeyValuePair> {
        let mut pairs: Vec<&KeyValuePair> = self.0.iter().collect();
        if coding.delta {
            pairs.sort_by_key(|p| p.key);
        }
        pairs
    }

    /// Writes the pairs, without a count or length.
    pub fn encode_pairs<B: BufMut>(
        &self,
        coding: impl Into<KvpCoding>,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let coding = coding.into();
        let ints = coding.ints;
        if self.0.len() > MAX_KEY_VALUE_PAIRS {
            return Err(EncodeError::TooLarge("key-value pair count"));
        }
        let mut prev = 0u64;
        for p in self.wire_order(coding) {
            let wire_key = if coding.delta { p.key - prev } else { p.key };
            prev = p.key;
            ints.put(wire_key, buf)?;
            match (&p.value, p.key % 2) {
                (Value::Int(v), 0) => ints.put(*v, buf)?,
                (Value::Bytes(b), 1) => ints.put_bytes(b, MAX_KEY_VALUE_LEN, "key-value value", buf)?,
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
    fn decode_pair<B: Buf>(buf: &mut B, coding: KvpCoding, prev: u64) -> Result<KeyValuePair, DecodeError> {
        let ints = coding.ints;
        let wire_key = ints.get(buf)?;
        let key = if coding.delta {
            prev.checked_add(wire_key)
                .ok_or(DecodeError::Invalid("key-value delta type over 2^64 - 1"))?
        } else {
            wire_key
        };
        let value = if key % 2 == 0 {
            Value::Int(ints.get(buf)?)
        } else {
            Value::Bytes(ints.get_bytes(buf, MAX_KEY_VALUE_LEN, "key-value value")?)
        };
        Ok(KeyValuePair { key, value })
    }

    /// Writes a count, then the pairs.
    pub fn encode_counted<B: BufMut>(
        &self,
        coding: impl Into<KvpCoding>,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let coding = coding.into();
        if self.0.len() > MAX_KEY_VALUE_PAIRS {
            return Err(EncodeError::TooLarge("key-value pair count"));
        }
        coding.ints.put(self.0.len() as u64, buf)?;
        self.encode_pairs(coding, buf)
    }

    /// Reads a count, then that many pairs.
    pub fn decode_counted<B: Buf>(buf: &mut B, coding: impl Into<KvpCoding>) -> Result<Self, DecodeError> {
        let coding = coding.into();
        let count = coding
            .ints
            .get_len(buf, MAX_KEY_VALUE_PAIRS, "key-value pair count")?;
        // Each pair takes at least two bytes: never reserve more than is buffered.
        let mut pairs = Vec::with_capacity(count.min(buf.remaining() / 2));
        let mut prev = 0;
        for _ in 0..count {
            let p = Self::decode_pair(buf, coding, prev)?;
            prev = p.key;
            pairs.push(p);
        }
        Ok(KeyValuePairs(pairs))
    }

    /// Reads pairs until `buf` is empty (track extensions at the end of a
    /// message, draft-17 setup options).
    pub fn decode_to_end(buf: &mut Bytes, coding: impl Into<KvpCoding>) -> Result<Self, DecodeError> {
        let coding = coding.into();
        let mut pairs = Vec::new();
        let mut prev = 0;
        while buf.has_remaining() {
            if pairs.len() == MAX_KEY_VALUE_PAIRS {
                return Err(DecodeError::TooLarge("key-value pair count"));
            }
            let p = Self::decode_pair(buf, coding, prev)?;
            prev = p.key;
            pairs.push(p);
        }
        Ok(KeyValuePairs(pairs))
    }

    /// Writes an `Extensions` block: the byte length of the pairs, then the pairs.
    pub fn encode_block<B: BufMut>(
        &self,
        coding: impl Into<KvpCoding>,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let coding = coding.into();
        let mut scratch = BytesMut::new();
        self.encode_pairs(coding, &mut scratch)?;
        coding
            .ints
            .put_bytes(&scratch, MAX_EXTENSIONS_LEN, "extension headers length", buf)
    }

    /// Reads an `Extensions` block: a byte length (at most
    /// [`MAX_EXTENSIONS_LEN`]) and the pairs filling exactly that many bytes.
    pub fn decode_block<B: Buf>(buf: &mut B, coding: impl Into<KvpCoding>) -> Result<Self, DecodeError> {
        let coding = coding.into();
        let mut block = coding
            .ints
            .get_bytes(buf, MAX_EXTENSIONS_LEN, "extension headers length")?;
        Self::decode_to_end(&mut block, coding).map_err(|e| match e {
            DecodeError::Short => DecodeError::Invalid("extension header runs past its block"),
            e => e,
        })
    }
}

/// The draft-14 form, with a count: moq-lite's SETUP path.
impl Encode for KeyValuePairs {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.encode_counted(KvpCoding::PLAIN, buf)
    }
}

/// The draft-14 form, with a count: moq-lite's SETUP path.
impl Decode for KeyValuePairs {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Self::decode_counted(buf, KvpCoding::PLAIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VI64_DELTA: KvpCoding = KvpCoding {
        ints: IntEncoding::Vi64,
        delta: true,
    };

    #[test]
    fn plain_and_delta() {
        let mut kv = KeyValuePairs::new();
        kv.set_bytes(0x05, &b"ab"[..]);
        kv.set_int(0x02, 7);
        let mut out = Vec::new();
        kv.encode_counted(KvpCoding::PLAIN, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x02,                 // two pairs
            0x05, 0x02, b'a', b'b', // type 5 (odd): length 2, "ab"
            0x02, 0x07,           // type 2 (even): 7
        ]);
        let mut out = Vec::new();
        kv.encode_counted(KvpCoding::DELTA, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0x02,                   // two pairs
            0x02, 0x07,             // delta 2 from 0: type 2, value 7
            0x03, 0x02, b'a', b'b', // delta 3 from 2: type 5, length 2, "ab"
        ]);
        let back = KeyValuePairs::decode_counted(&mut &out[..], KvpCoding::DELTA).unwrap();
        assert_eq!(back.get_int(2), Some(7));
        assert_eq!(back.get_bytes(5).map(|b| &b[..]), Some(&b"ab"[..]));
    }

    #[test]
    fn limits() {
        // A delta that overflows u64 (vi64 allows 64-bit deltas).
        let mut bytes = vec![0x02];
        bytes.extend_from_slice(&[0xff; 9]); // delta u64::MAX (odd)
        bytes.extend_from_slice(&[0x00]);
        bytes.extend_from_slice(&[0x02, 0x00]); // delta 2: overflows
        assert!(matches!(
            KeyValuePairs::decode_counted(&mut &bytes[..], VI64_DELTA),
            Err(DecodeError::Invalid(_))
        ));
        // An odd value longer than 2^16 - 1.
        let mut c: &[u8] = &[0x01, 0x01, 0x80, 0x01, 0x00, 0x00];
        assert!(matches!(
            KeyValuePairs::decode(&mut c),
            Err(DecodeError::TooLarge(_))
        ));
        // A count over the limit, read and written.
        let mut c: &[u8] = &[0x40, 0x81];
        assert!(matches!(
            KeyValuePairs::decode(&mut c),
            Err(DecodeError::TooLarge(_))
        ));
        let many = KeyValuePairs(
            (0..=MAX_KEY_VALUE_PAIRS as u64)
                .map(|k| KeyValuePair {
                    key: k * 2,
                    value: Value::Int(0),
                })
                .collect(),
        );
        assert_eq!(
            many.encode(&mut Vec::new()),
            Err(EncodeError::TooLarge("key-value pair count"))
        );
        // Parity mismatch.
        let bad = KeyValuePairs(vec![KeyValuePair {
            key: 1,
            value: Value::Int(1),
        }]);
        assert!(bad.encode(&mut Vec::new()).is_err());
        // A block whose pair runs past its length.
        let mut c: &[u8] = &[0x02, 0x01, 0x05];
        assert!(matches!(
            KeyValuePairs::decode_block(&mut c, KvpCoding::PLAIN),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn any_pairs() -> impl Strategy<Value = KeyValuePairs> {
        let int = (0u64..150, any::<u32>()).prop_map(|(k, v)| KeyValuePair {
            key: k * 2,
            value: Value::Int(v.into()),
        });
        let bytes =
            (0u64..150, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, b)| KeyValuePair {
                key: k * 2 + 1,
                value: Value::Bytes(b.into()),
            });
        proptest::collection::vec(prop_oneof![int, bytes], 0..5).prop_map(KeyValuePairs)
    }

    proptest! {
        #[test]
        fn round_trip_every_coding(kv in any_pairs()) {
            for coding in [KvpCoding::PLAIN, KvpCoding::DELTA, VI64_DELTA] {
                let mut out = Vec::new();
                kv.encode_counted(coding, &mut out).unwrap();
                let back = KeyValuePairs::decode_counted(&mut &out[..], coding).unwrap();
                let mut want = kv.0.clone();
                if coding.delta {
                    want.sort_by_key(|p| p.key);
                }
                prop_assert_eq!(back.0, want);
                for n in 0..out.len() {
                    prop_assert!(KeyValuePairs::decode_counted(&mut &out[..n], coding).is_err());
                }
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            for coding in [KvpCoding::PLAIN, KvpCoding::DELTA, VI64_DELTA] {
                let _ = KeyValuePairs::decode_counted(&mut &bytes[..], coding);
                let _ = KeyValuePairs::decode_block(&mut &bytes[..], coding);
            }
        }
    }
}

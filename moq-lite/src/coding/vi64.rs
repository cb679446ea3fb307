//! The leading-ones variable-length integer ("vi64") of IETF draft-17
//! (section 1.3.1) and moq-lite-07: any `u64`, its length given by the number
//! of leading 1 bits of the first byte. It replaces QUIC's varint
//! ([`super::VarInt`], at most 2^62 - 1) in those versions; [`super::IntEncoding`]
//! picks between the two at run time.
//!
//! | prefix     | bytes | value bits |
//! |------------|-------|------------|
//! | `0`        | 1     | 7          |
//! | `10`       | 2     | 14         |
//! | `110`      | 3     | 21         |
//! | `1110`     | 4     | 28         |
//! | `11110`    | 5     | 35         |
//! | `111110`   | 6     | 42         |
//! | `11111110` | 8     | 56         |
//! | `11111111` | 9     | 64         |
//!
//! In draft-17 the 7-byte form does not exist: a first byte `1111110x` (0xfc,
//! 0xfd) is invalid. The text names only `11111100`; 0xfd has the same six
//! leading ones and a zero, so it is refused too. Draft-18 (section
//! "Variable-Length Integers") adds it: `1111110` then 49 value bits; the
//! `*_18` methods speak that form ([`super::IntEncoding::Vi64Full`]).
//! Encoding picks the shortest form; decoding accepts over-long forms (the
//! draft's own `0x8025` = 37 example).
//!
//! Note: the draft's example `0xdd7f3e7d` = 494,878,333 contradicts its table
//! (`0xdd` starts a 3-byte integer, 1,933,118). We follow the table; the
//! shortest encoding of 494,878,333 is `0xf01d7f3e7d`.

use bytes::{Buf, BufMut};

use super::{Decode, DecodeError, Encode, EncodeError};

/// A leading-ones variable-length integer: any `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vi64(pub u64);

impl Vi64 {
    /// How many bytes the shortest encoding takes: 1 to 6, 8 or 9.
    pub const fn size(self) -> usize {
        let v = self.0;
        if v < 1 << 7 {
            1
        } else if v < 1 << 14 {
            2
        } else if v < 1 << 21 {
            3
        } else if v < 1 << 28 {
            4
        } else if v < 1 << 35 {
            5
        } else if v < 1 << 42 {
            6
        } else if v < 1 << 56 {
            8
        } else {
            9
        }
    }

    /// How many bytes the shortest draft-18 encoding takes: 1 to 9 (the
    /// 7-byte form included).
    pub const fn size_18(self) -> usize {
        match self.size() {
            8 if self.0 < 1 << 49 => 7,
            n => n,
        }
    }

    /// The encoded length announced by a first byte in draft-18, where every
    /// first byte is valid.
    pub const fn len_from_first_18(first: u8) -> usize {
        match first.leading_ones() {
            n @ 0..=7 => n as usize + 1,
            _ => 9,
        }
    }

    /// Writes the shortest draft-18 form (7 bytes for 2^42 ..= 2^49 - 1).
    pub fn encode_18<B: BufMut>(self, buf: &mut B) {
        write(self.0, self.size_18(), buf)
    }

    /// Reads a draft-18 integer: any first byte is valid.
    pub fn decode_18<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let Some(&first) = buf.chunk().first() else {
            return Err(DecodeError::Short);
        };
        read(Vi64::len_from_first_18(first), buf)
    }

    /// The encoded length announced by a first byte, or `None` for the
    /// invalid 0xfc / 0xfd.
    pub const fn len_from_first(first: u8) -> Option<usize> {
        match first.leading_ones() {
            0 => Some(1),
            1 => Some(2),
            2 => Some(3),
            3 => Some(4),
            4 => Some(5),
            5 => Some(6),
            6 => None,
            7 => Some(8),
            _ => Some(9),
        }
    }
}

impl Encode for Vi64 {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        write(self.0, self.size(), buf);
        Ok(())
    }
}

impl Decode for Vi64 {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let Some(&first) = buf.chunk().first() else {
            return Err(DecodeError::Short);
        };
        let len = Vi64::len_from_first(first).ok_or(DecodeError::Invalid("vi64 first byte 0xfc/0xfd"))?;
        read(len, buf)
    }
}

/// Writes `v` in `n` bytes (`n` at least the shortest size).
fn write<B: BufMut>(v: u64, n: usize, buf: &mut B) {
    match n {
        9 => {
            buf.put_u8(0xff);
            buf.put_u64(v);
        }
        8 => {
            buf.put_u8(0xfe);
            // 56 bits: the low 7 bytes of v.
            buf.put_slice(&v.to_be_bytes()[1..]);
        }
        n => {
            // n bytes, n - 1 leading ones then a zero in the first byte.
            let prefix: u64 = !(0xffu64 >> (n - 1)) & 0xff;
            let word = (prefix << (8 * (n - 1))) | v;
            buf.put_slice(&word.to_be_bytes()[8 - n..]);
        }
    }
}

/// Reads an integer of `len` bytes (its first byte already told the length).
fn read<B: Buf>(len: usize, buf: &mut B) -> Result<Vi64, DecodeError> {
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    let mut bytes = [0u8; 9];
    buf.copy_to_slice(&mut bytes[..len]);
    let v = match len {
        9 => u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
        8 => {
            let mut w = [0u8; 8];
            w[1..].copy_from_slice(&bytes[1..8]);
            u64::from_be_bytes(w)
        }
        n => {
            let mut w = [0u8; 8];
            w[8 - n..].copy_from_slice(&bytes[..n]);
            // Clear the n leading prefix bits (n - 1 ones and a zero).
            u64::from_be_bytes(w) & ((1u64 << (7 * n)) - 1)
        }
    };
    Ok(Vi64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Vi64(v).encode(&mut out).unwrap();
        out
    }

    fn dec(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
        let mut c = bytes;
        let v = Vi64::decode(&mut c)?.0;
        Ok((v, bytes.len() - c.len()))
    }

    // The example table of draft-17 section 1.3.1.
    #[test]
    fn draft17_examples() {
        assert_eq!(dec(&[0x25]), Ok((37, 1)));
        assert_eq!(enc(37), [0x25]);
        // 0x8025: the over-long two-byte form of 37 is accepted.
        assert_eq!(dec(&[0x80, 0x25]), Ok((37, 2)));
        // 0xbbbd: prefix 10, 14 bits 0x3bbd = 15,293.
        assert_eq!(dec(&[0xbb, 0xbd]), Ok((15_293, 2)));
        assert_eq!(enc(15_293), [0xbb, 0xbd]);
        // 0xfaa1a0e403d8: prefix 111110, 42 bits 0x2a1a0e403d8.
        let b = [0xfa, 0xa1, 0xa0, 0xe4, 0x03, 0xd8];
        assert_eq!(dec(&b), Ok((2_893_212_287_960, 6)));
        assert_eq!(enc(2_893_212_287_960), b);
        // 0xfefa318fa8e3ca11: prefix 11111110, 56 bits.
        let b = [0xfe, 0xfa, 0x31, 0x8f, 0xa8, 0xe3, 0xca, 0x11];
        assert_eq!(dec(&b), Ok((70_423_237_261_249_041, 8)));
        assert_eq!(enc(70_423_237_261_249_041), b);
        // 0xff then 8 bytes: u64::MAX.
        assert_eq!(dec(&[0xff; 9]), Ok((u64::MAX, 9)));
        assert_eq!(enc(u64::MAX), [0xff; 9]);
        // The draft lists 0xdd7f3e7d as 494,878,333, but 0xdd (110...) starts
        // a three-byte integer: the table wins (see the module docs).
        assert_eq!(dec(&[0xdd, 0x7f, 0x3e, 0x7d]), Ok((1_933_118, 3)));
        assert_eq!(enc(494_878_333), [0xf0, 0x1d, 0x7f, 0x3e, 0x7d]);
    }

    #[test]
    fn boundaries_and_invalid() {
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x80]);
        assert_eq!(enc((1 << 14) - 1), [0xbf, 0xff]);
        assert_eq!(enc(1 << 14), [0xc0, 0x40, 0x00]);
        assert_eq!(enc((1 << 21) - 1), [0xdf, 0xff, 0xff]);
        assert_eq!(enc((1 << 28) - 1), [0xef, 0xff, 0xff, 0xff]);
        assert_eq!(enc((1 << 35) - 1), [0xf7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc((1 << 42) - 1), [0xfb, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc(1 << 42), [0xfe, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(
            enc((1 << 56) - 1),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(enc(1 << 56), [0xff, 0x01, 0, 0, 0, 0, 0, 0, 0]);
        for first in [0xfc, 0xfd] {
            assert!(matches!(
                dec(&[first, 0, 0, 0, 0, 0, 0]),
                Err(DecodeError::Invalid(_))
            ));
        }
        assert_eq!(dec(&[]), Err(DecodeError::Short));
        assert_eq!(dec(&[0xff, 0, 0]), Err(DecodeError::Short));
    }

    fn enc18(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Vi64(v).encode_18(&mut out);
        out
    }

    fn dec18(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
        let mut c = bytes;
        let v = Vi64::decode_18(&mut c)?.0;
        Ok((v, bytes.len() - c.len()))
    }

    // Draft-18's example table adds the 7-byte form and fixes the 4-byte one.
    #[test]
    fn draft18_examples() {
        let b = [0xfc, 0x89, 0x98, 0xab, 0xc6, 0x6b, 0xc0];
        assert_eq!(dec18(&b), Ok((151_288_809_941_952, 7)));
        assert_eq!(enc18(151_288_809_941_952), b);
        assert_eq!(dec18(&[0xed, 0x7f, 0x3e, 0x7d]), Ok((226_442_877, 4)));
        // 0xfd: the 49th value bit set.
        assert_eq!(dec18(&[0xfd, 0, 0, 0, 0, 0, 0]), Ok((1 << 48, 7)));
        assert_eq!(enc18(1 << 42), [0xfc, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(enc18((1 << 49) - 1), [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc18(1 << 49), [0xfe, 0x02, 0, 0, 0, 0, 0, 0]);
        // What draft-17 writes, draft-18 reads.
        for v in [0, 127, 1 << 42, 1 << 56, u64::MAX] {
            assert_eq!(dec18(&enc(v)), Ok((v, enc(v).len())));
        }
        // ...but not the other way round.
        assert!(matches!(dec(&enc18(1 << 42)), Err(DecodeError::Invalid(_))));
    }

    proptest! {
        #[test]
        fn round_trip_18(v in any::<u64>()) {
            let bytes = enc18(v);
            prop_assert_eq!(bytes.len(), Vi64(v).size_18());
            prop_assert_eq!(dec18(&bytes), Ok((v, bytes.len())));
            for n in 0..bytes.len() {
                prop_assert_eq!(dec18(&bytes[..n]), Err(DecodeError::Short));
            }
        }

        #[test]
        fn round_trip(v in any::<u64>()) {
            let bytes = enc(v);
            prop_assert_eq!(bytes.len(), Vi64(v).size());
            prop_assert_eq!(dec(&bytes), Ok((v, bytes.len())));
            for n in 0..bytes.len() {
                prop_assert_eq!(dec(&bytes[..n]), Err(DecodeError::Short));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = dec(&bytes);
        }
    }
}

//! Broadcast paths on the wire.
//!
//! moq-lite writes a [`Path`] as one length-prefixed UTF-8 string of at most
//! [`MAX_PATH_LEN`] bytes (IETF moq-transport writes a namespace tuple
//! instead, in its own crate). Decoding goes through [`Path::parse`], which
//! refuses `.`/`..` segments and empty segments instead of silently
//! normalising them.

use bytes::{Buf, BufMut};

use crate::coding::{Decode, DecodeError, Encode, EncodeError, decode_string, encode_string};
use crate::model::{MAX_PATH_LEN, Path, PathError};

/// A path is a string of at most [`MAX_PATH_LEN`] bytes.
impl Encode for Path {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        encode_string(self.as_str(), MAX_PATH_LEN, "path", buf)
    }
}

/// A path is a string of at most [`MAX_PATH_LEN`] bytes, checked by [`Path::parse`].
impl Decode for Path {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let s = decode_string(buf, MAX_PATH_LEN, "path")?;
        Path::parse(&s).map_err(|err| match err {
            PathError::TooLong => DecodeError::TooLarge("path"),
            PathError::EmptySegment => DecodeError::Invalid("path has an empty segment"),
            PathError::RelativeSegment => DecodeError::Invalid("path has a relative segment"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::encode_bytes;
    use proptest::prelude::*;

    #[test]
    fn paths() {
        let mut out = Vec::new();
        Path::new("room/alice").encode(&mut out).unwrap();
        // 0x0a: length 10, then "room/alice"
        assert_eq!(out[0], 0x0a);
        assert_eq!(&out[1..], b"room/alice");
        let mut cursor = &out[..];
        assert_eq!(Path::decode(&mut cursor), Ok(Path::new("room/alice")));

        let mut cursor: &[u8] = &[0x04, b'a', b'/', b'.', b'.'];
        assert!(matches!(Path::decode(&mut cursor), Err(DecodeError::Invalid(_))));
        let mut cursor: &[u8] = &[0x03, b'a', b'/', b'/'];
        // "a//" is "a" with a trailing slash and an empty segment.
        assert!(matches!(Path::decode(&mut cursor), Err(DecodeError::Invalid(_))));

        let long = vec![b'x'; MAX_PATH_LEN + 1];
        let mut out = Vec::new();
        encode_bytes(&long, usize::MAX, "raw", &mut out).unwrap();
        let mut cursor = &out[..];
        assert_eq!(Path::decode(&mut cursor), Err(DecodeError::TooLarge("path")));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut cursor = &bytes[..];
            let _ = Path::decode(&mut cursor);
        }
    }
}

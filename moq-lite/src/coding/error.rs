//! Why decoding or encoding failed.
//!
//! Decoding distinguishes three situations because the caller reacts to each
//! differently: [`DecodeError::Short`] means "wait for more bytes" (it is only
//! an error once the stream has ended), [`DecodeError::Invalid`] means the
//! peer sent something malformed, and [`DecodeError::TooLarge`] means a length
//! or count exceeded one of our limits (the bytes may be well-formed, but we
//! refuse to hold them).

/// Why a value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended before the value did; retry with more bytes.
    #[error("short buffer: more bytes needed")]
    Short,
    /// The bytes do not form a valid value; the text says which.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// A length or count is over one of our limits; the text says which.
    #[error("too large: {0}")]
    TooLarge(&'static str),
}

impl From<DecodeError> for crate::Error {
    fn from(err: DecodeError) -> Self {
        match err {
            // A short buffer only reaches the session as an error once the
            // stream has ended mid-message, which is a decode failure.
            DecodeError::Short | DecodeError::Invalid(_) => crate::Error::Decode,
            DecodeError::TooLarge(_) => crate::Error::Bounds,
        }
    }
}

/// Why a value could not be encoded.
///
/// Needed because not every Rust value has a wire form: integers must be below
/// 2^62, strings and messages have length limits, hop IDs must fit 53 bits,
/// and some messages or fields do not exist in every protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value or length is over a limit; the text says which.
    #[error("too large to encode: {0}")]
    TooLarge(&'static str),
    /// The value has no valid wire form; the text says why.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// The message does not exist in the negotiated protocol version.
    #[error("not supported by this version: {0}")]
    Version(&'static str),
}

impl From<EncodeError> for crate::Error {
    fn from(err: EncodeError) -> Self {
        match err {
            EncodeError::TooLarge(_) => crate::Error::Bounds,
            EncodeError::Invalid(_) => crate::Error::Encode,
            EncodeError::Version(_) => crate::Error::Unsupported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_crate_errors() {
        assert_eq!(crate::Error::from(DecodeError::Short), crate::Error::Decode);
        assert_eq!(
            crate::Error::from(DecodeError::Invalid("x")),
            crate::Error::Decode
        );
        assert_eq!(
            crate::Error::from(DecodeError::TooLarge("x")),
            crate::Error::Bounds
        );
        assert_eq!(
            crate::Error::from(EncodeError::TooLarge("x")),
            crate::Error::Bounds
        );
        assert_eq!(
            crate::Error::from(EncodeError::Invalid("x")),
            crate::Error::Encode
        );
        assert_eq!(
            crate::Error::from(EncodeError::Version("x")),
            crate::Error::Unsupported
        );
    }
}

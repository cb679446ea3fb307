//! The one error type of moq-lite and its table of wire codes.
//!
//! Errors travel: a track aborted by a relay's upstream session reaches every
//! downstream consumer, and a stream reset on the wire carries a code. So the
//! type is `Clone`, and [`Error::code`] / [`Error::from_code`] are the only place
//! where errors meet numbers. The numbers are those used across the moq-lite
//! ecosystem (see `shared/specs/README.md`), so an error reads the same on both
//! ends of a session.

/// What went wrong, in the model or on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The other side cancelled (a reset with no error, a consumer that went away).
    #[error("cancelled")]
    Cancel,
    /// The peer requires an extension we do not support.
    #[error("required extension")]
    RequiredExtension,
    /// The group is older than the cache keeps: it expired or was evicted.
    #[error("group too old")]
    Old,
    /// Something took longer than allowed.
    #[error("timeout")]
    Timeout,
    /// The underlying QUIC / WebTransport connection failed.
    #[error("transport error")]
    Transport,
    /// Bytes from the peer could not be decoded.
    #[error("decode error")]
    Decode,
    /// The peer is not allowed to do this.
    #[error("unauthorized")]
    Unauthorized,
    /// No protocol version in common.
    #[error("unsupported version")]
    Version,
    /// A stream of a type we did not expect.
    #[error("unexpected stream")]
    UnexpectedStream,
    /// A value was out of the allowed range or over a limit.
    #[error("out of bounds")]
    Bounds,
    /// Something that must be unique was not (a group sequence, an id).
    #[error("duplicate")]
    Duplicate,
    /// The broadcast or track does not exist.
    #[error("not found")]
    NotFound,
    /// A frame got more or fewer bytes than it declared.
    #[error("wrong frame size")]
    WrongSize,
    /// The peer broke a rule of the protocol.
    #[error("protocol violation")]
    ProtocolViolation,
    /// A message that is not valid at this point of a stream.
    #[error("unexpected message")]
    UnexpectedMessage,
    /// A feature we do not implement.
    #[error("unsupported")]
    Unsupported,
    /// A value could not be encoded.
    #[error("encode error")]
    Encode,
    /// Too many parameters in a message.
    #[error("too many parameters")]
    TooManyParameters,
    /// The peer took a role it may not take.
    #[error("invalid role")]
    InvalidRole,
    /// The negotiated ALPN is not one we speak.
    #[error("unknown ALPN")]
    UnknownAlpn,
    /// The last producer went away without finishing.
    #[error("dropped")]
    Dropped,
    /// The object was already closed.
    #[error("closed")]
    Closed,
    /// A cache limit was hit (a group grew past the per-group bound).
    #[error("cache full")]
    CacheFull,
    /// An application-defined error; it travels as wire code `64 + n`.
    #[error("application error {0}")]
    App(u32),
}

impl Error {
    /// The stream / session error code for this error.
    pub fn code(&self) -> u32 {
        match self {
            Error::Cancel => 0,
            Error::RequiredExtension => 1,
            Error::Old => 2,
            Error::Timeout => 3,
            Error::Transport => 4,
            Error::Decode => 5,
            Error::Unauthorized => 6,
            Error::Version => 9,
            Error::UnexpectedStream => 10,
            Error::Bounds => 11,
            Error::Duplicate => 12,
            Error::NotFound => 13,
            Error::WrongSize => 14,
            Error::ProtocolViolation => 15,
            Error::UnexpectedMessage => 16,
            Error::Unsupported => 17,
            Error::Encode => 18,
            Error::TooManyParameters => 19,
            Error::InvalidRole => 20,
            Error::UnknownAlpn => 21,
            Error::Dropped => 24,
            Error::Closed => 25,
            Error::CacheFull => 26,
            Error::App(n) => 64u32.saturating_add(*n),
        }
    }

    /// The error a peer meant by `code`; codes we do not know become
    /// [`Error::ProtocolViolation`] rather than being trusted.
    pub fn from_code(code: u64) -> Error {
        match code {
            0 => Error::Cancel,
            1 => Error::RequiredExtension,
            2 => Error::Old,
            3 => Error::Timeout,
            4 => Error::Transport,
            5 => Error::Decode,
            6 => Error::Unauthorized,
            9 => Error::Version,
            10 => Error::UnexpectedStream,
            11 => Error::Bounds,
            12 => Error::Duplicate,
            13 => Error::NotFound,
            14 => Error::WrongSize,
            15 => Error::ProtocolViolation,
            16 => Error::UnexpectedMessage,
            17 => Error::Unsupported,
            18 => Error::Encode,
            19 => Error::TooManyParameters,
            20 => Error::InvalidRole,
            21 => Error::UnknownAlpn,
            24 => Error::Dropped,
            25 => Error::Closed,
            26 => Error::CacheFull,
            n @ 64..=0xFFFF_FFFF => Error::App((n - 64) as u32),
            _ => Error::ProtocolViolation,
        }
    }
}

/// The result of a moq-lite operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_ecosystem_table() {
        // Numbers from shared/specs/README.md, spelled out so a renumbering is caught.
        let table = [
            (Error::Cancel, 0),
            (Error::RequiredExtension, 1),
            (Error::Old, 2),
            (Error::Timeout, 3),
            (Error::Transport, 4),
            (Error::Decode, 5),
            (Error::Unauthorized, 6),
            (Error::Version, 9),
            (Error::UnexpectedStream, 10),
            (Error::Bounds, 11),
            (Error::Duplicate, 12),
            (Error::NotFound, 13),
            (Error::WrongSize, 14),
            (Error::ProtocolViolation, 15),
            (Error::UnexpectedMessage, 16),
            (Error::Unsupported, 17),
            (Error::Encode, 18),
            (Error::TooManyParameters, 19),
            (Error::InvalidRole, 20),
            (Error::UnknownAlpn, 21),
            (Error::Dropped, 24),
            (Error::Closed, 25),
            (Error::CacheFull, 26),
            (Error::App(0), 64),
            (Error::App(7), 71),
        ];
        for (err, code) in table {
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(Error::from_code(code as u64), err);
        }
    }

    #[test]
    fn unknown_codes_are_not_trusted() {
        assert_eq!(Error::from_code(7), Error::ProtocolViolation);
        assert_eq!(Error::from_code(63), Error::ProtocolViolation);
        assert_eq!(Error::from_code(u64::MAX), Error::ProtocolViolation);
        assert_eq!(Error::App(u32::MAX).code(), u32::MAX);
    }
}

//! Session termination codes, request error codes and PUBLISH_DONE status
//! codes, and the moq-lite errors they read as.
//!
//! Session codes and PUBLISH_DONE codes keep their numbers across drafts 14
//! to 17 (17 reuses 0x7, TOO_MANY_REQUESTS before, for
//! INVALID_REQUIRED_REQUEST_ID; we never send it in 17, where there is no
//! Maximum Request ID). Request errors do not: draft-14 has one table per
//! error message, draft-15 merged them into REQUEST_ERROR with new numbers,
//! so they are spelled per draft by [`RequestFailure::code`].

use crate::Draft;

moq_lite::wire_enum! {
    /// Session termination error codes (the same numbers in drafts 14 to 17).
    pub enum SessionCode {
        /// NO_ERROR.
        NoError = 0x0,
        /// INTERNAL_ERROR.
        InternalError = 0x1,
        /// UNAUTHORIZED.
        Unauthorized = 0x2,
        /// PROTOCOL_VIOLATION.
        ProtocolViolation = 0x3,
        /// INVALID_REQUEST_ID.
        InvalidRequestId = 0x4,
        /// DUPLICATE_TRACK_ALIAS.
        DuplicateTrackAlias = 0x5,
        /// TOO_MANY_REQUESTS (drafts 14 to 16; INVALID_REQUIRED_REQUEST_ID
        /// in 17, which we never send there).
        TooManyRequests = 0x7,
        /// VERSION_NEGOTIATION_FAILED.
        VersionNegotiationFailed = 0x15,
    }
}

/// Why a request failed; [`RequestFailure::code`] gives its number in a
/// draft's error message (SUBSCRIBE_ERROR, FETCH_ERROR, PUBLISH_ERROR,
/// PUBLISH_NAMESPACE_ERROR, ... in 14; REQUEST_ERROR from 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFailure {
    /// INTERNAL_ERROR.
    InternalError,
    /// NOT_SUPPORTED.
    NotSupported,
    /// The track or namespace is not here: TRACK_DOES_NOT_EXIST (14),
    /// DOES_NOT_EXIST (15+).
    DoesNotExist,
    /// INVALID_RANGE: the filter or range cannot be satisfied.
    InvalidRange,
    /// A joining FETCH for a track with no objects yet: NO_OBJECTS in 14;
    /// INVALID_RANGE from 15, which dropped NO_OBJECTS (draft-16 {{joining-fetch}}:
    /// "the publisher MUST respond with a REQUEST_ERROR with error code
    /// `INVALID_RANGE`").
    NoObjects,
    /// INVALID_JOINING_REQUEST_ID (FETCH).
    InvalidJoiningRequestId,
    /// UNINTERESTED (PUBLISH, PUBLISH_NAMESPACE).
    Uninterested,
    /// UNAUTHORIZED: the session's grant does not cover the request.
    Unauthorized,
    /// TIMEOUT (15+): no publisher came within the RENDEZVOUS_TIMEOUT.
    Timeout,
    /// INVALID_FILTER (19+): a range filter beyond what we accept.
    InvalidFilter,
    /// UNSUPPORTED_EXTENSION (18+): a mandatory Track Property we do not
    /// know.
    UnsupportedExtension,
}

impl RequestFailure {
    /// The error code `draft` uses for this failure. Draft-14 numbers come
    /// from its per-message tables (the same for each message this
    /// failure can answer); 15 to 17 from the REQUEST_ERROR table.
    pub fn code(self, draft: Draft) -> u64 {
        use RequestFailure as F;
        match (draft, self) {
            (_, F::InternalError) => 0x0,
            (_, F::NotSupported) => 0x3,
            // Draft-14 has no TIMEOUT; its SUBSCRIBE_ERROR 0x2 is TIMEOUT too.
            (_, F::Timeout) => 0x2,
            (_, F::InvalidFilter) => 0x36,
            (_, F::UnsupportedExtension) => 0x33,
            // 0x1 in every draft's tables (draft-14 per message, 15+ REQUEST_ERROR).
            (_, F::Unauthorized) => 0x1,
            (Draft::D14, F::DoesNotExist) => 0x4,
            (Draft::D14, F::InvalidRange) => 0x5,
            (Draft::D14, F::NoObjects) => 0x6,
            (Draft::D14, F::InvalidJoiningRequestId) => 0x7,
            (Draft::D14, F::Uninterested) => 0x4,
            (_, F::DoesNotExist) => 0x10,
            (_, F::InvalidRange | F::NoObjects) => 0x11,
            (_, F::InvalidJoiningRequestId) => 0x32,
            (_, F::Uninterested) => 0x20,
        }
    }
}

impl RequestFailure {
    /// How a refused PUBLISH_NAMESPACE / SUBSCRIBE_NAMESPACE reads to the
    /// peer: an authorization failure as UNAUTHORIZED, anything else as
    /// UNINTERESTED.
    pub fn refusal(err: &moq_lite::Error) -> Self {
        match err {
            moq_lite::Error::Unauthorized => RequestFailure::Unauthorized,
            _ => RequestFailure::Uninterested,
        }
    }

    /// The moq-lite error a request error code reads as (the code of
    /// `draft`): UNAUTHORIZED as [`moq_lite::Error::Unauthorized`], a
    /// missing track or namespace as [`moq_lite::Error::NotFound`], the rest
    /// as [`moq_lite::Error::App`] with the code.
    pub fn lite_error(draft: Draft, code: u64) -> moq_lite::Error {
        use RequestFailure as F;
        if code == F::Unauthorized.code(draft) {
            moq_lite::Error::Unauthorized
        } else if code == F::DoesNotExist.code(draft) {
            moq_lite::Error::NotFound
        } else {
            moq_lite::Error::App(u32::try_from(code).unwrap_or(u32::MAX))
        }
    }
}

moq_lite::wire_enum! {
    /// PUBLISH_DONE status codes.
    pub enum DoneCode {
        /// INTERNAL_ERROR.
        InternalError = 0x0,
        /// TRACK_ENDED.
        TrackEnded = 0x2,
        /// SUBSCRIPTION_ENDED.
        SubscriptionEnded = 0x3,
        /// GOING_AWAY.
        GoingAway = 0x4,
        /// UPDATE_FAILED (15+): a REQUEST_UPDATE of the subscription failed.
        UpdateFailed = 0x8,
    }
}

/// Why an IETF session ended: the draft's termination code, the reason
/// phrase, and the moq-lite error applications see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    /// The session termination code on the wire.
    pub code: SessionCode,
    /// The reason phrase.
    pub reason: String,
    /// The same, as a moq-lite error.
    pub error: moq_lite::Error,
}

impl SessionError {
    /// A PROTOCOL_VIOLATION.
    pub fn protocol(reason: impl Into<String>) -> Self {
        Self::new(SessionCode::ProtocolViolation, reason)
    }

    /// An error with `code` and `reason`.
    pub fn new(code: SessionCode, reason: impl Into<String>) -> Self {
        SessionError {
            code,
            reason: reason.into(),
            error: lite_error(code),
        }
    }

    /// From a moq-lite error (the transport went away, ...).
    pub fn from_lite(error: moq_lite::Error) -> Self {
        let code = match error {
            moq_lite::Error::Cancel | moq_lite::Error::Closed => SessionCode::NoError,
            moq_lite::Error::Unauthorized => SessionCode::Unauthorized,
            moq_lite::Error::Version => SessionCode::VersionNegotiationFailed,
            moq_lite::Error::Decode | moq_lite::Error::ProtocolViolation => SessionCode::ProtocolViolation,
            _ => SessionCode::InternalError,
        };
        SessionError {
            code,
            reason: error.to_string(),
            error,
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "session error {:#x}: {}", self.code.code(), self.reason)
    }
}

/// The moq-lite error a termination code reads as.
pub fn lite_error(code: SessionCode) -> moq_lite::Error {
    use SessionCode as C;
    match code {
        C::NoError => moq_lite::Error::Closed,
        C::Unauthorized => moq_lite::Error::Unauthorized,
        C::ProtocolViolation | C::InvalidRequestId | C::DuplicateTrackAlias => {
            moq_lite::Error::ProtocolViolation
        }
        C::TooManyRequests => moq_lite::Error::Bounds,
        C::VersionNegotiationFailed => moq_lite::Error::Version,
        C::InternalError | C::Unknown(_) => moq_lite::Error::Transport,
    }
}

/// A transport failure: a peer's stream reset or session close.
pub fn transport_error<E: web_transport_trait::Error>(err: E) -> moq_lite::Error {
    if err.stream_error().is_some() {
        return moq_lite::Error::Cancel;
    }
    match err.session_error() {
        Some((code, _)) => lite_error(SessionCode::from(u64::from(code))),
        None => moq_lite::Error::Transport,
    }
}

/// How an IETF session reads the failures of its streams, for the stream
/// layer it shares with moq-lite ([`moq_lite::stream`]).
impl moq_lite::stream::Protocol for SessionError {
    /// Stream reset code 0x1, CANCELLED in every draft: a writer dropped
    /// before it finished resets its stream with it.
    const CANCEL_CODE: u32 = 0x1;

    /// A stream reset by the peer reads as [`moq_lite::Error::Cancel`]
    /// (stream reset codes do not map onto moq-lite errors), a closed
    /// session by its termination code, anything else as
    /// [`moq_lite::Error::Transport`].
    fn transport_error<E: web_transport_trait::Error>(err: E) -> moq_lite::Error {
        transport_error(err)
    }

    /// Every broken stream is a PROTOCOL_VIOLATION; the reason phrase says
    /// how it broke.
    fn violation(violation: moq_lite::stream::Violation) -> Self {
        use moq_lite::stream::Violation;
        match violation {
            Violation::Decode(err) => SessionError::protocol(format!("decode: {err}")),
            Violation::TooLarge => SessionError::protocol("message too large"),
            Violation::Truncated => SessionError::protocol("stream ended early"),
            Violation::Trailing => SessionError::protocol("bytes after the last message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use moq_lite::coding::DecodeError;
    use moq_lite::stream::{Protocol, Violation};

    use super::*;

    #[test]
    fn stream_protocol() {
        assert_eq!(<SessionError as Protocol>::CANCEL_CODE, 0x1);
        let violation = <SessionError as Protocol>::violation;
        let cases = [
            (
                Violation::Decode(DecodeError::Short),
                "decode: ".to_string() + &DecodeError::Short.to_string(),
            ),
            (Violation::TooLarge, "message too large".to_string()),
            (Violation::Truncated, "stream ended early".to_string()),
            (Violation::Trailing, "bytes after the last message".to_string()),
        ];
        for (case, reason) in cases {
            assert_eq!(violation(case), SessionError::protocol(reason));
        }
        assert_eq!(SessionError::protocol("x").code, SessionCode::ProtocolViolation);
    }
}

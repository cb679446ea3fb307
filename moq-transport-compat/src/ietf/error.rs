//! Session termination codes (drafts 14 to 16) and their moq-lite errors.

/// Session termination error codes.
pub mod code {
    /// NO_ERROR.
    pub const NO_ERROR: u64 = 0x0;
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u64 = 0x1;
    /// UNAUTHORIZED.
    pub const UNAUTHORIZED: u64 = 0x2;
    /// PROTOCOL_VIOLATION.
    pub const PROTOCOL_VIOLATION: u64 = 0x3;
    /// INVALID_REQUEST_ID.
    pub const INVALID_REQUEST_ID: u64 = 0x4;
    /// DUPLICATE_TRACK_ALIAS.
    pub const DUPLICATE_TRACK_ALIAS: u64 = 0x5;
    /// TOO_MANY_REQUESTS.
    pub const TOO_MANY_REQUESTS: u64 = 0x7;
    /// VERSION_NEGOTIATION_FAILED.
    pub const VERSION_NEGOTIATION_FAILED: u64 = 0x15;
}

/// Request error codes shared by SUBSCRIBE / FETCH / PUBLISH_NAMESPACE / ...
pub mod request_code {
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u64 = 0x0;
    /// NOT_SUPPORTED.
    pub const NOT_SUPPORTED: u64 = 0x3;
    /// TRACK_DOES_NOT_EXIST (SUBSCRIBE, FETCH, TRACK_STATUS).
    pub const DOES_NOT_EXIST: u64 = 0x4;
    /// INVALID_RANGE.
    pub const INVALID_RANGE: u64 = 0x5;
    /// NO_OBJECTS (FETCH).
    pub const NO_OBJECTS: u64 = 0x6;
    /// INVALID_JOINING_REQUEST_ID (FETCH).
    pub const INVALID_JOINING_REQUEST_ID: u64 = 0x7;
    /// UNINTERESTED (PUBLISH, PUBLISH_NAMESPACE).
    pub const UNINTERESTED: u64 = 0x4;
}

/// PUBLISH_DONE status codes.
pub mod done_code {
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u64 = 0x0;
    /// TRACK_ENDED.
    pub const TRACK_ENDED: u64 = 0x2;
    /// SUBSCRIPTION_ENDED.
    pub const SUBSCRIPTION_ENDED: u64 = 0x3;
    /// GOING_AWAY.
    pub const GOING_AWAY: u64 = 0x4;
}

/// Why an IETF session ended: the draft's termination code, the reason
/// phrase, and the moq-lite error applications see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    /// The session termination code on the wire.
    pub code: u64,
    /// The reason phrase.
    pub reason: String,
    /// The same, as a moq-lite error.
    pub error: moq_lite::Error,
}

impl SessionError {
    /// A PROTOCOL_VIOLATION.
    pub fn protocol(reason: impl Into<String>) -> Self {
        Self::new(code::PROTOCOL_VIOLATION, reason)
    }

    /// An error with `code` and `reason`.
    pub fn new(code: u64, reason: impl Into<String>) -> Self {
        SessionError {
            code,
            reason: reason.into(),
            error: lite_error(code),
        }
    }

    /// From a moq-lite error (the transport went away, ...).
    pub fn from_lite(error: moq_lite::Error) -> Self {
        let code = match error {
            moq_lite::Error::Cancel | moq_lite::Error::Closed => code::NO_ERROR,
            moq_lite::Error::Unauthorized => code::UNAUTHORIZED,
            moq_lite::Error::Version => code::VERSION_NEGOTIATION_FAILED,
            moq_lite::Error::Decode | moq_lite::Error::ProtocolViolation => code::PROTOCOL_VIOLATION,
            _ => code::INTERNAL_ERROR,
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
        write!(f, "session error {:#x}: {}", self.code, self.reason)
    }
}

/// The moq-lite error a termination code reads as.
pub fn lite_error(code: u64) -> moq_lite::Error {
    match code {
        code::NO_ERROR => moq_lite::Error::Closed,
        code::UNAUTHORIZED => moq_lite::Error::Unauthorized,
        code::PROTOCOL_VIOLATION | code::INVALID_REQUEST_ID | code::DUPLICATE_TRACK_ALIAS => {
            moq_lite::Error::ProtocolViolation
        }
        code::TOO_MANY_REQUESTS => moq_lite::Error::Bounds,
        code::VERSION_NEGOTIATION_FAILED => moq_lite::Error::Version,
        _ => moq_lite::Error::Transport,
    }
}

/// A transport failure: a peer's stream reset or session close.
pub fn transport_error<E: web_transport_trait::Error>(err: E) -> moq_lite::Error {
    if err.stream_error().is_some() {
        return moq_lite::Error::Cancel;
    }
    match err.session_error() {
        Some((code, _)) => lite_error(code.into()),
        None => moq_lite::Error::Transport,
    }
}

//! Which error codes go on the wire: the numbers [`Error::code`] uses
//! (the moq-lite ecosystem's original table), or the two registries that
//! moq-net 0.3 (the reference, and the browsers' `@moq/net`) uses.
//!
//! The lite drafts define no codes. The ecosystem first shared one table
//! (0 cancel, 1 required extension, ... 13 not found), which older peers
//! still send; moq-net 0.3 replaced it, on every version, with one registry
//! for session close codes and another for stream resets (0x1 cancelled,
//! 0x33 not found, ...; `lite-06-shipped-notes.md` section 12). Only moq-net
//! 0.3-era peers speak moq-lite-05 and newer, so those sessions use the new
//! registries and older versions keep the table (deployed moq-lite-03/04
//! peers read it). Sessions keep thinking in [`Error`]; the transport
//! wrapper ([`super::SharedTransport`]) translates codes as they cross the
//! wire, both ways, so that no reset or close is missed.
//!
//! ```
//! use moq_lite::Error;
//! use moq_lite::lite::Version;
//! use moq_lite::Codes;
//!
//! let codes = Codes::for_version(Version::Lite05);
//! assert_eq!(codes.stream_out(Error::NotFound.code()), 0x33);
//! assert_eq!(Error::from_code(codes.stream_in(0x33).into()), Error::NotFound);
//! assert_eq!(Codes::for_version(Version::Lite04).stream_out(13), 13);
//! ```

use crate::Error;
use crate::lite::Version;

/// How a session spells error codes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codes {
    /// [`Error::code`]'s numbers, for resets and closes alike.
    #[default]
    Table,
    /// moq-net 0.3's registries: one for session close, one for streams.
    Registries,
}

/// The first application code, in every registry: `64 + n`.
const APP: u32 = 64;

/// Stream codes of the table that the stream registry leaves unassigned
/// (it assigns 0x0-0x5, 0x12, 0x30-0x39): sent and read as they are.
/// Unauthorized, version, unexpected stream, bounds, duplicate, unexpected
/// message, unsupported, too many parameters, invalid role, unknown ALPN.
const PASSED_THROUGH: [u32; 10] = [6, 9, 10, 11, 12, 16, 17, 19, 20, 21];

impl Codes {
    /// The codes a moq-lite version's peers use: the registries from -05 on.
    pub const fn for_version(version: Version) -> Codes {
        if version.has_setup_stream() {
            Codes::Registries
        } else {
            Codes::Table
        }
    }

    /// A stream reset / stop code we send, from [`Error::code`].
    ///
    /// Meanings the registry lacks but our peers act on (a refused announce
    /// stream: [`Error::Bounds`], [`Error::Unauthorized`]) keep their table
    /// number where the registry leaves that number unassigned
    /// (`PASSED_THROUGH`): a moq-net peer reads them as unknown, ours as
    /// what they mean.
    pub fn stream_out(self, code: u32) -> u32 {
        if self == Codes::Table || code >= APP || PASSED_THROUGH.contains(&code) {
            return code;
        }
        match Error::from_code(code.into()) {
            Error::Cancel => 0x1,
            Error::Timeout => 0x2,
            // Session-scoped reasons end a stream as "session closed".
            Error::Closed | Error::ProtocolViolation => 0x3,
            Error::Dropped => 0x5,
            Error::Decode => 0x12,
            Error::CacheFull => 0x32,
            Error::NotFound => 0x33,
            Error::Old => 0x34,
            Error::WrongSize => 0x37,
            _ => 0x0,
        }
    }

    /// A stream reset / stop code we received, as an [`Error::code`].
    pub fn stream_in(self, code: u32) -> u32 {
        if self == Codes::Table || code >= APP || PASSED_THROUGH.contains(&code) {
            return code;
        }
        let err = match code {
            0x1 => Error::Cancel,
            0x2 | 0x31 => Error::Timeout,
            0x3 | 0x4 => Error::Closed,
            0x5 | 0x35 => Error::Dropped,
            0x12 => Error::Decode,
            0x32 | 0x38 => Error::CacheFull,
            0x33 | 0x36 => Error::NotFound,
            0x34 => Error::Old,
            0x37 => Error::WrongSize,
            // 0x0 internal: the peer failed, not the stream's data.
            0x0 => Error::Transport,
            _ => Error::ProtocolViolation,
        };
        err.code()
    }

    /// A session close code we send, from [`Error::code`].
    pub fn session_out(self, code: u32) -> u32 {
        if self == Codes::Table || code >= APP {
            return code;
        }
        match Error::from_code(code.into()) {
            Error::Cancel | Error::Closed => 0x0,
            Error::Unauthorized => 0x2,
            Error::ProtocolViolation
            | Error::Decode
            | Error::UnexpectedStream
            | Error::UnexpectedMessage
            | Error::WrongSize
            | Error::Duplicate
            | Error::Bounds => 0x3,
            Error::TooManyParameters => 0x6,
            Error::Timeout => 0x11,
            Error::Version | Error::UnknownAlpn => 0x15,
            _ => 0x1,
        }
    }

    /// A session close code we received, as an [`Error::code`].
    pub fn session_in(self, code: u32) -> u32 {
        if self == Codes::Table || code >= APP {
            return code;
        }
        let err = match code {
            // "No error": the session was let go, as our Cancel says.
            0x0 => Error::Cancel,
            0x1 => Error::Transport,
            0x2 => Error::Unauthorized,
            0x3 => Error::ProtocolViolation,
            0x6 => Error::TooManyParameters,
            0x10 | 0x11 => Error::Timeout,
            0x15 => Error::Version,
            _ => Error::ProtocolViolation,
        };
        err.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_identity() {
        for code in [0, 1, 13, 25, 64, 99, 1000] {
            let t = Codes::Table;
            assert_eq!(
                (
                    t.stream_out(code),
                    t.stream_in(code),
                    t.session_out(code),
                    t.session_in(code)
                ),
                (code, code, code, code)
            );
        }
        assert_eq!(Codes::for_version(Version::Lite04), Codes::Table);
        assert_eq!(Codes::for_version(Version::Lite06), Codes::Registries);
    }

    #[test]
    fn registries_round_trip_what_they_can_say() {
        let r = Codes::Registries;
        // Stream resets: what both sides can name comes back the same.
        for err in [
            Error::Cancel,
            Error::Timeout,
            Error::Closed,
            Error::Dropped,
            Error::Decode,
            Error::CacheFull,
            Error::NotFound,
            Error::Old,
            Error::WrongSize,
            Error::App(7),
            Error::Unauthorized,
            Error::Bounds,
            Error::Duplicate,
        ] {
            let wire = r.stream_out(err.code());
            assert_eq!(
                Error::from_code(r.stream_in(wire).into()),
                err,
                "{err} as {wire:#x}"
            );
        }
        // Numbers from the shipped notes, section 12.
        assert_eq!(r.stream_out(Error::Cancel.code()), 0x1);
        assert_eq!(r.stream_out(Error::NotFound.code()), 0x33);
        assert_eq!(r.stream_out(Error::ProtocolViolation.code()), 0x3);
        // Ours, where the registry has nothing: kept (0x6, 0xb are unassigned there).
        assert_eq!(r.stream_out(Error::Unauthorized.code()), 6);
        assert_eq!(r.stream_out(Error::Bounds.code()), 11);
        assert_eq!(r.stream_out(Error::App(3).code()), 67);
        // Unknown numbers are not trusted.
        assert_eq!(
            Error::from_code(r.stream_in(0x30).into()),
            Error::ProtocolViolation
        );
        // Session closes.
        for err in [
            Error::Cancel,
            Error::Unauthorized,
            Error::ProtocolViolation,
            Error::Timeout,
            Error::Version,
        ] {
            let wire = r.session_out(err.code());
            assert_eq!(
                Error::from_code(r.session_in(wire).into()),
                err,
                "{err} as {wire:#x}"
            );
        }
        assert_eq!(r.session_out(Error::Unauthorized.code()), 0x2);
        assert_eq!(r.session_out(Error::Cancel.code()), 0x0);
        assert_eq!(r.session_out(Error::Version.code()), 0x15);
    }
}

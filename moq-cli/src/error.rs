//! Error messages for people: what happened and what to try.

use moq_lite::Error;

/// A moq-lite error, explained.
pub fn explain(err: &Error) -> String {
    match err {
        Error::Unauthorized => {
            "unauthorized: the relay refused this session; pass a token with --jwt TOKEN (or ?jwt= in the \
             URL) that grants this path"
                .into()
        }
        Error::NotFound => "not found: no such broadcast or track on the relay".into(),
        Error::Version | Error::UnknownAlpn => {
            "no protocol version in common with the relay; try another --protocol, or leave it out".into()
        }
        Error::Transport => "the connection was lost (transport error)".into(),
        Error::Timeout => "timed out".into(),
        Error::Closed | Error::Cancel => "the connection was closed".into(),
        other => format!("{other} (code {})", other.code()),
    }
}

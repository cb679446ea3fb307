//! IETF moq-transport on the wire, mapped onto the moq-lite model.
//!
//! This crate will hold the encoders, decoders and session halves for
//! moq-transport drafts 14 to 17, translating namespaces, tracks, groups and
//! sub-group 0 objects to and from [`moq_lite`]'s `Origin > Broadcast > Track >
//! Group > Frame` model, and the single `accept`/`connect` entry point that
//! serves lite and IETF peers alike. Nothing is implemented yet; see the
//! project's compat issue.

//! The moq-lite data model: `Origin > Broadcast > Track > Group > Frame`.
//!
//! Each level is a Producer/Consumer pair. Producers write, consumers read
//! with their own cursor; both are cheap to clone. Dropping the last producer
//! ends the level for its consumers, `abort(err)` ends it with an error, and a
//! producer can see when every consumer has gone. Every waiting method has an
//! async form and a `poll_*` twin that works with any [`std::task::Waker`].
//! There is no I/O here: sessions move data between the wire and this model.

mod path;

pub use path::*;

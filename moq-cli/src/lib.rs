//! The library behind the `moq` command.
//!
//! It will hold `publish`, `subscribe`, `announced` and `clock`, each a thin
//! layer that moves stdin/stdout to and from the moq-lite model over a
//! session. Empty until the CLI issue lands.

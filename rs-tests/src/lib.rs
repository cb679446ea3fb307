//! Cross-crate integration tests (relay + clients, lite <-> IETF, clusters,
//! faults). They live under `tests/` and arrive with the issues that build
//! the relay and the sessions.

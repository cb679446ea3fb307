//! The checks behind the fuzz targets, shared with the stable property tests
//! (`moq-lite/tests/garbage.rs` and `moq-transport-compat/tests/garbage.rs`
//! include `lite.rs` and `ietf.rs` with `#[path]`).

pub mod ietf;
pub mod lite;
pub mod token;
pub mod websocket;

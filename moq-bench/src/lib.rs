//! Benchmarks for moq-lite.
//!
//! Today this crate holds the criterion micro-benchmarks of the model
//! (`cargo bench -p moq-bench`, see `README.md` beside this crate). The
//! end-to-end load generator against a relay arrives with the bench issue.

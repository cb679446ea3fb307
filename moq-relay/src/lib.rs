//! The moq-relay server.
//!
//! This crate will hold `run(config)`: one origin shared by every session,
//! one upstream subscription per track served from the shared cache, token
//! auth, clustering and a small HTTP side. It is empty until the relay issue
//! lands; today the model it will be built on lives in [`moq_lite::model`].

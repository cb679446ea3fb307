# Everyday commands for the moq workspace. `just --list` shows them all.

# Formatting check, lints with warnings denied, then every test (what CI runs).
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace

# Micro-benchmarks (criterion). Figures are recorded in moq-bench/README.md.
bench:
    cargo bench -p moq-bench

# Start the relay. Until the relay lands this runs the clock server example.
relay:
    cargo run --release -p moq-lite --example clock_server

# Format the workspace.
fmt:
    cargo fmt --all

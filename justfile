# Everyday commands for the moq workspace. `just --list` shows them all.

# Formatting check, lints with warnings denied, then every test (what CI runs).
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace

# Micro-benchmarks (criterion). Figures are recorded in moq-bench/README.md.
bench:
    cargo bench -p moq-bench

# Start the relay on [::]:4443 (UDP for QUIC/WebTransport, TCP for HTTP) with a self-signed certificate.
relay *ARGS:
    cargo run --release -p moq-relay -- {{ARGS}}

# Format the workspace.
fmt:
    cargo fmt --all

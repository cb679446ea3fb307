# Everyday commands for the moq workspace. `just --list` shows them all.

# Formatting check, lints with warnings denied, then every test (what CI runs).
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace

# Criterion micro-benchmarks (figures in moq-bench/README.md), then the standard
# load report: the release relay on loopback under every scenario, the reference
# relay under the same ones when ../shared/peers installed it (side by side), and
# the raw QUIC baseline, written to BENCHMARKS.md with SVG plots beside it
# (about 5 minutes after the builds).
bench:
    cargo bench -p moq-bench
    cargo build --release -p moq-relay -p moq-bench
    ref="${MOQ_PEERS:-$HOME/.cache/moq-peers}/rs/bin/moq-relay"; \
    ./target/release/moq-bench standard --relay-bin ./target/release/moq-relay --out BENCHMARKS.md \
      $([ -x "$ref" ] && echo --compare "$ref")

# Start the relay on [::]:4443 (UDP for QUIC/WebTransport, TCP for HTTP and WebSocket) with a self-signed certificate.
relay *ARGS:
    cargo run --release -p moq-relay -- {{ARGS}}

# Format the workspace.
fmt:
    cargo fmt --all

# Fuzz every decoder target for RUNS executions each from the committed corpora, and print a
# table of executions and seconds per target (cargo-fuzz and a nightly toolchain; see .ci/fuzz).
fuzz RUNS="10000000":
    .ci/fuzz {{RUNS}}

# Interop matrix: our relay and CLI against independent MoQ implementations (the reference
# relay, moq-clock, aiomoqt's interop client, @moq/net; installed by ../shared/peers/install.sh
# if missing). Prints a table; INTEROP_REPORT=file.md also writes it as markdown.
interop:
    .ci/interop

# Run the whole test suite N times with every core busy; report each test that failed, with its count.
stress N="20":
    .ci/stress {{N}}

#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need when it
# is missing, then runs every test. Servers (Kafka-protocol broker, DynamoDB
# Local) are started by the tests themselves on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Hostile input: each fuzz target for a bounded time (longer by hand: scripts/fuzz.sh 3600).
./scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

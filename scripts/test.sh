#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need when it
# is missing, then runs every test. Servers (Kafka-protocol broker, DynamoDB
# Local) are started by the tests themselves on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The dashboard's script, type-checked by TypeScript's checker (// @ts-check).
"${STOCKSTREAM_TOOLS:-$HOME/.cache/stockstream}/tsc/node_modules/.bin/tsc" -p crates/server/tsconfig.json
cargo test --workspace --locked
# Hostile input: each fuzz target for a bounded time (longer by hand: scripts/fuzz.sh 3600).
./scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

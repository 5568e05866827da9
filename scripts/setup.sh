#!/usr/bin/env bash
# Installs what the tests need, once; later runs reuse what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

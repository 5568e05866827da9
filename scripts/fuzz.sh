#!/usr/bin/env bash
# Fuzzes the CSV reader and the wire codec with libFuzzer (cargo fuzz), each for
# SECONDS (default 60; CI runs a short bound, run it for hours by hand). The
# kept corpus of nasty cases (fuzz/nasty/) seeds both; what the fuzzers find
# grows fuzz/corpus/ (not committed). A crash fails the script and leaves its
# input in fuzz/artifacts/: add it to fuzz/nasty/ once fixed.
#
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
# No sanitizer: the code is safe Rust, and sanitizers need a nightly compiler.
# The targets are built with debug assertions, so overflow panics count too.
for target in csv_reader json_codec; do
  kind=$([ "$target" = csv_reader ] && echo csv || echo json)
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds} s"
  log="$(mktemp)"
  if ! cargo fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" "nasty/$kind" -- \
    -max_total_time="$seconds" -max_len=65536 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^Done' "$log"
  rm -f "$log"
done

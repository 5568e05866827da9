#!/usr/bin/env bash
# Runs the benchmarks that need servers, starting them on free loopback ports
# and stopping them afterwards. Usage: scripts/bench.sh [embedded|kafka|all]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
cargo build --release --locked -q
bin=target/release/stockstream
what="${1:-all}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tansu_bin() { command -v tansu || echo "$HOME/.cargo/bin/tansu"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 never opened" >&2; return 1; }

if [ "$what" = embedded ] || [ "$what" = all ]; then
  $bin bench embedded --rows 1000000
fi
if [ "$what" = kafka ] || [ "$what" = all ]; then
  port=$(free_port)
  "$(tansu_bin)" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >/tmp/stockstream-bench-tansu.log 2>&1 &
  pids+=($!)
  wait_port "$port"
  STOCKSTREAM_LOG=warn $bin bench kafka --brokers "127.0.0.1:$port"
fi

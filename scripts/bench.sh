#!/usr/bin/env bash
# Runs the benchmarks, starting the servers they need on free loopback ports and
# stopping them afterwards. Usage: scripts/bench.sh [embedded|window|ticks|serve|indicators-file|run-file|kafka|follow|dynamodb|routes|backfill|all]
# The peers are the scripts in $STOCKSTREAM_PEERS, by default ../shared/peers
# (Python: confluent-kafka, boto3, kafka-python, pandas, TA-Lib).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
python3 -c 'import pandas' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pandas
python3 -c 'import talib' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check ta-lib
cargo build --release --locked -q -p stockstream -p stockstream-bench
bin="${CARGO_TARGET_DIR:-target}/release/stockstream-bench"
export STOCKSTREAM_PEERS="${STOCKSTREAM_PEERS:-$(cd .. && pwd)/shared/peers}"
what="${1:-all}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tansu_bin() { command -v tansu || echo "$HOME/.cargo/bin/tansu"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 never opened" >&2; return 1; }

if [ "$what" = embedded ] || [ "$what" = all ]; then
  $bin embedded --rows 1000000
fi
if [ "$what" = window ] || [ "$what" = all ]; then
  $bin window
fi
if [ "$what" = ticks ] || [ "$what" = all ]; then
  $bin ticks --rate 10000
fi
if [ "$what" = serve ] || [ "$what" = all ]; then
  $bin serve --rate 10000
fi
if [ "$what" = indicators-file ] || [ "$what" = all ]; then
  $bin indicators-file --rows 1000000
fi
if [ "$what" = backfill ] || [ "$what" = all ]; then
  $bin backfill
fi
if [ "$what" = run-file ] || [ "$what" = all ]; then
  $bin run-file --rows 1000000
fi
start_tansu() {
  port=$(free_port)
  "$(tansu_bin)" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >/tmp/stockstream-bench-tansu.log 2>&1 &
  pids+=($!)
  wait_port "$port"
  brokers="127.0.0.1:$port"
}
start_dynamodb() {
  dport=$(free_port)
  ( cd "${STOCKSTREAM_TOOLS:-$HOME/.cache/stockstream}/dynamodb/node_modules/amplify-dynamodb-simulator/emulator" &&
    exec java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -sharedDb -port "$dport" \
      >/tmp/stockstream-bench-dynamodb.log 2>&1 ) &
  pids+=($!)
  wait_port "$dport"
  endpoint="http://127.0.0.1:$dport"
}
if [ "$what" = kafka ] || [ "$what" = all ]; then
  start_tansu
  STOCKSTREAM_LOG=warn $bin kafka --brokers "$brokers"
fi
if [ "$what" = follow ] || [ "$what" = all ]; then
  start_tansu
  STOCKSTREAM_LOG=warn $bin follow --brokers "$brokers" --rates 1000,10000
fi
if [ "$what" = dynamodb ] || [ "$what" = all ]; then
  start_tansu
  start_dynamodb
  STOCKSTREAM_LOG=warn $bin dynamodb --brokers "$brokers" --dynamodb-endpoint "$endpoint"
fi
if [ "$what" = routes ] || [ "$what" = all ]; then
  start_dynamodb
  STOCKSTREAM_LOG=warn $bin routes --dynamodb-endpoint "$endpoint"
  # Pages of hourly, daily and 5-minute bars made from 1.4M one-minute bars (SQLite).
  STOCKSTREAM_LOG=warn $bin routes --interval 1m --rows 1400000
fi

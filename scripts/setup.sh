#!/usr/bin/env bash
# Installs what the tests need, once; later runs reuse what is there.
#   - clippy and rustfmt
#   - Tansu 0.6.0, a Kafka-protocol broker (cargo install, ~10 minutes once)
#   - DynamoDB Local, from the npm package amplify-dynamodb-simulator (runs on Java 17)
#   - kafka-python, confluent-kafka and boto3, independent clients for interop tests
#   - Debian's Chromium and playwright-core, for the dashboard's browser test
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${STOCKSTREAM_TOOLS:-$HOME/.cache/stockstream}"
mkdir -p "$tools"

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
# Kafka's TLS links the system's OpenSSL, the embedded store its SQLite (both
# found through pkg-config).
pkg-config --exists openssl sqlite3 2>/dev/null || { apt-get update -qq && apt-get install -y -qq libssl-dev libsqlite3-dev pkg-config; }

if ! command -v tansu >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
  echo "setup: installing the Tansu broker (one time, about 10 minutes)"
  cargo install tansu --locked --version 0.6.0 --features dynostore,libsql
fi

ddb="$tools/dynamodb/node_modules/amplify-dynamodb-simulator/emulator"
if [ ! -f "$ddb/DynamoDBLocal.jar" ]; then
  echo "setup: installing DynamoDB Local (npm amplify-dynamodb-simulator)"
  mkdir -p "$tools/dynamodb"
  npm install --silent --no-audit --no-fund --prefix "$tools/dynamodb" amplify-dynamodb-simulator
fi
command -v java >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }

python3 - <<'PY' || python3 -m pip install --quiet --disable-pip-version-check kafka-python confluent-kafka boto3 lz4 pandas yfinance websockets
import kafka, confluent_kafka, boto3, lz4, pandas, yfinance.live, websockets
PY

if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium (Debian package)"
  apt-get update -qq && apt-get install -y -qq chromium
fi
if [ ! -x "$tools/tsc/node_modules/.bin/tsc" ]; then
  echo "setup: installing TypeScript's checker (npm), for the dashboard's script"
  mkdir -p "$tools/tsc"
  npm install --silent --no-audit --no-fund --prefix "$tools/tsc" typescript@5
fi
if [ ! -d "$tools/browser/node_modules/playwright-core" ]; then
  echo "setup: installing playwright-core (npm)"
  mkdir -p "$tools/browser"
  npm install --silent --no-audit --no-fund --prefix "$tools/browser" playwright-core@1
fi

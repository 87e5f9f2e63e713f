#!/usr/bin/env bash
# End to end over HTTP: a release web and a release worker (Phase 5
# topology, or TASK_BACKEND=postgres) on a fresh PostgreSQL database, driven
# by loadgen: COUNT tasks (system.noop unless KIND) submitted as fast as CLIENTS clients can, one
# task per request or BATCH per POST /api/tasks/batch. Prints loadgen's
# throughput (first submit -> last succeeded) and latency percentiles.
#
#   benches/e2e.sh COUNT [WORKER_CONCURRENCY] [CLIENTS] [BATCH] [TASK_BACKEND]
#   benches/e2e.sh 50000 32 32 1 in-process
#   benches/e2e.sh 200000 32 32 100
#   WORKERS=3 KIND=system.sleep PAYLOAD='{"ms":100}' benches/e2e.sh 6000 32 64 1 postgres
#
# WORKERS (default 1) starts that many worker processes (more than one needs
# TASK_BACKEND=postgres or azure-queue); KIND and PAYLOAD pick the task.
#
# Needs the release binaries (cargo build --release --bin resume-agent -p
# resume-agent-bench), psql and a PostgreSQL server at $PGURL (default
# postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-50000}
CONC=${2:-32}
CLIENTS=${3:-32}
BATCH=${4:-1}
BACKEND=${5:-in-process}
BIN=${BIN:-target/release/resume-agent}
LOADGEN=${LOADGEN:-target/release/loadgen}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DBNAME="ra_e2e_$$"
DB="$PGURL/$DBNAME"
WEB_PORT=${WEB_PORT:-18500}
WORKER_PORT=${WORKER_PORT:-18501}
DATA="$(mktemp -d)"
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DBNAME" >/dev/null
WORKERS=${WORKERS:-1}
KIND=${KIND:-system.noop}
PAYLOAD=${PAYLOAD:-'{}'}
PIDS=()
cleanup() {
  for p in ${WEB:-} "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
export DATABASE_URL="$DB" TASK_BACKEND="$BACKEND" WORKER_CONCURRENCY="$CONC" \
  WEB_ADDR="127.0.0.1:$WEB_PORT" WORKER_ADDR="127.0.0.1:$WORKER_PORT" \
  WORKER_BASE_URL="http://127.0.0.1:$WORKER_PORT" WORKER_API_TOKEN=bench-token \
  LOG_FORMAT=json RUST_LOG=warn DATA_DIR="$DATA" \
  RATE_LIMIT_RPS=0 OWNER_MAX_QUEUED_TASKS=0
"$BIN" migrate >/dev/null
for i in $(seq 0 $((WORKERS - 1))); do
  WORKER_ADDR="127.0.0.1:$((WORKER_PORT + 10 * i))" "$BIN" worker & PIDS+=($!)
done
"$BIN" web & WEB=$!
for i in $(seq 0 $((WORKERS - 1))); do
  until curl -sf "http://127.0.0.1:$((WORKER_PORT + 10 * i))/ready" >/dev/null; do sleep 0.05; done
done
until curl -sf "http://127.0.0.1:$WEB_PORT/api/ready" >/dev/null; do sleep 0.05; done
batch=()
[ "$BATCH" -gt 1 ] && batch=(--batch "$BATCH")
echo "e2e: $COUNT $KIND $PAYLOAD, TASK_BACKEND=$BACKEND, $WORKERS worker(s) of WORKER_CONCURRENCY=$CONC, $CLIENTS clients, batch $BATCH"
"$LOADGEN" --base-url "http://127.0.0.1:$WEB_PORT" --kind "$KIND" --payload "$PAYLOAD" --count "$COUNT" \
  --concurrency "$CLIENTS" "${batch[@]}" --timeout-secs 600

#!/usr/bin/env bash
# Per-owner fairness: owner A queues 1,000 system.sleep of 1 s, then owner B
# submits 100 system.noop one after another, each waited for until it
# succeeds. Prints B's submit -> succeeded percentiles. Release web (one per
# owner: DEFAULT_OWNER_USER_ID) and worker, Phase 5 topology, fresh database.
#
#   benches/fairness.sh [WORKER_CONCURRENCY] [TASK_BACKEND]
#
# Needs the release binary, psql, python3 and a PostgreSQL server at $PGURL
# (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${1:-16}
BACKEND=${2:-in-process}
BIN=${BIN:-target/release/resume-agent}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DBNAME="ra_fair_$$"
DB="$PGURL/$DBNAME"
PORT=${PORT:-18600}
DATA="$(mktemp -d)"
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DBNAME" >/dev/null
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
export DATABASE_URL="$DB" TASK_BACKEND="$BACKEND" WORKER_CONCURRENCY="$CONC" \
  WORKER_ADDR="127.0.0.1:$((PORT + 1))" WORKER_BASE_URL="http://127.0.0.1:$((PORT + 1))" \
  WORKER_API_TOKEN=bench-token LOG_FORMAT=json RUST_LOG=warn DATA_DIR="$DATA" RATE_LIMIT_RPS=0
"$BIN" migrate >/dev/null
"$BIN" worker & PIDS+=($!)
WEB_ADDR="127.0.0.1:$PORT" DEFAULT_OWNER_USER_ID=owner-a "$BIN" web & PIDS+=($!)
WEB_ADDR="127.0.0.1:$((PORT + 2))" DEFAULT_OWNER_USER_ID=owner-b "$BIN" web & PIDS+=($!)
for p in $PORT $((PORT + 2)); do
  until curl -sf "http://127.0.0.1:$p/api/ready" >/dev/null; do sleep 0.05; done
done
python3 - "$PORT" "$((PORT + 2))" "$CONC" <<'PY'
import json, sys, time, urllib.request
a, b, conc = (f"http://127.0.0.1:{sys.argv[1]}", f"http://127.0.0.1:{sys.argv[2]}", sys.argv[3])
def call(url, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
sleep = {"kind": "system.sleep", "payload": {"ms": 1000}}
for _ in range(10):
    call(f"{a}/api/tasks/batch", {"tasks": [sleep] * 100})
while call(f"{a}/api/stats")["running"] < int(conc) - 1:
    time.sleep(0.05)
waits = []
for _ in range(100):
    t0 = time.monotonic()
    tid = call(f"{b}/api/tasks", {"kind": "system.noop"})["id"]
    while call(f"{b}/api/tasks/{tid}")["status"] != "succeeded":
        time.sleep(0.002)
    waits.append((time.monotonic() - t0) * 1000)
slow = [(i, round(w)) for i, w in enumerate(waits) if w > 100]
waits.sort()
left = call(f"{a}/api/stats")["queued"]
pct = lambda p: waits[min(len(waits) - 1, int(p * len(waits)))]
print(f"fairness, WORKER_CONCURRENCY={conc}: owner B's 100 noops behind owner A's 1,000 1-s sleeps "
      f"(A still has {left} queued): p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {waits[-1]:.1f} ms; over 100 ms (index, ms): {slow}")
PY

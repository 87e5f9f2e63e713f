#!/usr/bin/env bash
# Drain rate of a backlog after a restart: N queued system.noop rows are
# written straight into a fresh PostgreSQL database (as a web would have
# accepted them while no worker ran), then one worker starts. Prints the time
# to ready and the drain rate.
#
#   benches/backlog.sh 20000 [WORKER_CONCURRENCY] [TASK_BACKEND]
#   FROM_BACKEND=in-process benches/backlog.sh 20000 32 postgres   # a flip
#
# FROM_BACKEND (default: TASK_BACKEND) is the backend the queued rows were
# handed to: another one measures a flip (the rows' messages were never sent
# to the new backend). TASK_BACKEND=azure-queue needs
# AZURE_STORAGE_CONNECTION_STRING (scripts/azurite.sh start prints one).
# Prints the time until the last task started as well.
#
# Needs the release binary (cargo build --release --bin resume-agent), psql
# and a PostgreSQL server at $PGURL (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
CONC=${2:-32}
BACKEND=${3:-in-process}
BIN=${BIN:-target/release/resume-agent}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DBNAME="ra_backlog_$$"
DB="$PGURL/$DBNAME"
PORT=${PORT:-18400}
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DBNAME" >/dev/null
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
export DATABASE_URL="$DB" WORKER_ADDR="127.0.0.1:$PORT" TASK_BACKEND="$BACKEND" \
  WORKER_CONCURRENCY="$CONC" LOG_FORMAT=json RUST_LOG=warn DATA_DIR="$(mktemp -d)"
"$BIN" migrate >/dev/null
psql -q "$DB" -c "INSERT INTO tasks (id, owner_id, kind, status, payload, max_attempts, timeout_secs, backend)
  SELECT gen_random_uuid(), 'bench', 'system.noop', 'queued', '{}', 3, 120, '${FROM_BACKEND:-$BACKEND}'
  FROM generate_series(1, $N)" >/dev/null
# VACUUM=0: leave the fresh rows unvacuumed and unanalysed, as after a burst
# of submissions that autovacuum has not caught up with.
if [ "${VACUUM:-1}" = 1 ]; then psql -q "$DB" -c "VACUUM ANALYZE tasks" >/dev/null; fi
start=$(date +%s.%N)
"$BIN" worker &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "the worker exited (is port $PORT taken? set PORT)" >&2; exit 1; }
  sleep 0.01
done
ready=$(date +%s.%N)
# Poll slowly (each psql is a fresh backend: polling fast would tax the
# server being measured); the end is the last finished_at, not the poll.
while :; do
  left=$(psql -qtA "$DB" -c "SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')")
  [ "$left" = 0 ] && break
  sleep 0.25
done
done_=$(psql -qtA "$DB" -c "SELECT extract(epoch FROM max(finished_at)) FROM tasks")
started_=$(psql -qtA "$DB" -c "SELECT extract(epoch FROM max(started_at)) FROM tasks")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
python3 - "$start" "$ready" "$done_" "$N" "$rss" "$CONC" "$BACKEND" "$started_" "${FROM_BACKEND:-$BACKEND}" <<'PY'
import sys
s, r, d, n, rss = map(float, sys.argv[1:6]); c, b = sys.argv[6], sys.argv[7]
st, fb = float(sys.argv[8]), sys.argv[9]
flip = f" (queued under {fb})" if fb != b else ""
print(f"backlog {int(n)} noops{flip}, {b}, WORKER_CONCURRENCY={c}: ready after {r - s:.3f} s, "
      f"last started {st - r:.2f} s after ready, "
      f"drained in {d - s:.2f} s = {n / (d - s):,.0f} tasks/s; worker peak RSS {rss / 1024:.1f} MiB")
PY

#!/usr/bin/env bash
# The console's reads with 1,000,000 tasks in PostgreSQL.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres benches/console-1m.sh
#
# Creates a throwaway database on that server, migrates it with the binary,
# fills it with INSERT … SELECT generate_series (1,000,000 tasks over 30 days,
# 100 owners of whom `dev-user-1` holds 70 %, 2 % failed, 1 % cancelled,
# 1,000 queued, 200 running, two backends; 100,000 attempt rows), runs
# `resume-agent web` against it (AUTH_MODE=none: the caller is the big
# owner) and times every endpoint the console calls (median and p95 of
# RUNS calls after 3 warm-ups). It also times the every-owner (admin role)
# statements with psql. Target: ≤ 50 ms each. KEEP=1 keeps the database.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL server (a throwaway database is created on it)}"
BIN=${RESUME_AGENT_BIN:-target/release/resume-agent}
RUNS=${RUNS:-30}
ROWS=${ROWS:-1000000}
[ -x "$BIN" ] || { echo "building $BIN" >&2; cargo build --release --locked --bin resume-agent; }

name="console_bench_$(date +%s)_$$"
base=${DATABASE_URL%%\?*}; base=${base%/*}
URL="$base/$name"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $name"
web_pid=
cleanup() {
  [ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null && wait "$web_pid" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $name" || true
}
trap cleanup EXIT

DATABASE_URL=$URL "$BIN" migrate >/dev/null
echo "filling $ROWS tasks into $name …" >&2
t0=$(date +%s)
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
-- ids are UUIDv7-shaped (48-bit millisecond time first), as the web makes them.
INSERT INTO tasks (id, owner_id, kind, status, payload, result, error, attempts, max_attempts, timeout_secs,
                   created_at, started_at, finished_at, run_after, dispatched_at, lease_owner, lease_expires_at,
                   backend, updated_at)
SELECT (lpad(to_hex((extract(epoch FROM c) * 1000)::bigint), 12, '0') || '7' || substr(md5(g::text), 1, 3)
        || '8' || substr(md5(g::text), 4, 15))::uuid,
       CASE WHEN g % 10 < 7 THEN 'dev-user-1' ELSE 'owner-' || (g % 100) END,
       (ARRAY['system.noop', 'system.sleep', 'system.fail', 'resume.parse', 'resume.match'])[1 + g % 5],
       s, '{}'::jsonb,
       CASE WHEN s = 'succeeded' THEN '{}'::jsonb END,
       CASE WHEN s = 'failed' THEN 'bench failure' END,
       CASE WHEN s = 'queued' THEN 0 ELSE 1 END, 3, 60,
       c, CASE WHEN s <> 'queued' THEN c + interval '1 second' END,
       CASE WHEN s IN ('succeeded', 'failed', 'cancelled') THEN c + interval '2 seconds' END,
       c, c,
       CASE WHEN s = 'running' THEN 'bench-worker' END,
       CASE WHEN s = 'running' THEN now() + interval '1 hour' END,
       CASE WHEN g % 3 = 0 THEN 'azure-queue' ELSE 'in-process' END, c
FROM (
    SELECT g,
           now() - make_interval(secs => ($ROWS - g) * (2592000.0 / $ROWS)) AS c,
           CASE WHEN g > $ROWS - 1000 THEN 'queued'
                WHEN g > $ROWS - 1200 THEN 'running'
                WHEN g % 50 = 7 THEN 'failed'
                WHEN g % 100 = 13 THEN 'cancelled'
                ELSE 'succeeded' END AS s
    FROM generate_series(1, $ROWS) g
) x;
INSERT INTO task_attempts (task_id, attempt, worker, started_at, finished_at, outcome, error)
SELECT id, 1, 'bench-worker', started_at, finished_at, CASE WHEN status = 'failed' THEN 'failed' ELSE 'succeeded' END, error
FROM tasks WHERE finished_at IS NOT NULL AND (hashtext(id::text) % 10) = 0;
VACUUM ANALYZE tasks;
VACUUM ANALYZE task_attempts;
SQL
echo "filled in $(( $(date +%s) - t0 )) s: $(psql -tA "$URL" -c 'SELECT count(*) FROM tasks') tasks, $(psql -tA "$URL" -c 'SELECT count(*) FROM task_attempts') attempts" >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL=$URL WEB_ADDR=127.0.0.1:$port WORKER_BASE_URL=http://127.0.0.1:9 RUST_LOG=warn "$BIN" web >/dev/null 2>&1 &
web_pid=$!
B=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -fs "$B/api/health" >/dev/null && break; sleep 0.1; done

# median and p95 in ms of RUNS calls of one URL (after 3 warm-ups)
timeit() {
  local url=$1 label=$2 i code
  for i in 1 2 3; do curl -s -o /dev/null "$url"; done
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  for i in $(seq 1 "$RUNS"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
    sort -n | awk -v label="$label" -v code="$code" '{ a[NR] = $1 * 1000 } END {
      m = a[int((NR + 1) / 2)]; p = a[int(NR * 0.95 + 0.5)];
      printf "%-58s %3s  median %7.1f ms  p95 %7.1f ms  %s\n", label, code, m, p, (p <= 50 ? "ok" : "OVER 50 ms") }'
}
first=$(curl -s "$B/api/tasks?limit=50")
cursor=$(printf '%s' "$first" | python3 -c 'import sys,json; print(json.load(sys.stdin)["next_cursor"])')
some_id=$(psql -tA "$URL" -c "SELECT task_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.owner_id = 'dev-user-1' LIMIT 1")
echo
echo "endpoints (caller: dev-user-1, $(psql -tA "$URL" -c "SELECT count(*) FROM tasks WHERE owner_id = 'dev-user-1'") of the tasks)"
timeit "$B/api/stats/kinds" "GET /api/stats/kinds (overview counts, 24 h)"
timeit "$B/api/stats/timeseries?interval=60" "GET /api/stats/timeseries?interval=60 (chart, 1 h)"
timeit "$B/api/queues" "GET /api/queues (per backend)"
timeit "$B/api/tasks?limit=50" "GET /api/tasks?limit=50"
timeit "$B/api/tasks?limit=50&cursor=$cursor" "GET /api/tasks?limit=50&cursor=… (page 2)"
timeit "$B/api/tasks?limit=50&status=failed" "GET /api/tasks?status=failed"
timeit "$B/api/tasks?limit=50&kind=resume.parse" "GET /api/tasks?kind=resume.parse"
timeit "$B/api/tasks?limit=50&status=queued" "GET /api/tasks?status=queued"
timeit "$B/api/tasks/$some_id/attempts" "GET /api/tasks/{id}/attempts"
timeit "$B/api/stats" "GET /api/stats (all-time totals; not used by the console)"

echo
echo "every-owner statements (admin role), psql, best of 5:"
sqltime() {
  local label=$1 sql=$2
  best=$(for i in 1 2 3 4 5; do psql -qtA "$URL" -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; done | sort -n | head -1)
  printf "%-58s best %7.1f ms  %s\n" "$label" "$best" "$(awk -v b="$best" 'BEGIN { print (b <= 50 ? "ok" : "OVER 50 ms") }')"
}
sqltime "counts by kind (all owners, 24 h)" "SELECT kind, status, count(*) FROM tasks WHERE status = 'queued' GROUP BY 1, 2 UNION ALL SELECT kind, status, count(*) FROM tasks WHERE status = 'running' GROUP BY 1, 2 UNION ALL SELECT kind, status, count(*) FROM tasks WHERE status IN ('succeeded','failed','cancelled') AND finished_at >= now() - interval '24 hours' GROUP BY 1, 2"
sqltime "series (all owners, 1 h, 60 s)" "SELECT floor(extract(epoch FROM finished_at) / 60)::bigint, status, count(*) FROM tasks WHERE status IN ('succeeded','failed','cancelled') AND finished_at >= now() - interval '1 hour' GROUP BY 1, 2"
sqltime "list (all owners, newest 51)" "SELECT id, kind, status, payload, result, error FROM tasks ORDER BY id DESC LIMIT 51"
sqltime "list (all owners, status=failed, newest 51)" "SELECT id, kind, status, payload, result, error FROM tasks WHERE status = 'failed' ORDER BY id DESC LIMIT 51"
sqltime "queues per backend (all owners)" "SELECT backend, status, count(*) FROM tasks WHERE status = 'queued' GROUP BY 1, 2 UNION ALL SELECT backend, status, count(*) FROM tasks WHERE status = 'running' GROUP BY 1, 2"

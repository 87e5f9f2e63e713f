#!/usr/bin/env bash
# Fuzzes the served OpenAPI document with schemathesis (property-based, with
# stateful link testing) against a real `resume-agent serve` on the embedded
# store, after validating the document as OpenAPI 3.1. Fails on any 5xx, any
# response that violates the document, or a schema error.
#
#   scripts/schemathesis.sh [path/to/resume-agent]   (default: target/release/resume-agent)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/resume-agent}
[ -x "$BIN" ] || cargo build --release --locked --bin resume-agent
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/resume-agent/schemathesis-venv"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/schemathesis-requirements.txt
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ra-st.XXXXXX")
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WEB=$(port); WORKER=$(port)
DATA_DIR="$WORK/data" WEB_ADDR="127.0.0.1:$WEB" WORKER_ADDR="127.0.0.1:$WORKER" RUST_LOG=warn \
  "$BIN" serve >"$WORK/serve.log" 2>&1 &
PID=$!
BASE="http://127.0.0.1:$WEB"
for _ in $(seq 1 100); do curl -sf "$BASE/api/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$BASE/api/openapi.json" -o "$WORK/openapi.json"
"$VENV/bin/python" - "$WORK/openapi.json" <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.1"), doc["openapi"]
validate(doc, cls=OpenAPIV31SpecValidator)
ops = sum(1 for p in doc["paths"].values() for m in p if m in ("get", "post", "put", "delete", "patch"))
print(f"openapi.json: valid OpenAPI {doc['openapi']}, {len(doc['paths'])} paths, {ops} operations")
PY
# The event stream is long-lived by design (it stays open until the task
# ends); it is covered by tests/events.rs instead.
"$VENV/bin/schemathesis" run "$BASE/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
  --phases examples,coverage,fuzzing,stateful \
  --exclude-path '/api/tasks/{id}/events' \
  --max-examples 200 --workers 2 --request-timeout 10 \
  --suppress-health-check all --warnings off \
  --report junit --report-dir "$WORK/report" 2>&1 | tee "$WORK/st.log" | cut -c1-240 | grep -v '^ *curl ' | tail -n 45
status=${PIPESTATUS[0]}
if [ "$status" != 0 ]; then
  echo "schemathesis failed; server log tail:" >&2
  tail -n 30 "$WORK/serve.log" >&2
fi
exit "$status"

#!/usr/bin/env bash
# Validates everything under deploy/ without a cluster or a Docker engine,
# and exits non-zero on any broken manifest:
#
#   1. kustomize renders the three overlays (phase5, phase6, postgres) and
#      both monitoring variants (prometheus-operator, azure-managed);
#   2. every rendered object validates against a schema: Kubernetes built-ins
#      with kubernetes-validate (strict, Kubernetes $K8S_VERSION, default
#      1.30); custom resources with the strict schemas of deploy/schemas/crds
#      and, where published, the @kubernetes-models models from npm;
#   3. the rules (deploy/tests/test_manifests.py, test_secrets.py): one
#      Recreate worker in phase 5, non-root, limits and probes, no loopback
#      URLs, no secret values, drain fits the grace period, KEDA watches the
#      app's queue (phase6) or tasks table (postgres), a PDB per Deployment, ...;
#   4. promtool check rules + promtool test rules on deploy/monitoring/rules.yml,
#      and the PrometheusRule is generated from that file;
#   5. the Grafana dashboard parses and queries only the contract's metrics;
#   6. the Dockerfile builds with CI's command
#      `cargo build --release --locked --bin resume-agent`.
#
# Tools are installed on first use, pinned, outside the repository:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/resume-agent/deploy-venv   (PyPI, deploy/tests/requirements.txt)
#   ${XDG_CACHE_HOME:-$HOME/.cache}/resume-agent/deploy-npm    (npm, deploy/tests/js/package-lock.json)
# and reused while their pin files are unchanged. promtool comes from the
# Debian package `prometheus` (installed when missing and running as root).
# Needs kubectl (with its built-in kustomize), python3 and node/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/resume-agent"
export K8S_VERSION="${K8S_VERSION:-1.30}"

START=$(date +%s)
PASSED=0
FAILED=0
FAILED_STEPS=()

step() { printf '\n== %s\n' "$*"; }
die() { echo "check-deploy: $*" >&2; exit 1; }
result() { # name, status
  if [ "$2" -eq 0 ]; then
    PASSED=$((PASSED + 1)); echo "-- ok: $1"
  else
    FAILED=$((FAILED + 1)); FAILED_STEPS+=("$1"); echo "-- FAILED: $1"
  fi
}
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- tools ----------------------------------------------------------------------
step "tools"
command -v kubectl >/dev/null || die "kubectl is missing (it provides kustomize)"
command -v node >/dev/null || die "node is missing"
command -v npm >/dev/null || die "npm is missing"
PYTHON=$(command -v python3.11 || command -v python3) || die "python3 is missing"
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing promtool (Debian package prometheus)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    die "promtool is missing: install the Debian package 'prometheus'"
  fi
fi
mkdir -p "$CACHE"

# Python tools: a virtualenv keyed by the pin file and the interpreter.
VENV="$CACHE/deploy-venv"
want=$(hash_of deploy/tests/requirements.txt <("$PYTHON" -c 'import sys; print(sys.version)'))
if [ "$(cat "$VENV/.pins" 2>/dev/null || true)" != "$want" ]; then
  echo "installing Python tools into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  nice -n 10 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    -r deploy/tests/requirements.txt
  # Written last: an interrupted install is redone on the next run.
  echo "$want" > "$VENV/.pins"
fi
PY="$VENV/bin/python"

# npm tools: published CRD models and the PromQL grammar, from the lock file.
NPMDIR="$CACHE/deploy-npm"
want=$(hash_of deploy/tests/js/package.json deploy/tests/js/package-lock.json <(node --version))
if [ "$(cat "$NPMDIR/.pins" 2>/dev/null || true)" != "$want" ]; then
  echo "installing npm tools into $NPMDIR"
  tmp="$NPMDIR.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  cp deploy/tests/js/package.json deploy/tests/js/package-lock.json "$tmp/"
  (cd "$tmp" && nice -n 10 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$tmp/.pins"
  rm -rf "$NPMDIR" && mv "$tmp" "$NPMDIR"
fi
export RA_NODE_MODULES="$NPMDIR/node_modules"
echo "kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p' | sed 's/^/kustomize /'), $("$PY" --version), node $(node --version), $(promtool --version 2>&1 | head -n1)"

RENDER=$(mktemp -d "${TMPDIR:-/tmp}/resume-agent-deploy.XXXXXX")
trap 'rm -rf "$RENDER"' EXIT
export RA_RENDER_DIR="$RENDER"
PYTEST=("$PY" -m pytest -c deploy/tests/pytest.ini --rootdir deploy/tests -v -rfEs --no-header --tb=short)

# --- 1. render ------------------------------------------------------------------
step "1. kustomize renders"
status=0
for target in phase5:deploy/k8s/overlays/phase5 phase6:deploy/k8s/overlays/phase6 \
  postgres:deploy/k8s/overlays/postgres \
  monitoring-prometheus-operator:deploy/monitoring/prometheus-operator \
  monitoring-azure-managed:deploy/monitoring/azure-managed; do
  name=${target%%:*} dir=${target#*:}
  if kubectl kustomize "$dir" > "$RENDER/$name.yaml" 2> "$RENDER/$name.err"; then
    echo "ok   $dir: $(grep -c '^kind:' "$RENDER/$name.yaml") objects"
  else
    echo "FAIL $dir: $(cat "$RENDER/$name.err")"; status=1
  fi
done
result "kustomize renders" $status
[ $status -eq 0 ] || die "a kustomization does not render; nothing else can be checked"

# --- 2. schemas -----------------------------------------------------------------
step "2. every object against its schema (Kubernetes $K8S_VERSION, CRD schemas)"
status=0; (cd deploy/tests && "$PY" validate_schemas.py) || status=$?
result "schema validation" $status

# --- 3. rules -------------------------------------------------------------------
step "3. manifest rules"
status=0; "${PYTEST[@]}" deploy/tests/test_manifests.py deploy/tests/test_secrets.py || status=$?
result "manifest rules" $status

# --- 4. alert rules -------------------------------------------------------------
step "4. promtool on deploy/monitoring/rules.yml; PrometheusRule == rules.yml"
status=0
promtool check rules deploy/monitoring/rules.yml || status=1
promtool test rules deploy/monitoring/rules.test.yml || status=1
"$PY" deploy/tests/gen_prometheusrule.py --check || status=1
"${PYTEST[@]}" deploy/tests/test_monitoring.py -k "prometheusrule or alerts or servicemonitors" || status=1
result "alert rules" $status

# --- 5. dashboard ---------------------------------------------------------------
step "5. Grafana dashboard: parses, queries only the contract's metrics"
status=0; "${PYTEST[@]}" deploy/tests/test_monitoring.py -k "dashboard or query" || status=1
result "dashboard" $status

# --- 6. Dockerfile --------------------------------------------------------------
step "6. Dockerfile builds with CI's command (no Docker engine here: parsed, not built)"
status=0; "${PYTEST[@]}" deploy/tests/test_dockerfile.py || status=1
result "Dockerfile" $status

step "summary ($(( $(date +%s) - START )) s)"
if [ "$FAILED" -ne 0 ]; then
  printf 'failed: %s\n' "${FAILED_STEPS[@]}"
fi
echo "check-deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

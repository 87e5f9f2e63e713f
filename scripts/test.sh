#!/usr/bin/env bash
# The whole test suite, on a fresh machine: starts every service the tests
# need, runs formatting, lints and tests, and stops what it started.
#
#   scripts/test.sh            # a throwaway PostgreSQL cluster on a free port
#   DATABASE_URL=postgres://… scripts/test.sh   # use that server instead
#
# Needs: cargo (+ clippy, rustfmt), PostgreSQL server binaries (initdb,
# pg_ctl), promtool (installed from Debian's `prometheus` package when
# missing and running as root), node + npm (Azurite, pinned in package.json,
# installed with `npm ci` when missing) and python3 (a venv with Azure's
# Python SDK under ~/.cache/resume-agent, for the interoperability test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/resume-agent-test.XXXXXX")
chmod 755 "$WORK"
STARTED_PG=""
STARTED_AZURITE=""
log() { printf '\n== [%s] %s\n' "$(date +%T)" "$*"; }

as_pg() {
  # initdb and postgres refuse to run as root: run them as `postgres`.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  status=$?
  if [ -n "$STARTED_PG" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$STARTED_AZURITE" ]; then
    "$ROOT/scripts/azurite.sh" stop "$WORK/azurite" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK" 2>/dev/null || true
  exit $status
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- PostgreSQL ------------------------------------------------------------
PG_BIN=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1)")
if [ -n "${DATABASE_URL:-}" ]; then
  log "PostgreSQL: using DATABASE_URL"
  export TEST_DATABASE_URL="$DATABASE_URL"
else
  [ -x "$PG_BIN/initdb" ] || { echo "initdb not found: install PostgreSQL server binaries or set DATABASE_URL" >&2; exit 1; }
  PG_PORT=$(free_port)
  log "PostgreSQL: throwaway cluster on 127.0.0.1:$PG_PORT"
  mkdir -p "$WORK/pg" "$WORK/sock"
  if [ "$(id -u)" = 0 ]; then chown postgres "$WORK/pg" "$WORK/sock"; fi
  as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/pg.log" -w -t 60 start \
    -o "-p $PG_PORT -k $WORK/sock -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  STARTED_PG=1
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
fi
# Fault-injection tests start clusters of their own (to stop and restart them).
if [ -x "$PG_BIN/initdb" ]; then export TEST_PG_BIN="$PG_BIN"; fi

# --- Azurite (Azure Storage emulator) and Azure's Python SDK -------------------
log "Azurite: loopback, free ports"
STARTED_AZURITE=1
eval "$(scripts/azurite.sh start "$WORK/azurite")"
PYVENV="${XDG_CACHE_HOME:-$HOME/.cache}/resume-agent/pyvenv-azure-storage-queue-12.18.1"
if [ ! -x "$PYVENV/bin/python" ]; then
  log "python venv with azure-storage-queue (interoperability test)"
  python3 -m venv "$PYVENV"
  "$PYVENV/bin/pip" install -q azure-storage-queue==12.18.1
fi
export TEST_AZURE_PYTHON="$PYVENV/bin/python"

# --- promtool ----------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing promtool (Debian package prometheus)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool is missing: install the 'prometheus' package" >&2; exit 1
  fi
fi

# --- format, lints, tests ------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
log "fuzz (short, deterministic): mutated fixtures and hostile files through every extractor"
RESUME_FUZZ_ITERS=1000 RESUME_FUZZ_SEED=11 cargo test --locked -p resume-agent-resume --test fuzz -- --nocapture
log "release build: the container image's command (deploy/docker/Dockerfile)"
cargo build --release --locked --bin resume-agent
log "API fuzzing: schemathesis against the served OpenAPI document (release binary)"
scripts/schemathesis.sh target/release/resume-agent
log "browser tests: the console in headless Chromium (release binary; screenshots in target/console-screenshots)"
RESUME_AGENT_BIN=target/release/resume-agent scripts/browser-tests.sh
if [ -x scripts/check-deploy.sh ]; then
  log "deployment manifests"
  scripts/check-deploy.sh
fi
log "all green"

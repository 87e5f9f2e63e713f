#!/usr/bin/env bash
# Browser tests of the operator's console (tests/browser/console.spec.mjs):
# Playwright (playwright-core, pinned in package.json) driving Debian's
# headless Chromium against the real binary on free loopback ports.
#
#   scripts/browser-tests.sh                # builds the release binary (the image's command) when RESUME_AGENT_BIN is unset
#   RESUME_AGENT_BIN=target/release/resume-agent scripts/browser-tests.sh
#
# Installs what is missing: Debian's `chromium` (apt-get) and the npm test
# tools (npm ci). Screenshots of every page: SCREENSHOT_DIR (default
# target/console-screenshots). No browser is downloaded by a test tool.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  log "installing chromium (apt-get)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
if [ ! -f node_modules/playwright-core/package.json ] || [ ! -f node_modules/axe-core/axe.min.js ]; then
  log "installing the npm test tools (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ -z "${RESUME_AGENT_BIN:-}" ]; then
  # The container image's own command (check-deploy holds every script to it).
  log "release build of the binary"
  cargo build --release --locked --bin resume-agent
  RESUME_AGENT_BIN=target/release/resume-agent
fi
export RESUME_AGENT_BIN CHROMIUM
export SCREENSHOT_DIR=${SCREENSHOT_DIR:-target/console-screenshots}
log "browser tests (screenshots in $SCREENSHOT_DIR)"
node tests/browser/console.spec.mjs

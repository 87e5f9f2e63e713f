#!/usr/bin/env bash
# Azurite, the Azure Storage emulator, for the tests (pinned in package.json).
#
#   eval "$(scripts/azurite.sh start DIR)"   # installs it when missing (npm ci),
#                                            # starts blob+queue+table on free loopback
#                                            # ports, waits until they accept
#                                            # connections, prints the exports below
#   scripts/azurite.sh stop DIR              # stops the instance started in DIR
#
# Exports: TEST_AZURE_CONNECTION_STRING (account key of Azurite's well-known
# account, our ports), TEST_AZURITE_BIN (for tests that run an instance of
# their own, e.g. to stop it mid-test). State lives in memory only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Azurite's published development account (not a secret: it is in every SDK's docs).
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
BIN="$ROOT/node_modules/.bin/azurite"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(("127.0.0.1",int(sys.argv[1]))))' "$1"; }

case "$cmd" in
  start)
    if [ ! -x "$BIN" ]; then
      echo "installing azurite (npm ci)" >&2
      npm ci --no-audit --no-fund --loglevel=error >&2
    fi
    mkdir -p "$dir"
    blob=$(free_port); queue=$(free_port); table=$(free_port)
    "$BIN" --silent --loose --skipApiVersionCheck --disableTelemetry --inMemoryPersistence \
      --blobHost 127.0.0.1 --blobPort "$blob" \
      --queueHost 127.0.0.1 --queuePort "$queue" \
      --tableHost 127.0.0.1 --tablePort "$table" \
      >"$dir/azurite.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 300); do
      if listening "$blob" && listening "$queue"; then break; fi
      if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "azurite exited at start:" >&2; cat "$dir/azurite.log" >&2; exit 1
      fi
      sleep 0.1
    done
    listening "$queue" || { echo "azurite did not start listening in 30 s" >&2; exit 1; }
    echo "azurite: blob 127.0.0.1:$blob, queue 127.0.0.1:$queue (pid $(cat "$dir/pid"))" >&2
    cs="DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=http://127.0.0.1:$blob/$ACCOUNT;QueueEndpoint=http://127.0.0.1:$queue/$ACCOUNT;"
    printf "export TEST_AZURE_CONNECTION_STRING='%s'\n" "$cs"
    printf "export TEST_AZURITE_BIN='%s'\n" "$BIN"
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

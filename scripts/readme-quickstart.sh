#!/usr/bin/env bash
# Runs the README's first quick-start command exactly as written (the first ```sh block under
# "## Quick start"), waits for the example to say it is ready, then calls it as the README's
# walk-through does: the printed demo key gets 200 with RateLimit fields, no key gets 401.
set -euo pipefail
cd "$(dirname "$0")/.."

command=$(awk '/^## Quick start/{q=1} q&&/^```sh$/{getline; print; exit}' README.md)
[ -n "$command" ] || { echo "no command under '## Quick start' in README.md"; exit 1; }
echo "README's command: $command"

log=$(mktemp)
setsid bash -c "$command" >"$log" 2>&1 &
pid=$!
# The example's exit status after the kill (143) is not this script's: ignore it.
stop() { kill -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap stop EXIT

# The first run compiles the example: allow for it.
for _ in $(seq 1 1200); do
  grep -q "ready on" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "the example exited"; exit 1; }
  sleep 0.5
done
grep -q "ready on" "$log" || { tail -50 "$log"; echo "the example did not start"; exit 1; }

base=$(grep -o 'ready on http://[0-9.:]*' "$log" | head -1 | sed 's/ready on //')
key=$(grep -o 'export KEY=[^ ]*' "$log" | head -1 | sed 's/export KEY=//')
echo "example ready on $base"

python3 - "$base" "$key" <<'PY'
import sys, urllib.request, urllib.error
base, key = sys.argv[1], sys.argv[2]

def call(path, headers):
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers

status, headers = call("/orders", {"X-API-Key": key})
assert status == 200, f"GET /orders with the printed key: {status}"
assert headers["RateLimit-Policy"] == '"default";q=1000;w=3600', headers["RateLimit-Policy"]
assert headers["RateLimit"].startswith('"default";r=999;'), headers["RateLimit"]
status, headers = call("/orders", {})
assert status == 401, f"GET /orders without a key: {status}"
assert headers["WWW-Authenticate"].startswith("ApiKey"), headers["WWW-Authenticate"]
print("README quick start: 200 with the printed key, 401 without")
PY

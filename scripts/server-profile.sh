#!/usr/bin/env bash
# Instructions per request in a real server process: the load bench's axum server for each row
# (`benches/load.rs`, `--serve ROW`) runs under callgrind, a keep-alive client sends it the
# load test's request (an API key and an HS256 bearer token), and only the measured requests
# are counted (instrumentation is switched on after a warm-up). User space only: the kernel's
# TCP work is not in the count. Repeated runs of one build agree within ~10 instructions per
# request, unlike the load test's CPU time, so it tells what the layers cost a real hyper
# server per request.
#
#   bash scripts/server-profile.sh [REQUESTS] [ROW ...]   # default 2000; bare api_key_jwt full_stack_no_fields full_stack
#
# Needs valgrind and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
shift || true
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(bare api_key_jwt full_stack_no_fields full_stack)

bin=$(cargo bench --quiet --all-features --bench load --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "load" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$bin" "$out" "$n" "${rows[@]}" <<'PY'
import base64, hashlib, hmac, http.client, json, os, subprocess, sys, time

binary, out, n, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
SECRET = b"0123456789abcdef0123456789abcdef"  # benches/load.rs

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")

def bearer():
    # The load bench's token: HS256, the same claims.
    now = int(time.time())
    head = b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    claims = b64(json.dumps({"sub": "user-1234", "iat": now, "exp": now + 3600,
                             "scope": "orders:read orders:write"}).encode())
    sig = b64(hmac.new(SECRET, head + b"." + claims, hashlib.sha256).digest())
    return "Bearer " + (head + b"." + claims + b"." + sig).decode()

def count(row):
    file = os.path.join(out, "callgrind." + row)
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + file,
         binary, "--serve", row],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ready = server.stdout.readline().decode().split()
        assert ready and ready[0] == "ready", f"{row}: the server said {ready!r}"
        host, port = ready[1].rsplit(":", 1)
        headers = {"x-api-key": ready[2] if len(ready) > 2 else "-", "authorization": bearer()}
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        def send(k):
            for _ in range(k):
                conn.request("GET", "/orders", headers=headers)
                response = conn.getresponse()
                response.read()
                assert response.status == 200, f"{row}: status {response.status}"

        send(200)  # warm: caches filled, clocks calibrated, buffers grown
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        send(n)
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        conn.close()
    finally:
        server.stdin.close()
        server.wait(timeout=120)
    total = 0
    for name in os.listdir(out):
        # This row's file, and any per-thread parts of it (`.1`, `-01`), but not another
        # row's whose name merely starts with this one's (full_stack_no_fields, full_stack).
        stem = "callgrind." + row
        if name == stem or (name.startswith(stem) and name[len(stem)] in ".-"):
            with open(os.path.join(out, name)) as f:
                for line in f:
                    if line.startswith("totals:"):
                        total += int(line.split()[1])
                        break
    return total / n

base = None
print(f"{'row':24} {'instr/req':>10} {'over bare':>10} {'ratio':>7}")
for row in rows:
    per = count(row)
    base = per if base is None and row == "bare" else base
    over = f"{per - base:10.0f}" if base is not None else f"{'-':>10}"
    ratio = f"{per / base:6.2f}x" if base is not None else f"{'-':>7}"
    print(f"{row:24} {per:10.0f} {over} {ratio}")
PY

#!/usr/bin/env bash
# What one composite costs per request in each host, measured in one run:
# `pwchain serve`, the real `wasmtime serve -Scli` (scripts/wasmtime-cli.sh)
# and Node.js through jco (scripts/serve-node.sh). Sequential requests over
# one keep-alive connection each; prints p50, mean and the ratio of each
# host's p50 to pwchain serve's.
#
#   scripts/bench-hosts.sh CHAIN.wasm [REQUESTS] [PATH] [NAME=VALUE ...]
#
# NAME=VALUE pairs go to every host's environment (e.g. PWCHAIN_UPSTREAM).
# Build pwchain first (`cargo build --release -p pwchain` is what to compare;
# $PWCHAIN names the binary, default target/release/pwchain).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
chain="$1"
requests="${2:-300}"
path="${3:-/}"
shift $(($# < 3 ? $# : 3))
target="${CARGO_TARGET_DIR:-$here/../target}"
pwchain="${PWCHAIN:-$target/release/pwchain}"
[ -x "$pwchain" ] || pwchain="$target/debug/pwchain"
wasmtime=$("$here/wasmtime-cli.sh")
"$here/serve-node.sh" --install >/dev/null

envflags=()
for pair in "$@"; do envflags+=(--env "$pair"); done
log=$(mktemp)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$log"' EXIT

# Starts a host, waits for its `on http://ADDR/` line, measures, stops it.
measure() {
  local name="$1"
  shift
  : >"$log"
  "$@" 2>"$log" >/dev/null &
  local pid=$! addr=""
  for _ in $(seq 600); do
    addr=$(grep -o 'on http://[0-9.:]*' "$log" | head -1 | cut -c11- || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$log" >&2; echo "$name did not start" >&2; exit 1; }
  python3 - "$name" "$addr" "$requests" "$path" <<'PY'
import http.client, statistics, sys, time
name, addr, n, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
def once():
    conn.request("GET", path, headers={"authorization": "Bearer let-me-in"})
    r = conn.getresponse(); r.read()
    return r.status
for _ in range(min(20, n)):
    once()
times = []
for _ in range(n):
    t = time.perf_counter(); status = once(); times.append(time.perf_counter() - t)
ms = sorted(t * 1e3 for t in times)
print(f"{name:16} status {status}  p50 {statistics.median(ms):8.3f} ms  mean {statistics.mean(ms):8.3f} ms  p99 {ms[int(len(ms) * .99) - 1]:8.3f} ms")
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

results=$(
  measure "pwchain serve" "$pwchain" serve "$chain" --addr 127.0.0.1:0 "${envflags[@]}"
  measure "wasmtime serve" "$wasmtime" serve -Scli --addr 127.0.0.1:0 "${envflags[@]}" "$chain"
  measure "node (jco)" "$here/serve-node.sh" "$chain" 127.0.0.1:0 "$@"
)
echo "$results"
base=$(echo "$results" | awk '/^pwchain serve/ {print $6}')
echo "$results" | awk -v base="$base" '{printf "%-16s p50 / pwchain serve p50: %.2fx\n", $1 " " $2, $6 / base}'

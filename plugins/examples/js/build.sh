#!/usr/bin/env bash
# Builds the JavaScript example plugins into ../../dist/js-NAME.wasm with a
# pinned componentize-qjs (scripts/componentize-qjs.sh installs it once under
# ~/.cache/pwchain/tools; nothing is installed globally). A plugin is rebuilt
# only when its sources changed; a build that fails writes nothing.
set -euo pipefail
cd "$(dirname "$0")"
qjs=$(../../../scripts/componentize-qjs.sh)
mkdir -p ../../dist
for app in headers quota; do
  out="../../dist/js-$app.wasm"
  if [ -f "$out" ] && [ -z "$(find "$app" common build.sh -newer "$out" | head -1)" ]; then
    continue
  fi
  tmp="$out.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  "$qjs" --wit ../../../wit --world wasi:http/middleware@0.3.2 --module-root . \
    --js "$app/app.js" -o "$tmp"
  mv "$tmp" "$out"
  trap - EXIT
done

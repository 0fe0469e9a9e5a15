#!/usr/bin/env bash
# Builds {{name}}.wasm from app.js with componentize-qjs {{componentize_qjs}}, which
# ./componentize-qjs.sh installs once under ~/.cache/pwchain/tools (set
# COMPONENTIZE_QJS to use another install). A failed build writes nothing.
set -euo pipefail
cd "$(dirname "$0")"
qjs="${COMPONENTIZE_QJS:-$(./componentize-qjs.sh)}"
trap 'rm -f {{name}}.wasm.tmp' EXIT
"$qjs" --wit wit --world plugin --js app.js -o {{name}}.wasm.tmp
mv {{name}}.wasm.tmp {{name}}.wasm

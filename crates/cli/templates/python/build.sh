#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-py {{componentize_py}}, installed into
# .venv here on first use (set COMPONENTIZE_PY to use another install).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${COMPONENTIZE_PY:-}" ]; then
  if ! [ -x .venv/bin/componentize-py ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "componentize-py=={{componentize_py}}"
  fi
  COMPONENTIZE_PY=.venv/bin/componentize-py
fi
"$COMPONENTIZE_PY" --quiet -d wit -w plugin componentize app -p . -o {{name}}.wasm

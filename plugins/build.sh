#!/usr/bin/env bash
# Builds the example plugins (and pwchain's built-ins) for wasm32-wasip2 and
# copies them to plugins/dist/NAME.wasm, where chains/ expects them.
set -euo pipefail
cd "$(dirname "$0")"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2 --locked ${CARGO_BUILD_QUIET:+--quiet}
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p dist
for wasm in "$target"/wasm32-wasip2/release/*.wasm; do
  name=$(basename "$wasm" .wasm)
  cp "$wasm" "dist/${name//_/-}.wasm"
done

#!/usr/bin/env bash
# Builds the example plugins (and pwchain's built-ins) for wasm32-wasip2 and
# copies them to plugins/dist/NAME.wasm, where chains/ expects them.
set -euo pipefail
cd "$(dirname "$0")"
# The compiler ../rust-toolchain.toml names, with wasm32-wasip2.
if command -v rustup >/dev/null; then
  rustup -q toolchain install
fi
cargo build --release --target wasm32-wasip2 --locked ${CARGO_BUILD_QUIET:+--quiet}
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p dist
for wasm in "$target"/wasm32-wasip2/release/*.wasm; do
  name=$(basename "$wasm" .wasm)
  cp "$wasm" "dist/${name//_/-}.wasm"
done

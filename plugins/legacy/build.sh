#!/usr/bin/env bash
# Builds the legacy proxy-wasm filters for both targets the SDKs use and
# copies them to plugins/dist/legacy/NAME.{unknown,wasip1}.wasm.
set -euo pipefail
cd "$(dirname "$0")"
for target in wasm32-unknown-unknown wasm32-wasip1; do
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
  fi
done
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p ../dist/legacy
for target in wasm32-unknown-unknown wasm32-wasip1; do
  cargo build --release --target "$target" ${CARGO_BUILD_QUIET:+--quiet}
  flavour=${target#wasm32-}; flavour=${flavour%-unknown}
  for wasm in "$target_dir/$target"/release/*.wasm; do
    name=$(basename "$wasm" .wasm)
    cp "$wasm" "../dist/legacy/${name//_/-}.$flavour.wasm"
  done
done

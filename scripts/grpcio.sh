#!/usr/bin/env bash
# Installs a real gRPC stack for Python (grpcio, with the standard health
# service) once, under $PWCHAIN_TOOLS_DIR (default ~/.cache/pwchain/tools),
# and prints the directory to put on PYTHONPATH. The gRPC tests run
# tests/grpc/peer.py with it as the server and the client.
set -euo pipefail
. "$(dirname "$0")/pypi-tool.sh"
tools="${PWCHAIN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pwchain/tools}"
dir="$tools/grpcio-1.85.4"
pypi_tool "grpcio==1.85.4 grpcio-health-checking==1.85.1 protobuf==7.36.2 typing-extensions==4.16.0" \
  "$dir" "$dir/grpc/__init__.py"
echo "$dir"

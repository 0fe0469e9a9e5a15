#!/usr/bin/env bash
# Stops the registry registry/start.sh started (its storage stays in registry/.state).
set -euo pipefail
pid_file="$(cd "$(dirname "$0")" && pwd)/.state/pid"
[ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
rm -f "$pid_file"

#!/usr/bin/env bash
# Starts a local OCI registry for the walkthrough on 127.0.0.1:5050 (not
# 5000, which the Debian package's own service may hold). Prints its address.
#   registry/start.sh [ADDR]     registry/stop.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
addr="${1:-127.0.0.1:5050}"
command -v docker-registry >/dev/null || {
  echo "docker-registry is not installed: apt-get install docker-registry" >&2
  exit 1
}
state="$here/.state"
mkdir -p "$state/storage"
sed -e "s|STORAGE|$state/storage|" -e "s|ADDR|$addr|" "$here/config.yml" > "$state/config.yml"
docker-registry serve "$state/config.yml" > "$state/log" 2>&1 &
echo $! > "$state/pid"
for _ in $(seq 50); do
  if grep -q "listening on" "$state/log"; then
    echo "registry listening on $addr (publish to oci://$addr/NAMESPACE/NAME:VERSION)"
    exit 0
  fi
  sleep 0.1
done
cat "$state/log" >&2
exit 1

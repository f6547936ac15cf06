#!/usr/bin/env bash
# Stops the servers scripts/ci/redis-up.sh started (by the pid files in their folders) and removes the folders.
set -uo pipefail

dir="${KVF_REDIS_DIR:-${TMPDIR:-/tmp}/kvfusion-redis}"
[ -d "$dir" ] || exit 0

for pidfile in "$dir"/*/redis.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  fi
done

rm -rf "$dir"
echo "redis-down: stopped the test servers and removed $dir"

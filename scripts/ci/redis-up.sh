#!/usr/bin/env bash
# Starts the Redis servers the Redis tier tests use, daemonized, loopback only, without persistence:
#   a standalone Redis on 127.0.0.1:6390, and a three-node Redis Cluster (no replicas) on 127.0.0.1:7101-7103.
# Their folders (configs, logs, pid files) are under $KVF_REDIS_DIR (default: $TMPDIR/kvfusion-redis). Running it
# again while they are up is harmless. Prints the variables the tests read; source its last lines or use:
#   eval "$(scripts/ci/redis-up.sh | grep '^export ')"
# Stop them with scripts/ci/redis-down.sh.
set -euo pipefail

dir="${KVF_REDIS_DIR:-${TMPDIR:-/tmp}/kvfusion-redis}"
standalone_port="${KVF_REDIS_PORT:-6390}"
cluster_ports=(7101 7102 7103)

for tool in redis-server redis-cli; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "redis-up: $tool is not installed (Debian: apt-get install redis-server)" >&2
    exit 1
  fi
done

# The tier needs SET ... GET and GETDEL (Redis 6.2).
version="$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')"
if [ -n "$version" ] && [ "$(printf '%s\n6.2\n' "$version" | sort -V | head -n1)" != "6.2" ]; then
  echo "redis-up: redis-server $version is older than 6.2, which the Redis tier needs" >&2
  exit 1
fi

ping() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

start() { # port, extra args...
  local port="$1"; shift
  local node="$dir/$port"
  mkdir -p "$node"
  if ping "$port"; then
    return 0
  fi
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize yes \
    --dir "$node" --pidfile "$node/redis.pid" --logfile "$node/redis.log" \
    --save '' --appendonly no "$@"
}

wait_ping() { # port
  for _ in $(seq 1 100); do
    if ping "$1"; then return 0; fi
    sleep 0.1
  done
  echo "redis-up: Redis on 127.0.0.1:$1 did not answer PING; its log:" >&2
  tail -n 20 "$dir/$1/redis.log" >&2 || true
  exit 1
}

start "$standalone_port"
for port in "${cluster_ports[@]}"; do
  start "$port" --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 5000
done
wait_ping "$standalone_port"
for port in "${cluster_ports[@]}"; do wait_ping "$port"; done

cluster_nodes=()
for port in "${cluster_ports[@]}"; do cluster_nodes+=("127.0.0.1:$port"); done

if ! redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok'; then
  if [ "$(redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info | tr -d '\r' | awk -F: '/cluster_slots_assigned/ {print $2}')" = "0" ]; then
    redis-cli --cluster create "${cluster_nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log"
  fi
  for _ in $(seq 1 200); do
    ok=1
    for port in "${cluster_ports[@]}"; do
      redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    echo "redis-up: the cluster on ${cluster_nodes[*]} did not reach cluster_state:ok" >&2
    redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info >&2 || true
    exit 1
  fi
fi

echo "redis-up: standalone on 127.0.0.1:$standalone_port, cluster on ${cluster_nodes[*]} (folders in $dir)"
echo "export KVF_TEST_REDIS=127.0.0.1:$standalone_port"
echo "export KVF_TEST_REDIS_CLUSTER=$(IFS=,; echo "${cluster_nodes[*]}")"

#!/usr/bin/env bash
# Runs the docker-compose shape locally with real binaries: three quotehub
# nodes on one Redis sharing users' data in the local MariaDB (database
# quotehub, or QUOTEHUB_MYSQL_DSN), and nginx in front of them when nginx
# is installed.
#
#   scripts/cluster.sh            # nodes on 127.0.0.1:18081-18083, nginx on 127.0.0.1:18080
#   curl -N '127.0.0.1:18081/v1/sse?symbols=KRW-BTC'   # watch one symbol from each node
#
# Ctrl-C stops everything it started. Environment: QUOTEHUB_* settings are
# passed to every node (e.g. QUOTEHUB_REFRESH_INTERVAL=500ms); BASE_PORT
# (default 18080) moves the ports; REDIS_URL (default redis://127.0.0.1:6379/0).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${BASE_PORT:-18080}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
prefix=${QUOTEHUB_REDIS_PREFIX:-qhcluster:}
work=$(mktemp -d)
pids=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  echo "cluster: stopped"
}
trap cleanup EXIT INT TERM

bash scripts/services.sh >/dev/null
# The nodes share users' data in the local MariaDB (database quotehub).
mysql_dsn=${QUOTEHUB_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/quotehub}
if [[ -z ${QUOTEHUB_MYSQL_DSN:-} ]]; then
  mysql -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS quotehub CHARACTER SET utf8mb4'
fi
go build -o "$work/quotehub" ./cmd/quotehub

for i in 1 2 3; do
  port=$((base + i))
  QUOTEHUB_ADDR="127.0.0.1:$port" QUOTEHUB_ADMIN_ADDR="" QUOTEHUB_NODE_ID="node$i" \
  QUOTEHUB_REDIS_URL="$redis_url" QUOTEHUB_REDIS_PREFIX="$prefix" QUOTEHUB_LOG_FORMAT=json \
  QUOTEHUB_DATA_DIR="$work/data" \
  QUOTEHUB_MYSQL_DSN="$mysql_dsn" \
    "$work/quotehub" >"$work/node$i.log" 2>&1 &
  pids+=($!)
done

for i in 1 2 3; do
  for _ in $(seq 1 100); do
    curl -fsS "127.0.0.1:$((base + i))/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "cluster: node$i on http://127.0.0.1:$((base + i)) (log $work/node$i.log)"
done

if command -v nginx >/dev/null; then
  # The deploy/nginx.conf of docker-compose, pointed at the local nodes.
  sed -e "s/server node1:8080/server 127.0.0.1:$((base + 1))/" \
      -e "s/server node2:8080/server 127.0.0.1:$((base + 2))/" \
      -e "s/server node3:8080/server 127.0.0.1:$((base + 3))/" \
      -e "s/listen 8080;/listen 127.0.0.1:$base;/" \
      -e "s|^worker_processes auto;|worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.log;|" \
      -e "s|^http {|http { access_log off; client_body_temp_path $work/body; proxy_temp_path $work/proxy;|" \
      deploy/nginx.conf >"$work/nginx.conf"
  nginx -t -q -c "$work/nginx.conf" -p "$work"
  nginx -c "$work/nginx.conf" -p "$work" &
  pids+=($!)
  echo "cluster: nginx on http://127.0.0.1:$base in front of the three nodes"
else
  echo "cluster: nginx not installed (apt-get install nginx) — use the nodes directly"
fi

echo "cluster: try  curl -N 'http://127.0.0.1:$((base + 3))/v1/sse?symbols=KRW-BTC'  (Ctrl-C to stop)"
wait

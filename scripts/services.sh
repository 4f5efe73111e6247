#!/usr/bin/env bash
# Makes sure Redis and MariaDB answer on loopback: Redis for the tests that
# use the real server, MariaDB kept ready for the planned MySQL store (no
# test uses it yet). Uses a running one, else starts the installed one, else
# installs it with apt-get and starts it. Idempotent; safe to run often.
#
#   REDIS_ADDR  host:port of Redis    (default 127.0.0.1:6379)
#   MYSQL_ADDR  host:port of MariaDB  (default 127.0.0.1:3306)
set -euo pipefail

redis_port=${REDIS_ADDR:-127.0.0.1:6379}; redis_port=${redis_port##*:}
mysql_port=${MYSQL_ADDR:-127.0.0.1:3306}; mysql_port=${mysql_port##*:}

. "$(dirname "$0")/lib.sh"
say() { echo "services: $*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name
  for _ in $(seq 1 100); do
    port_open "$1" && return 0
    sleep 0.1
  done
  say "$2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

ensure_redis() {
  # The Redis Cluster tests start their own servers from these binaries,
  # even when a Redis already answers on the port.
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    say "installing redis-server and redis-cli"; apt_install redis-server redis-tools
  fi
  if port_open "$redis_port"; then say "redis is up on 127.0.0.1:$redis_port"; return; fi
  say "starting redis-server on 127.0.0.1:$redis_port"
  sudo_if_needed mkdir -p /var/lib/redis /var/log/redis
  sudo_if_needed redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/quotehub-test.log
  wait_port "$redis_port" redis
}

ensure_mariadb() {
  if port_open "$mysql_port"; then say "mariadb is up on 127.0.0.1:$mysql_port"; return; fi
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { say "installing mariadb-server"; apt_install mariadb-server; }
  say "starting mariadbd on 127.0.0.1:$mysql_port"
  sudo_if_needed mkdir -p /run/mysqld
  sudo_if_needed chown mysql:mysql /run/mysqld 2>/dev/null || true
  if [ ! -d /var/lib/mysql/mysql ]; then
    sudo_if_needed mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  sudo_if_needed start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
    --user=mysql --bind-address=127.0.0.1 --port="$mysql_port"
  wait_port "$mysql_port" mariadb
  # Tests connect as root without a password to the database "test".
  sudo_if_needed mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test" 2>/dev/null || true
}

ensure_redis
ensure_mariadb

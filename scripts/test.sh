#!/usr/bin/env bash
# Runs every test of tollgate on a fresh machine.
#
# Installs redis-server and PostgreSQL with apt-get when they are missing, starts both on free
# loopback ports in a temporary directory, runs the whole suite against them (the URLs are in
# TOLLGATE_REDIS_URL and TOLLGATE_POSTGRES_URL), and stops them whatever happens.
# Arguments go to `cargo test --all-features`; `--run COMMAND…` runs COMMAND instead.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_install=()
command -v redis-server >/dev/null 2>&1 || need_install+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_install+=(postgresql)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing ${need_install[*]} with apt-get"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_install[@]}" >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/tollgate-test.XXXXXX)
chmod 755 "$work"
redis_port=$(free_port)
pg_port=$(free_port)

# PostgreSQL refuses to run as root: run it as the `postgres` user the Debian package creates.
if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; pg_user=postgres
else as_pg() { "$@"; }; pg_user=$(id -un); fi

cleanup() {
  set +e
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --dir "$work" --pidfile "$work/redis.pid" --logfile "$work/redis.log"

mkdir "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg"
as_pg "$pg_bin/initdb" -D "$work/pg" -U "$pg_user" --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -w -t 60 -l "$work/pg/server.log" \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null

for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping | grep -q PONG

export TOLLGATE_REDIS_URL="redis://127.0.0.1:$redis_port"
export TOLLGATE_POSTGRES_URL="postgres://$pg_user@127.0.0.1:$pg_port/postgres"
echo "redis on $TOLLGATE_REDIS_URL, postgres on $TOLLGATE_POSTGRES_URL"

# `--run COMMAND…` runs COMMAND with the servers instead of the suite (benches, a REPL).
if [ "${1:-}" = "--run" ]; then
  shift
  "$@"
else
  cargo test --all-features "$@"
fi

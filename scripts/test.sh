#!/usr/bin/env bash
# Runs every test of tollgate on a fresh machine.
#
# Installs redis-server and PostgreSQL with apt-get when they are missing, starts both on free
# loopback ports in a temporary directory, runs the whole suite against them (the URLs are in
# TOLLGATE_REDIS_URL and TOLLGATE_POSTGRES_URL), and stops them whatever happens. Also starts a
# real OpenID provider (the `oidc-provider` npm package pinned in scripts/oidc, installed with
# `npm ci` from the npm registry) over plain HTTP and over TLS with a test CA made here with
# openssl (TOLLGATE_OIDC_ISSUER, TOLLGATE_OIDC_TLS_ISSUER, TOLLGATE_OIDC_CA, …), and a Redis
# Cluster of three primaries with one replica each on six more loopback ports
# (TOLLGATE_REDIS_CLUSTER_URLS, comma-separated, every node).
# Arguments go to `cargo test --all-features`; `--run COMMAND…` runs COMMAND instead.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_install=()
command -v redis-server >/dev/null 2>&1 || need_install+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_install+=(postgresql)
command -v node >/dev/null 2>&1 || need_install+=(nodejs)
command -v npm >/dev/null 2>&1 || need_install+=(npm)
command -v openssl >/dev/null 2>&1 || need_install+=(openssl)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing ${need_install[*]} with apt-get"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_install[@]}" >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# A free loopback port, never one this script has handed out already: once the probing socket
# is closed the kernel may offer the same port again, and two services would then race for it.
free_port() {
  local port
  while :; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    grep -qx "$port" "$work/ports" 2>/dev/null || break
  done
  echo "$port" >>"$work/ports"
  echo "$port"
}

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
  for pid in "$work"/cluster/*/redis.pid; do
    # A node a failover test stopped (SIGSTOP) must be continued to hear the TERM.
    [ -f "$pid" ] && kill -CONT "$(cat "$pid")" 2>/dev/null && kill "$(cat "$pid")" 2>/dev/null
  done
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  [ -f "$work/oidc/provider.pid" ] && kill "$(cat "$work/oidc/provider.pid")" 2>/dev/null
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

# The Redis Cluster: six nodes, three primaries with one replica each. A node that stops
# answering for one second is failed over; the other shards keep serving meanwhile.
cluster_urls=()
cluster_addrs=()
for _ in 1 2 3 4 5 6; do
  # The cluster bus needs a port of its own (port + 10000 by default may not exist).
  port=$(free_port)
  bus_port=$(free_port)
  mkdir -p "$work/cluster/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --cluster-enabled yes --cluster-port "$bus_port" --cluster-config-file "$work/cluster/$port/nodes.conf" \
    --cluster-node-timeout 1000 --cluster-require-full-coverage no \
    --daemonize yes --dir "$work/cluster/$port" --pidfile "$work/cluster/$port/redis.pid" \
    --logfile "$work/cluster/$port/redis.log"
  cluster_urls+=("redis://127.0.0.1:$port")
  cluster_addrs+=("127.0.0.1:$port")
done
for addr in "${cluster_addrs[@]}"; do
  for _ in $(seq 1 100); do
    redis-cli -p "${addr#*:}" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
done
redis-cli --cluster create "${cluster_addrs[@]}" --cluster-replicas 1 --cluster-yes >"$work/cluster/create.log" 2>&1 ||
  { cat "$work/cluster/create.log"; echo "the Redis Cluster was not created"; exit 1; }
cluster_ready=""
for _ in $(seq 1 150); do
  cluster_ready=yes
  for addr in "${cluster_addrs[@]}"; do
    redis-cli -p "${addr#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || cluster_ready=""
  done
  # Every replica attached to its primary and done with its first sync, so a failover test
  # finds one that has what its primary has.
  [ "$(redis-cli -p "${cluster_addrs[0]#*:}" cluster nodes | grep -c 'slave .* connected')" -eq 3 ] || cluster_ready=""
  synced=0
  for addr in "${cluster_addrs[@]}"; do
    redis-cli -p "${addr#*:}" info replication 2>/dev/null | grep -q 'master_link_status:up' && synced=$((synced + 1))
  done
  [ "$synced" -eq 3 ] || cluster_ready=""
  [ -n "$cluster_ready" ] && break
  sleep 0.1
done
[ -n "$cluster_ready" ] || { redis-cli -p "${cluster_addrs[0]#*:}" cluster nodes; echo "the Redis Cluster did not settle"; exit 1; }

# The OpenID provider: dependencies from the lock file (again only when it changed), a test CA
# and a certificate for localhost/127.0.0.1 signed by it, then both listeners.
oidc_dir=scripts/oidc
stamp="$oidc_dir/node_modules/.tollgate-lock.sha256"
lock_sum=$(sha256sum "$oidc_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  echo "installing the OpenID provider (npm ci in $oidc_dir)"
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" >"$stamp"
fi
mkdir "$work/oidc"
(
  cd "$work/oidc"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -sha256 \
    -subj "/CN=tollgate test CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile server.ext -out server.pem 2>/dev/null
)
oidc_port=$(free_port)
oidc_tls_port=$(free_port)
OIDC_HTTP_PORT=$oidc_port OIDC_HTTPS_PORT=$oidc_tls_port \
  OIDC_TLS_CERT="$work/oidc/server.pem" OIDC_TLS_KEY="$work/oidc/server.key" \
  node "$oidc_dir/provider.mjs" >"$work/oidc/provider.log" 2>&1 &
echo $! >"$work/oidc/provider.pid"
oidc_ready=""
for _ in $(seq 1 150); do
  if curl -sf "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" >/dev/null 2>&1 &&
     curl -sf --cacert "$work/oidc/ca.pem" "https://localhost:$oidc_tls_port/.well-known/openid-configuration" >/dev/null 2>&1; then
    oidc_ready=yes; break
  fi
  sleep 0.1
done
[ -n "$oidc_ready" ] || { cat "$work/oidc/provider.log"; echo "the OpenID provider did not start"; exit 1; }

export TOLLGATE_REDIS_URL="redis://127.0.0.1:$redis_port"
export TOLLGATE_REDIS_CLUSTER_URLS=$(IFS=,; echo "${cluster_urls[*]}")
export TOLLGATE_POSTGRES_URL="postgres://$pg_user@127.0.0.1:$pg_port/postgres"
export TOLLGATE_OIDC_ISSUER="http://127.0.0.1:$oidc_port"
export TOLLGATE_OIDC_TLS_ISSUER="https://localhost:$oidc_tls_port"
export TOLLGATE_OIDC_CA="$work/oidc/ca.pem"
export TOLLGATE_OIDC_CLIENT_ID=tollgate-test TOLLGATE_OIDC_CLIENT_SECRET=tollgate-test-secret
export TOLLGATE_OIDC_AUDIENCE=https://api.tollgate.test
echo "redis on $TOLLGATE_REDIS_URL, postgres on $TOLLGATE_POSTGRES_URL"
echo "redis cluster on $TOLLGATE_REDIS_CLUSTER_URLS"
echo "OpenID provider on $TOLLGATE_OIDC_ISSUER and $TOLLGATE_OIDC_TLS_ISSUER (CA $TOLLGATE_OIDC_CA)"

# `--run COMMAND…` runs COMMAND with the servers instead of the suite (benches, a REPL).
if [ "${1:-}" = "--run" ]; then
  shift
  "$@"
else
  cargo test --all-features "$@"
fi

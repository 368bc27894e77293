#!/usr/bin/env bash
# The local stack's data services, as real processes on this machine: what the managed Postgres
# cluster and the Spaces bucket are to the cloud stacks.
#
#   scripts/local-data.sh up      start what is not running, and their supervisor (idempotent)
#   scripts/local-data.sh down    stop the supervisor, then both
#   scripts/local-data.sh status  one line each
#
# The supervisor (local-data.sh supervise, log $STATE/data-supervisor.log) looks every 5 s and
# starts again whichever of the two has stopped: DigitalOcean keeps the managed cluster and
# Spaces up, and the local stack's co-ops and backups should not depend on a person noticing.
#
# - PostgreSQL (Debian's postgresql): a cluster of the project's own in $STATE/postgres, run as
#   the postgres user, on port COOP_PG_PORT (5433) of 127.0.0.1 and of the docker0 bridge's
#   address. The co-ops' containers reach it there, as droplets reach the managed cluster over
#   the VPC: a container cannot reach the host's loopback. Password logins only (scram-sha-256).
#   The program makes each co-op's role and database (LocalDatabase) with the admin password in
#   $STATE/postgres/admin-password (0600).
# - versitygw (S3-compatible, built by scripts/toolchain.sh) on 127.0.0.1:COOP_S3_PORT (7070),
#   objects in $STATE/s3: the local "Spaces". The bucket coop-local-backups holds the co-ops'
#   database backups. It is outside the hosts' root (/opt/coop) and outside Docker, so removing a
#   host, its containers or its volumes leaves the backups, as a droplet's loss leaves Spaces.
#   Its keys are in $STATE/s3-keys (0600) and reach it through its environment.
#
# Writes $STATE/data.json: what the program reads on the local stack (where, never a secret's
# value: the files that hold them).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

STATE=${COOP_LOCAL_STATE:-$COOP_ROOT/.local}
PG_PORT=${COOP_PG_PORT:-5433}
S3_PORT=${COOP_S3_PORT:-7070}
BUCKET=coop-local-backups

# The cluster lives in $STATE/postgres/data, run by the postgres user, who must be able to reach
# it: in a checkout under a directory closed to other users (/root, a 0700 home) it goes to
# /var/lib/coop-local/<hash of the checkout's path>/data instead.
pgdata_dir() {
  if runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    printf '%s\n' "$STATE/postgres/data"
  else
    printf '/var/lib/coop-local/%s/data\n' "$(printf '%s' "$COOP_ROOT" | sha256sum | cut -c1-12)"
  fi
}
mkdir -p "$STATE"
PGDATA=$(pgdata_dir)

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

pg_bindir() {
  find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

# The address containers reach the host on: the default bridge's.
bridge_address() {
  ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1
}

postgres_up() {
  local bin bridge
  bin=$(pg_bindir)
  [[ -n $bin && -x $bin/initdb ]] || die "PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)"
  bridge=$(bridge_address)
  [[ -n $bridge ]] || die "docker0 has no address: start the Docker engine first (scripts/local-hosts.sh up)"
  mkdir -p "$STATE/postgres"
  chmod 0755 "$STATE/postgres"
  if [[ ! -f $STATE/postgres/admin-password ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$STATE/postgres/admin-password")
  fi
  if [[ ! -f $PGDATA/PG_VERSION ]]; then
    say "making the local PostgreSQL cluster in $PGDATA"
    mkdir -p "$(dirname "$PGDATA")"
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    install -o postgres -g postgres -m 0600 "$STATE/postgres/admin-password" "$PGDATA.pwfile"
    runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --pwfile="$PGDATA.pwfile" -E UTF8 --locale=C.UTF-8 >"$STATE/postgres/initdb.log" 2>&1 ||
      die "initdb failed; see $STATE/postgres/initdb.log"
    rm -f "$PGDATA.pwfile"
  fi
  # Containers come from the private ranges Docker uses; every login needs a password.
  cat >"$PGDATA/pg_hba.conf" <<EOF
local all postgres peer
host all all 127.0.0.1/32 scram-sha-256
host all all 172.16.0.0/12 scram-sha-256
host all all 10.0.0.0/8 scram-sha-256
host all all 192.168.0.0/16 scram-sha-256
EOF
  chown postgres:postgres "$PGDATA/pg_hba.conf"
  if runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" reload >/dev/null
    return
  fi
  local log
  log=$(dirname "$PGDATA")/postgres.log
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT and $bridge:$PG_PORT (log: $log)"
  touch "$log" && chown postgres:postgres "$log"
  runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -l "$log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1,$bridge -c port=$PG_PORT -c unix_socket_directories=/tmp -c max_connections=200" start >/dev/null ||
    die "PostgreSQL did not start; see $log"
}

s3_up() {
  local bin=$COOP_TOOLCHAIN_BIN/versitygw
  [[ -x $bin ]] || die "versitygw is not built: run scripts/toolchain.sh"
  mkdir -p "$STATE/s3/root/$BUCKET" "$STATE/s3/meta"
  chmod 0700 "$STATE/s3"
  if [[ ! -f $STATE/s3-keys ]]; then
    (umask 077 && printf 'ROOT_ACCESS_KEY_ID=coop%s\nROOT_SECRET_ACCESS_KEY=%s\n' \
      "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$(head -c 30 /dev/urandom | base64 | tr -d '/+=')" >"$STATE/s3-keys")
  fi
  pid_alive "$STATE/s3.pid" && return
  say "starting versitygw on 127.0.0.1:$S3_PORT (objects in $STATE/s3/root, log: $STATE/s3.log)"
  (
    set -a
    # shellcheck disable=SC1091
    source "$STATE/s3-keys"
    set +a
    exec setsid "$bin" --port "127.0.0.1:$S3_PORT" --quiet posix --sidecar "$STATE/s3/meta" "$STATE/s3/root" >>"$STATE/s3.log" 2>&1 </dev/null
  ) &
  echo $! >"$STATE/s3.pid"
  wait_for 15 versitygw port_in_use "$S3_PORT" || die "versitygw did not listen on $S3_PORT; see $STATE/s3.log"
}

write_facts() {
  local bridge tmp
  bridge=$(bridge_address)
  tmp=$(mktemp "$STATE/.data.XXXXXX")
  jq -n --arg host "$bridge" --argjson port "$PG_PORT" --argjson s3port "$S3_PORT" --arg bucket "$BUCKET" '{
    postgres: {host: $host, adminHost: "127.0.0.1", port: $port, adminUser: "postgres", adminPasswordFile: "postgres/admin-password"},
    objectStore: {endpoint: ("http://127.0.0.1:" + ($s3port | tostring)), region: "us-east-1", bucket: $bucket, keysFile: "s3-keys"}
  }' >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$STATE/data.json"
}

postgres_running() {
  [[ -f $PGDATA/PG_VERSION ]] && runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# supervise: each 5 s, starts again what has stopped (each start in a subshell: a failed one is
# logged and tried again, it does not end the supervisor).
cmd_supervise() {
  while :; do
    sleep 5
    if ! postgres_running; then
      say "PostgreSQL is not running; starting it again"
      (postgres_up) || say "PostgreSQL did not start; trying again in 5 s"
    fi
    if ! pid_alive "$STATE/s3.pid"; then
      say "versitygw is not running; starting it again"
      (s3_up) || say "versitygw did not start; trying again in 5 s"
    fi
  done
}

start_supervisor() {
  pid_alive "$STATE/data-supervisor.pid" && return
  say "starting the data supervisor (log: $STATE/data-supervisor.log)"
  setsid "$COOP_ROOT/scripts/local-data.sh" supervise >>"$STATE/data-supervisor.log" 2>&1 </dev/null &
  echo $! >"$STATE/data-supervisor.pid"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root (it runs PostgreSQL as the postgres user)"
  need jq "apt-get install jq"
  mkdir -p "$STATE"
  postgres_up
  s3_up
  write_facts
  start_supervisor
  say "local data up: PostgreSQL $(bridge_address):$PG_PORT, S3 http://127.0.0.1:$S3_PORT bucket $BUCKET"
}

cmd_down() {
  # The supervisor first, or it would start them again.
  if pid_alive "$STATE/data-supervisor.pid"; then
    kill "$(cat "$STATE/data-supervisor.pid")" && say "stopped the data supervisor"
  fi
  rm -f "$STATE/data-supervisor.pid"
  if postgres_running; then
    runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null && say "stopped PostgreSQL"
  fi
  if pid_alive "$STATE/s3.pid"; then
    kill "$(cat "$STATE/s3.pid")" && say "stopped versitygw"
  fi
  rm -f "$STATE/s3.pid"
}

cmd_status() {
  if postgres_running; then
    echo "postgres: up on $PG_PORT"
  else
    echo "postgres: down"
  fi
  pid_alive "$STATE/s3.pid" && echo "s3 (versitygw): up on 127.0.0.1:$S3_PORT" || echo "s3 (versitygw): down"
  pid_alive "$STATE/data-supervisor.pid" && echo "supervisor: up" || echo "supervisor: down"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  supervise) cmd_supervise ;;
  *) die "usage: local-data.sh up|down|status" ;;
esac

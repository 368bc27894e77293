#!/usr/bin/env bash
# Starts, as real processes on this machine, what a droplet is to the application layer:
# a Docker engine, an OpenSSH server on a loopback port that lets the deploy user in by key
# only, and an OCI registry on a loopback port holding the images, built here FROM scratch.
# Then it writes this machine's values (host, host key, deploy key, image digests) to
# .local/machine.json, which the local stack reads: the tracked Pulumi.local.yaml stays as committed.
#
#   scripts/local-hosts.sh up      start what is not running (idempotent), build and push images
#   scripts/local-hosts.sh down    stop the SSH server and registry (and dockerd if this script
#                                  started it), and the several hosts below if they run
#   scripts/local-hosts.sh status  one line per part
#   scripts/local-hosts.sh hosts up|down|status
#                                  several hosts in network namespaces of their own behind haproxy,
#                                  for the `multi` stack (scripts/netns-hosts.sh; needs `up` first:
#                                  they pull from its registry)
#
# As systemd does on a droplet, dockerd runs under a supervisor that starts it again whenever it
# ends, however it ends (docker.service's Restart=always, RestartSec=2), and the host agent's
# `watch` runs as the deploy user under another (the coop-agent.service of cloud-init:
# ROOT/bin/coop-agent watch, Restart=always, RestartSec=5): it reconciles the host whenever the
# engine (re)starts. Their logs: $STATE/dockerd.log, $STATE/watch.log.
#
# A second registry serves the same images to a login only (htpasswd, user coop, a password made
# here: $STATE/registry-private/password), for trying and testing coop:registries as with a
# private GHCR package.
#
# Ports (loopback only): COOP_SSH_PORT (2222), COOP_REGISTRY_PORT (5001),
# COOP_PRIVATE_REGISTRY_PORT (5002, the one that needs a login). The data services
# (PostgreSQL, the S3 server that stands in for Spaces) are scripts/local-data.sh's.
# Must run as root: it creates the deploy user and starts sshd and dockerd.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SSH_PORT=${COOP_SSH_PORT:-2222}
REGISTRY_PORT=${COOP_REGISTRY_PORT:-5001}
DEPLOY_USER=deploy
HOST_ROOT=/opt/coop
STATE=${COOP_LOCAL_STATE:-$COOP_ROOT/.local}
REGISTRY=127.0.0.1:$REGISTRY_PORT
PRIVATE_REGISTRY=127.0.0.1:${COOP_PRIVATE_REGISTRY_PORT:-5002}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# host_dockerd_running: a dockerd of this machine's own mount namespace runs (the hosts that
# scripts/netns-hosts.sh starts run dockerd too, each in a namespace of its own: they are not it).
host_dockerd_running() {
  local pid own
  own=$(readlink /proc/self/ns/mnt)
  for pid in $(pgrep -x dockerd); do
    [[ $(readlink "/proc/$pid/ns/mnt" 2>/dev/null) == "$own" ]] && return 0
  done
  return 1
}

docker_settled() { docker info >/dev/null 2>&1 || ! host_dockerd_running; }

# supervise_dockerd: what systemd's Restart=always is to docker.service. It adopts a dockerd that
# is already running (waits for it to end), and starts one whenever none runs, 2 s after the last
# one ended.
supervise_dockerd() {
  local pid adopted=0
  while :; do
    if host_dockerd_running; then
      adopted=1
      sleep 1
      continue
    fi
    if ((adopted)); then
      adopted=0
      sleep 2
      continue
    fi
    if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
      rm -f /var/run/docker.pid
    fi
    dockerd >>"$STATE/dockerd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$STATE/dockerd.pid"
    wait "$pid" || true
    say "dockerd (pid $pid) ended; starting it again in 2 s" 2>>"$STATE/dockerd.log"
    sleep 2
  done
}

# start_supervisor NAME: runs `local-hosts.sh supervise-NAME` in a session of its own (it outlives
# this script), once: its pid in $STATE/NAME-supervisor.pid.
start_supervisor() {
  local name=$1 log=$STATE/$1.log
  pid_alive "$STATE/$name-supervisor.pid" && return
  say "starting the $name supervisor (log: $log)"
  setsid "$COOP_ROOT/scripts/local-hosts.sh" "supervise-$name" >>"$log" 2>&1 </dev/null &
  echo $! >"$STATE/$name-supervisor.pid"
}

docker_up() {
  need docker "install Debian's docker.io (apt-get install docker.io) and re-run"
  need dockerd "install Debian's docker.io (apt-get install docker.io) and re-run"
  if docker info >/dev/null 2>&1; then
    start_supervisor dockerd
    return
  fi
  if pid_alive "$STATE/dockerd-supervisor.pid"; then
    # The supervisor starts it (again): wait for it.
    wait_for 60 "docker" docker info ||
      die "dockerd did not answer within 60 s of its supervisor starting it; last log lines: $(tail -n 3 "$STATE/dockerd.log" | tr '\n' ' ')"
    return
  fi
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    say "removing stale /var/run/docker.pid (pid $(cat /var/run/docker.pid) is not running)"
    rm -f /var/run/docker.pid
  fi
  if host_dockerd_running; then
    # Starting up, or shutting down: wait until it answers or is gone.
    wait_for 30 "docker" docker_settled ||
      die "dockerd is running but does not answer on /var/run/docker.sock; see its log, or stop it (pkill dockerd) and re-run"
    docker info >/dev/null 2>&1 && return
  fi
  start_supervisor dockerd
  wait_for 60 "docker" docker info ||
    die "dockerd did not start within 60 s; last log lines: $(tail -n 3 "$STATE/dockerd.log" | tr '\n' ' ')"
}

# registry_config ADDRESS STORAGE_SETTING [TOP_LEVEL_SETTING]: a docker-registry config over
# the one image store of $STATE/registry/data.
registry_config() {
  printf '%s\n' "version: 0.1" "log: { level: warn }" "storage:" \
    "  filesystem: { rootdirectory: $STATE/registry/data }" "  $2" "http: { addr: $1 }" ${3:+"$3"}
}

registry_up() {
  need docker-registry "install Debian's docker-registry (apt-get install docker-registry) and re-run"
  if pid_alive "$STATE/registry.pid"; then
    return
  fi
  port_in_use "$REGISTRY_PORT" &&
    die "port $REGISTRY_PORT is in use by another program; stop it or set COOP_REGISTRY_PORT to a free port"
  mkdir -p "$STATE/registry/data"
  registry_config "$REGISTRY" "delete: { enabled: true }" >"$STATE/registry/config.yml"
  say "starting registry on $REGISTRY"
  setsid docker-registry serve "$STATE/registry/config.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
  echo $! >"$STATE/registry.pid"
  wait_for 20 "registry" curl -fsS "http://$REGISTRY/v2/" ||
    die "registry did not answer on $REGISTRY within 20 s; see $STATE/registry.log"
}

deploy_user() {
  if ! id "$DEPLOY_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$DEPLOY_USER"
  fi
  # "*" = no password, but not locked: sshd without PAM refuses locked accounts even for keys.
  usermod --password '*' "$DEPLOY_USER"
  getent group docker >/dev/null || groupadd docker
  usermod --append --groups docker "$DEPLOY_USER"
  install -d -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0755 "$HOST_ROOT"
}

sshd_up() {
  [[ -x /usr/sbin/sshd ]] || die "sshd not found: install Debian's openssh-server (apt-get install openssh-server) and re-run"
  local dir=$STATE/ssh
  mkdir -p "$dir"
  chmod 0700 "$dir"
  [[ -f $dir/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C coop-local-host -f "$dir/host_ed25519"
  [[ -f $dir/deploy_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C coop-local-deploy -f "$dir/deploy_ed25519"
  local home
  home=$(getent passwd "$DEPLOY_USER" | cut -d: -f6)
  install -d -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0700 "$home/.ssh"
  install -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0600 "$dir/deploy_ed25519.pub" "$home/.ssh/authorized_keys"
  cat >"$dir/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $DEPLOY_USER
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
Subsystem sftp internal-sftp
EOF
  if pid_alive "$dir/sshd.pid"; then
    kill -HUP "$(cat "$dir/sshd.pid")"
    return
  fi
  port_in_use "$SSH_PORT" &&
    die "port $SSH_PORT is in use by another program; stop it or set COOP_SSH_PORT to a free port"
  mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejected $dir/sshd_config (see above)"
  say "starting sshd on 127.0.0.1:$SSH_PORT"
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$STATE/sshd.log"
  wait_for 10 "sshd" port_in_use "$SSH_PORT" || die "sshd did not listen on $SSH_PORT; see $STATE/sshd.log"
}

images_up() {
  "$COOP_ROOT/scripts/toolchain.sh" >/dev/null
  KAMAL_PROXY_BIN=$(readlink -f "$COOP_TOOLCHAIN_BIN/kamal-proxy") KAMAL_PROXY_VERSION=v$KAMAL_PROXY_VERSION \
    "$COOP_ROOT/scripts/build-images.sh" "$REGISTRY" "$STATE/images.json"
}

# machine_file: what the local stack takes from this machine (components/config/localMachine.ts
# reads it), written to .local/machine.json; the tracked Pulumi.local.yaml is not touched. The
# stack itself is made when missing: its committed file already has its encryption salt.
machine_file() {
  local host_key
  export PULUMI_CONFIG_PASSPHRASE=$COOP_LOCAL_PASSPHRASE
  "$COOP_ROOT/scripts/pulumi.sh" stack select --create --secrets-provider passphrase local >/dev/null
  host_key=$(cut -d' ' -f1,2 "$STATE/ssh/host_ed25519.pub")
  # Paths relative to .local/, as the program resolves them.
  jq -n --arg key "$host_key" --argjson port "$SSH_PORT" \
    --arg deploy "$(realpath --relative-to="$COOP_ROOT/.local" "$STATE/ssh/deploy_ed25519")" \
    --arg images "$(realpath --relative-to="$COOP_ROOT/.local" "$STATE/images.json")" \
    '{hosts: [{name: "local-1", address: "127.0.0.1", port: $port, hostKey: $key}], deployKeyFile: $deploy, imagesFile: $images}' \
    >"$COOP_ROOT/.local/machine.json.tmp"
  mv "$COOP_ROOT/.local/machine.json.tmp" "$COOP_ROOT/.local/machine.json"
}

# private_registry_up: the same storage as the open registry, read-only, behind a login: a
# password of its own made once (0600), its bcrypt hash in the registry's htpasswd file.
private_registry_up() {
  need htpasswd "install Debian's apache2-utils (apt-get install apache2-utils) and re-run"
  local dir=$STATE/registry-private
  if pid_alive "$STATE/registry-private.pid"; then
    return
  fi
  port_in_use "${PRIVATE_REGISTRY##*:}" &&
    die "port ${PRIVATE_REGISTRY##*:} is in use by another program; stop it or set COOP_PRIVATE_REGISTRY_PORT to a free port"
  install -d -m 0700 "$dir"
  if [[ ! -s $dir/password ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/password")
  fi
  htpasswd -niB coop <"$dir/password" >"$dir/htpasswd.tmp" && mv "$dir/htpasswd.tmp" "$dir/htpasswd"
  jq -n --arg server "$PRIVATE_REGISTRY" '{server: $server, username: "coop", passwordFile: "password"}' >"$dir/login.json"
  registry_config "$PRIVATE_REGISTRY" "maintenance: { readonly: { enabled: true } }" \
    "auth: { htpasswd: { realm: coop-private, path: $dir/htpasswd } }" >"$dir/config.yml"
  say "starting the registry that needs a login on $PRIVATE_REGISTRY"
  setsid docker-registry serve "$dir/config.yml" >"$STATE/registry-private.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry-private.pid"
  # It answers 401 to no login: up, and asking for one.
  wait_for 20 "private registry" sh -c "curl -sS -o /dev/null -w '%{http_code}' http://$PRIVATE_REGISTRY/v2/ | grep -qx 401" ||
    die "the private registry did not answer on $PRIVATE_REGISTRY within 20 s; see $STATE/registry-private.log"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root (it creates the deploy user and starts sshd and dockerd)"
  need curl "apt-get install curl"
  need jq "apt-get install jq"
  mkdir -p "$STATE"
  docker_up
  registry_up
  private_registry_up
  deploy_user
  sshd_up
  start_supervisor watch
  images_up
  "$COOP_ROOT/scripts/local-data.sh" up
  mkdir -p "$COOP_ROOT/.local"
  machine_file
  say "local hosts up: ssh $DEPLOY_USER@127.0.0.1:$SSH_PORT, registry $REGISTRY, images in $STATE/images.json"
}

cmd_down() {
  local f
  # The several hosts first: they pull from the registry stopped below.
  if [[ -d $COOP_ROOT/.local/netns ]]; then
    COOP_NETNS_SET=suite "$COOP_ROOT/scripts/netns-hosts.sh" down
    "$COOP_ROOT/scripts/netns-hosts.sh" down
  fi
  "$COOP_ROOT/scripts/local-data.sh" down
  # The supervisors first (each with what it runs: its session), so that nothing is started again.
  for f in "$STATE/watch-supervisor.pid" "$STATE/dockerd-supervisor.pid"; do
    if pid_alive "$f"; then
      kill -- "-$(cat "$f")" 2>/dev/null || kill "$(cat "$f")"
      say "stopped $(basename "$f" .pid)"
    fi
    rm -f "$f"
  done
  for f in "$STATE/ssh/sshd.pid" "$STATE/registry.pid" "$STATE/registry-private.pid" "$STATE/dockerd.pid"; do
    if pid_alive "$f"; then
      kill "$(cat "$f")"
      say "stopped $(basename "$f" .pid)"
    fi
    rm -f "$f"
  done
}

cmd_status() {
  docker info >/dev/null 2>&1 && echo "docker: up" || echo "docker: down"
  pid_alive "$STATE/registry.pid" && echo "registry: up on $REGISTRY" || echo "registry: down"
  pid_alive "$STATE/registry-private.pid" && echo "registry with a login: up on $PRIVATE_REGISTRY" || echo "registry with a login: down"
  pid_alive "$STATE/ssh/sshd.pid" && echo "sshd: up on 127.0.0.1:$SSH_PORT" || echo "sshd: down"
  pid_alive "$STATE/dockerd-supervisor.pid" && echo "dockerd supervisor: up" || echo "dockerd supervisor: down"
  pid_alive "$STATE/watch-supervisor.pid" && echo "host agent watch: up" || echo "host agent watch: down"
  "$COOP_ROOT/scripts/local-data.sh" status
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  hosts) shift && exec "$COOP_ROOT/scripts/netns-hosts.sh" "$@" ;;
  supervise-dockerd) supervise_dockerd ;;
  supervise-watch) supervise_watch "$HOST_ROOT" "$DEPLOY_USER" ;;
  *) die "usage: local-hosts.sh up|down|status|hosts up|down|status" ;;
esac

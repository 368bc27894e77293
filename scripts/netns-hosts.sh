#!/usr/bin/env bash
# Several hosts on this machine, each a host of its own the way a droplet is, and a load balancer
# in front of them the way DigitalOcean's is configured by the program (components/digitalocean/edge.ts).
#
#   scripts/netns-hosts.sh up      start what is not running (idempotent); writes .local/machine.multi.json
#   scripts/netns-hosts.sh down    stop the hosts, the relay and haproxy, remove the namespaces and links
#   scripts/netns-hosts.sh status  one line per part
#   COOP_NETNS_SET=suite scripts/netns-hosts.sh up|down|status
#                                  the test suite's own host instead (suite-1, 10.231.0.31, no balancer):
#                                  writes .local/machine.suite.json and Pulumi.suite.yaml (a copy of
#                                  Pulumi.local.yaml), so that the suite's `suite` stack never touches
#                                  the local stack a user deployed with scripts/up.sh
#
# (scripts/local-hosts.sh hosts up|down|status runs this too.)
#
# Host i (1..COOP_NETNS_HOSTS, default 3) is named node-i:
#   - network namespace coop-node-i, address 10.231.0.(10+i)/24 on a veth to the bridge coopbr0
#     (10.231.0.1) in the root namespace;
#   - a private mount namespace in which /run and the host root (/opt/coop) are bind mounts of
#     .local/netns/node-i/{run,root}: its Docker socket (/var/run/docker.sock), pid file, exec root
#     and its own containerd are its own, and so are the agent and the co-ops' files;
#   - in it: dockerd (data root .local/netns/node-i/docker, cgroup parent coop-node-i, its own
#     docker0 inside the namespace) under a supervisor that starts it again 2 s after it ends, as
#     docker.service's Restart=always does; sshd on 10.231.0.(10+i):22 with its own pinned ed25519
#     host key, key-only login for the deploy user; the agent's `watch` as the deploy user under a
#     supervisor (coop-agent.service); and relays of the registry's port and the local data
#     services' ports to this machine (below).
#
# The images stay in the one registry on 127.0.0.1:5001 (content-addressed, the refs in config name
# that address): a relay in the root namespace listens on 10.231.0.1:5001 and each host relays its
# own port 5001 there, so every host pulls by the same digest refs as the single local host, and
# nothing is pushed twice. (A registry of our own on the bridge would need every image pushed
# again under another address, and refs that differ from the local stack's.) The local stack's
# PostgreSQL and S3 server (scripts/local-data.sh, .local/data.json) are relayed the same way, so
# the hosts reach the one database and the one backup store at the addresses the stack's config
# names, as droplets reach the managed cluster and Spaces.
#
# haproxy (Debian's) on 127.0.0.1:COOP_LB_PORT (8090) in the root namespace: round robin over the
# hosts' proxies (10.231.0.(10+i):8080), a TCP connect check of each every second, a host failing
# 3 checks taken out, back after 2; a request whose connection fails is sent to another host
# (retries, redispatch). Which hosts it sends traffic to is the stack's to say: every host starts
# in maintenance, and the program's LocalBalancer (components/local/balancer.ts) sets the stack's
# hosts ready over haproxy's admin socket once every co-op is released on them, and remembers
# them in .local/netns/lb-servers (read again when haproxy is started).
#
# Must run as root.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# Which hosts: the multi stack's node-1..N behind haproxy, or the test suite's one host.
SET=${COOP_NETNS_SET:-multi}
case $SET in
  multi) COUNT=${COOP_NETNS_HOSTS:-3} PREFIX=node IP_BASE=10 VETH=coopv ;;
  suite) COUNT=1 PREFIX=suite IP_BASE=30 VETH=coopsv ;;
  *) die "COOP_NETNS_SET=$SET: must be multi or suite" ;;
esac
# host-main runs in a process of its own, started by this script: it must see the same set.
export COOP_NETNS_SET=$SET
NET=10.231.0
BRIDGE=coopbr0
BRIDGE_IP=$NET.1
REGISTRY_PORT=${COOP_REGISTRY_PORT:-5001}
PRIVATE_REGISTRY_PORT=${COOP_PRIVATE_REGISTRY_PORT:-5002}
LB_PORT=${COOP_LB_PORT:-8090}
PROXY_PORT=8080
DEPLOY_USER=deploy
HOST_ROOT=/opt/coop
LOCAL=$COOP_ROOT/.local
STATE=$LOCAL/netns
# The deploy user's authorized keys for these hosts, under its ~/.ssh.
AUTHORIZED_KEYS=authorized_keys.coop-multi

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# host_name I / host_ip I / host_ns I / host_dir I: host I's name, address, namespace and directory.
host_name() { echo "$PREFIX-$1"; }
host_ip() { echo "$NET.$((IP_BASE + $1))"; }
host_ns() { echo "coop-$PREFIX-$1"; }
host_dir() { echo "$STATE/$PREFIX-$1"; }

# --- the network -----------------------------------------------------------------------------

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

# netns_up I: the namespace, its veth to the bridge, its address, loopback up.
netns_up() {
  local ns veth=$VETH$1
  ns=$(host_ns "$1")
  [[ -e /run/netns/$ns ]] || ip netns add "$ns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE"
  fi
  ip link set "$veth" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$(host_ip "$1")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$BRIDGE_IP"
}

# relayed_ports: the ports of this machine's loopback that the hosts reach as their own: the
# registry's, and PostgreSQL's and the S3 server's once scripts/local-data.sh has run.
relayed_ports() {
  echo "$REGISTRY_PORT" "$PRIVATE_REGISTRY_PORT"
  [[ -f $LOCAL/data.json ]] || return 0
  jq -r '.postgres.port, (.objectStore.endpoint | capture(":(?<port>[0-9]+)$").port)' "$LOCAL/data.json"
}

# relays_up: the root namespace's end of each relay, on the bridge address only.
relays_up() {
  local port
  for port in $(relayed_ports); do
    pid_alive "$STATE/relay-$port.pid" && continue
    say "relaying $BRIDGE_IP:$port to 127.0.0.1:$port"
    setsid socat "TCP-LISTEN:$port,bind=$BRIDGE_IP,fork,reuseaddr" "TCP:127.0.0.1:$port" \
      >>"$STATE/relay.log" 2>&1 </dev/null &
    echo $! >"$STATE/relay-$port.pid"
  done
}

# --- keys ------------------------------------------------------------------------------------

# keys_up: the deploy key (one for every host, as on the cloud stacks) and each host's host key.
keys_up() {
  local i dir
  install -d -m 0755 "$STATE"
  [[ -f $STATE/deploy_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C coop-multi-deploy -f "$STATE/deploy_ed25519"
  # The namespaced hosts' sshd reads it from the deploy user's home, beside the single host's own
  # authorized_keys (the home is shared): sshd's StrictModes refuses a file under a directory that
  # others may write, which a checkout under /tmp is.
  local home
  home=$(getent passwd "$DEPLOY_USER" | cut -d: -f6)
  install -d -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0700 "$home/.ssh"
  install -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0600 "$STATE/deploy_ed25519.pub" "$home/.ssh/$AUTHORIZED_KEYS"
  for ((i = 1; i <= COUNT; i++)); do
    dir=$(host_dir "$i")
    install -d -m 0700 "$dir/ssh"
    [[ -f $dir/ssh/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "coop-$(host_name "$i")" -f "$dir/ssh/host_ed25519"
  done
}

deploy_user() {
  id "$DEPLOY_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$DEPLOY_USER"
  # "*" = no password, but not locked: sshd without PAM refuses locked accounts even for keys.
  usermod --password '*' "$DEPLOY_USER"
  getent group docker >/dev/null || groupadd docker
  id -nG "$DEPLOY_USER" | grep -qw docker || usermod --append --groups docker "$DEPLOY_USER"
  # The mount point of each host's root (the root namespace's own directory stays as it is).
  [[ -d $HOST_ROOT ]] || install -d -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0755 "$HOST_ROOT"
}

# sshd_config I: host I's sshd configuration.
sshd_config() {
  local dir
  dir=$(host_dir "$1")
  cat >"$dir/ssh/sshd_config" <<EOF
Port 22
ListenAddress $(host_ip "$1")
HostKey $dir/ssh/host_ed25519
PidFile /run/sshd.pid
AuthorizedKeysFile .ssh/$AUTHORIZED_KEYS
AllowUsers $DEPLOY_USER
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -t -f "$dir/ssh/sshd_config" || die "sshd rejected $dir/ssh/sshd_config (see above)"
}

# --- a host ----------------------------------------------------------------------------------

# host_up I: starts host I (its namespaces and what runs in them) unless it runs.
host_up() {
  local dir name
  dir=$(host_dir "$1")
  name=$(host_name "$1")
  netns_up "$1"
  sshd_config "$1"
  pid_alive "$dir/host.pid" && return
  install -d -m 0755 "$dir/run" "$dir/docker"
  install -d -o "$DEPLOY_USER" -g "$DEPLOY_USER" -m 0755 "$dir/root"
  say "starting $name ($(host_ip "$1"); log: $dir/host.log)"
  # nsenter, not `ip netns exec`: that mounts a sysfs of its own over /sys, hiding the cgroup
  # hierarchies under /sys/fs/cgroup that dockerd needs.
  setsid nsenter --net="/run/netns/$(host_ns "$1")" unshare --mount --propagation private \
    "$COOP_ROOT/scripts/netns-hosts.sh" host-main "$1" >>"$dir/host.log" 2>&1 </dev/null &
  echo $! >"$dir/host.pid"
}

# host_main I: runs inside host I's namespaces: its own /run and host root, then its processes.
host_main() {
  local dir port
  dir=$(host_dir "$1")
  mount --bind "$dir/run" /run
  mount --bind "$dir/root" "$HOST_ROOT"
  mkdir -p /run/sshd
  rm -f /run/docker.pid /run/docker.sock /run/sshd.pid
  # Each relayed port on every address of the host: its containers reach the database at their
  # bridge's address, as they reach this machine's on the single local host.
  for port in $(relayed_ports); do
    socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:$BRIDGE_IP:$port" &
  done
  supervise_dockerd "$1" &
  echo $! >"$dir/dockerd-supervisor.pid"
  /usr/sbin/sshd -D -f "$dir/ssh/sshd_config" -E "$dir/sshd.log" &
  supervise_watch "$HOST_ROOT" "$DEPLOY_USER" &
  wait
}

# supervise_dockerd I: docker.service's Restart=always for host I's engine.
supervise_dockerd() {
  local dir pid
  dir=$(host_dir "$1")
  while :; do
    dockerd --host unix:///run/docker.sock --group docker --data-root "$dir/docker" \
      --exec-root /run/docker --pidfile /run/docker.pid --cgroup-parent "coop-$(host_name "$1")" \
      >>"$dir/dockerd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/dockerd.pid"
    wait "$pid" || true
    say "dockerd (pid $pid) ended; starting it again in 2 s" 2>>"$dir/dockerd.log"
    sleep 2
  done
}

# in_host I COMMAND...: runs COMMAND in host I's namespaces (the docker CLI reaches its engine).
in_host() {
  local i=$1
  shift
  nsenter --target "$(host_pid "$i")" --net --mount -- "$@"
}

# host_pid I: a process inside host I's namespaces (the one `unshare` became).
host_pid() {
  local pid
  pid=$(cat "$(host_dir "$1")/host.pid")
  # setsid -> nsenter -> unshare exec()s host-main: the same pid throughout.
  echo "$pid"
}

# host_ready I: sshd and the engine of host I answer.
host_ready() {
  in_host "$1" docker info >/dev/null 2>&1 && (exec 3<>"/dev/tcp/$(host_ip "$1")/22") 2>/dev/null
}

# --- the load balancer -----------------------------------------------------------------------

# haproxy_config: the balancer's configuration; servers the stack named last (lb-servers) start ready.
haproxy_config() {
  local i name state enabled=""
  [[ -f $STATE/lb-servers ]] && enabled=$(cat "$STATE/lb-servers")
  cat <<EOF
# Written by scripts/netns-hosts.sh; the stack's hosts are set ready over the admin socket.
global
    stats socket $STATE/haproxy.sock mode 600 level admin
    pidfile $STATE/haproxy.pid
    log stderr format short local0 notice

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    # A request whose connection to a host fails goes to another host.
    retries 3
    option redispatch 1

frontend coop
    bind 127.0.0.1:$LB_PORT
    default_backend coop

backend coop
    balance roundrobin
    # Keep-alive to the hosts' proxies, as enable_backend_keepalive does; a connection is reused
    # only for requests that are safe to send again.
    http-reuse safe
    default-server check inter 1s fall 3 rise 2
EOF
  for ((i = 1; i <= COUNT; i++)); do
    name=$(host_name "$i")
    state=" disabled"
    grep -qx "$name" <<<"$enabled" && state=""
    echo "    server $name $(host_ip "$i"):$PROXY_PORT$state"
  done
}

haproxy_up() {
  need haproxy "install Debian's haproxy (apt-get install haproxy) and re-run"
  haproxy_config >"$STATE/haproxy.cfg.new"
  haproxy -c -q -f "$STATE/haproxy.cfg.new" || die "haproxy rejected $STATE/haproxy.cfg.new (see above)"
  if pid_alive "$STATE/haproxy.pid" && cmp -s "$STATE/haproxy.cfg.new" "$STATE/haproxy.cfg"; then
    rm -f "$STATE/haproxy.cfg.new"
    return
  fi
  mv "$STATE/haproxy.cfg.new" "$STATE/haproxy.cfg"
  if pid_alive "$STATE/haproxy.pid"; then
    # A new set of servers: a new process takes over the port, the old one finishes its requests.
    say "reloading haproxy"
    haproxy -D -f "$STATE/haproxy.cfg" -sf "$(cat "$STATE/haproxy.pid")" 2>>"$STATE/haproxy.log"
    return
  fi
  port_in_use "$LB_PORT" && die "port $LB_PORT is in use by another program; stop it or set COOP_LB_PORT to a free port"
  say "starting haproxy on 127.0.0.1:$LB_PORT"
  haproxy -D -f "$STATE/haproxy.cfg" 2>>"$STATE/haproxy.log"
  wait_for 10 "haproxy" port_in_use "$LB_PORT" || die "haproxy did not listen on $LB_PORT; see $STATE/haproxy.log"
}

# --- what the program reads ------------------------------------------------------------------

# machine_file: .local/machine.SET.json, what the stack of this set takes from this machine, and
# the stack itself when it is missing (the suite's stack file first: a copy of the local stack's,
# whose encryption salt it keeps).
machine_file() {
  local i hosts="[]" key lb='{}'
  for ((i = 1; i <= COUNT; i++)); do
    key=$(cut -d' ' -f1,2 "$(host_dir "$i")/ssh/host_ed25519.pub")
    hosts=$(jq -c --arg n "$(host_name "$i")" --arg a "$(host_ip "$i")" --arg k "$key" \
      '. + [{name: $n, address: $a, port: 22, hostKey: $k}]' <<<"$hosts")
  done
  [[ $SET == multi ]] &&
    lb=$(jq -n --arg lb "127.0.0.1:$LB_PORT" \
      '{loadBalancer: {address: $lb, adminSocket: "netns/haproxy.sock", backend: "coop", serversFile: "netns/lb-servers"}}')
  jq -n --argjson hosts "$hosts" --argjson lb "$lb" \
    '{hosts: $hosts, deployKeyFile: "netns/deploy_ed25519", imagesFile: "images.json"} + $lb' \
    >"$LOCAL/machine.$SET.json.tmp"
  mv "$LOCAL/machine.$SET.json.tmp" "$LOCAL/machine.$SET.json"
  [[ $SET == suite ]] && suite_stack_file
  # Created without selecting it: the stack an operator selected stays selected.
  if ! "$COOP_ROOT/scripts/pulumi.sh" stack ls --json | jq -e --arg s "$SET" 'any(.[]; .name == $s)' >/dev/null; then
    PULUMI_CONFIG_PASSPHRASE=$COOP_LOCAL_PASSPHRASE "$COOP_ROOT/scripts/pulumi.sh" stack init --no-select --secrets-provider passphrase "$SET" >/dev/null
  fi
}

# suite_stack_file: Pulumi.suite.yaml as the local stack's file is now (git-ignored; the tests
# change it, and each test file starts from this), its proxy listening on the host's address for
# the tests to reach it from this machine.
suite_stack_file() {
  {
    echo "# Written by scripts/netns-hosts.sh from Pulumi.local.yaml: the test suite's own stack, on its own host."
    sed 's/^\(    bindAddress:\) 127\.0\.0\.1$/\1 0.0.0.0/' "$COOP_ROOT/Pulumi.local.yaml"
  } >"$COOP_ROOT/Pulumi.suite.yaml.tmp"
  grep -qx '    bindAddress: 0.0.0.0' "$COOP_ROOT/Pulumi.suite.yaml.tmp" ||
    die "Pulumi.local.yaml has no 'bindAddress: 127.0.0.1' under coop:proxy for the suite's stack to listen on its host's address"
  mv "$COOP_ROOT/Pulumi.suite.yaml.tmp" "$COOP_ROOT/Pulumi.suite.yaml"
}

# --- commands --------------------------------------------------------------------------------

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root (it makes network namespaces and starts sshd and dockerd)"
  local i
  for c in ip unshare nsenter socat jq haproxy dockerd; do need "$c" "run scripts/setup.sh (it installs what is missing)"; done
  [[ -x /usr/sbin/sshd ]] || die "sshd not found: install Debian's openssh-server and re-run"
  port_in_use "$REGISTRY_PORT" || die "no registry on 127.0.0.1:$REGISTRY_PORT: run scripts/local-hosts.sh up first"
  mkdir -p "$STATE"
  deploy_user
  keys_up
  bridge_up
  relays_up
  for ((i = 1; i <= COUNT; i++)); do host_up "$i"; done
  for ((i = 1; i <= COUNT; i++)); do
    wait_for 90 "$(host_name "$i")" host_ready "$i" ||
      die "$(host_name "$i") did not come up within 90 s; see $(host_dir "$i")/host.log and dockerd.log"
  done
  [[ $SET == multi ]] && haproxy_up
  machine_file
  say "hosts up: $(for ((i = 1; i <= COUNT; i++)); do printf '%s=%s ' "$(host_name "$i")" "$(host_ip "$i")"; done)$([[ $SET == multi ]] && echo "load balancer 127.0.0.1:$LB_PORT")"
}

# stop_pidfile FILE SECONDS: ends the process (its session, when it leads one) and waits for it.
stop_pidfile() {
  local f=$1 pid
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  if ! wait_for "$2" "$f" bash -c "! kill -0 $pid"; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped $(basename "$(dirname "$f")")/$(basename "$f" .pid)"
  rm -f "$f"
}

# host_down I: the engine first (it stops its containers), then the rest of host I, its namespace.
host_down() {
  local dir ns
  dir=$(host_dir "$1")
  ns=$(host_ns "$1")
  if pid_alive "$dir/host.pid"; then
    # Its supervisor first (it would start the engine again), then the engine: it stops its containers.
    pid_alive "$dir/dockerd-supervisor.pid" && kill "$(cat "$dir/dockerd-supervisor.pid")" 2>/dev/null
    stop_pidfile "$dir/dockerd.pid" 30
  fi
  stop_pidfile "$dir/host.pid" 10
  rm -f "$dir/dockerd-supervisor.pid"
  ip link del "$VETH$1" 2>/dev/null || true
  [[ -e /run/netns/$ns ]] && ip netns del "$ns"
  return 0
}

cmd_down() {
  local i f d n=$COUNT
  # Every host of this set the script may have started, however many were asked for then.
  for d in "$STATE/$PREFIX"-*; do
    [[ -d $d ]] && i=${d##*-} && ((i > n)) && n=$i
  done
  [[ $SET == multi ]] && stop_pidfile "$STATE/haproxy.pid" 10
  for ((i = 1; i <= n; i++)); do host_down "$i"; done
  rm -f "$LOCAL/machine.$SET.json"
  # The bridge and the relays serve both sets: they go with the last host that runs.
  for f in "$STATE"/*/host.pid; do pid_alive "$f" && return 0; done
  for f in "$STATE"/relay*.pid; do [[ -f $f ]] && stop_pidfile "$f" 5; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  return 0
}

cmd_status() {
  local i dir port
  for ((i = 1; i <= COUNT; i++)); do
    dir=$(host_dir "$i")
    if pid_alive "$dir/host.pid" && host_ready "$i"; then
      echo "$(host_name "$i"): up on $(host_ip "$i") (ssh :22, docker $(in_host "$i" docker info --format '{{.ServerVersion}}' 2>/dev/null))"
    else
      echo "$(host_name "$i"): down"
    fi
  done
  for port in $(relayed_ports); do
    pid_alive "$STATE/relay-$port.pid" && echo "relay of port $port: up on $BRIDGE_IP" || echo "relay of port $port: down"
  done
  [[ $SET == multi ]] || return 0
  if pid_alive "$STATE/haproxy.pid"; then
    echo "haproxy: up on 127.0.0.1:$LB_PORT"
    echo "show stat" | socat - "UNIX-CONNECT:$STATE/haproxy.sock" |
      awk -F, '$1 == "coop" && $2 != "FRONTEND" && $2 != "BACKEND" { printf "  %s: %s\n", $2, $18 }'
  else
    echo "haproxy: down"
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  host-main) host_main "$2" ;;
  exec) shift && in_host "$@" ;;
  *) die "usage: netns-hosts.sh up|down|status|exec I COMMAND..." ;;
esac

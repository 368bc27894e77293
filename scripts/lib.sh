# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; it sets nothing but functions and COOP_ROOT.

COOP_ROOT=$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)
export COOP_ROOT

# die MESSAGE: one line on stderr, naming the script, then exit 1.
die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

# say MESSAGE: progress line on stderr (stdout stays free for values a caller captures).
say() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
}

# need COMMAND HINT: fail with HINT when COMMAND is not on PATH.
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  : "$what"
}

# supervise_watch ROOT USER: what the droplets' coop-agent.service is: the host agent's watch, as
# USER, through the stable path the agent's install updates (ROOT/bin/coop-agent); started again
# 5 s after it ends (and, until an agent is installed, looked for every 5 s).
supervise_watch() {
  local root=$1 user=$2
  while :; do
    if [[ -x $root/bin/coop-agent ]]; then
      runuser -u "$user" -- "$root/bin/coop-agent" watch || true
    fi
    sleep 5
  done
}

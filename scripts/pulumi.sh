#!/usr/bin/env bash
# `npm run pulumi -- ARGS`: the project's pinned Pulumi CLI with the project's environment.
# For the local stacks (local, multi, suite) it supplies the documented local passphrase; every other stack needs
# PULUMI_CONFIG_PASSPHRASE (or _FILE) from the caller.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

command -v pulumi >/dev/null 2>&1 || die "pulumi not found: run scripts/toolchain.sh (or npm run setup) first"

stack=${PULUMI_STACK:-}
prev=
for arg in "$@"; do
  case "$prev" in -s | --stack) stack=$arg ;; esac
  case "$arg" in --stack=*) stack=${arg#--stack=} ;; esac
  prev=$arg
done
if [[ ($stack == local || $stack == multi || $stack == suite) && -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
  export PULUMI_CONFIG_PASSPHRASE=$COOP_LOCAL_PASSPHRASE
fi

cd "$COOP_ROOT"
# The program runs compiled (Pulumi.yaml: main build/); compile when a source changed since.
if ! node build/scripts/buildStamp.js --check 2>/dev/null; then
  say "compiling the program (npm run build)"
  npm run -s build >&2 || die "npm run build failed (see above)"
fi
mkdir -p "${PULUMI_BACKEND_URL#file://}"
clear_stale_locks
heal_checkpoints
# An interrupted update's pending creates of steps the next up redoes are dropped; others are named.
case " $* " in
  *" up "* | *" preview "* | *" destroy "*)
    if [[ -n $stack ]]; then node build/scripts/pendingOps.js "$stack" || true; fi
    ;;
esac

# The CLI runs as a child, not exec'd: it starts its language host and providers in process groups
# of their own, so a signal to the wrapper's group (a closed terminal) or a SIGKILL of the CLI left
# them running with no parent. Every process of this run carries COOP_PULUMI_RUN in its
# environment, and whatever of them is still running once the CLI has ended is ended too.
# The CLI keeps the caller's stdin, stdout, stderr and process group (the terminal, its prompts and
# Ctrl-C reach it as before), and its exit status is the wrapper's.
run_id="$$-$(date +%s%N)"
# run_procs: the processes of this run still running (the wrapper itself carries no marker).
run_procs() {
  grep -lzxF "COOP_PULUMI_RUN=$run_id" /proc/[0-9]*/environ 2>/dev/null | sed 's#^/proc/\([0-9]*\)/environ$#\1#' || true
}
# end_run: TERM to every process of this run, KILL to those left after 3 s.
end_run() {
  local pids i
  [[ -d /proc/self ]] || return 0
  for i in $(seq 30); do
    pids=$(run_procs)
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086 # one pid a word
    if ((i == 1)); then kill -TERM $pids 2>/dev/null || true; elif ((i == 30)); then kill -KILL $pids 2>/dev/null || true; fi
    sleep 0.1
  done
}
# A TERM or HUP to the wrapper stops the CLI as a TERM to it does (it cancels, and writes its
# checkpoint); one still running COOP_PULUMI_STOP_GRACE seconds later (default 5) is told again,
# which makes it terminate, and KILLed 5 s after that. An INT the terminal sent reached the CLI
# itself (same process group), and a second one would make it terminate instead of cancelling:
# only an INT that came some other way (the wrapper is not in its terminal's foreground) is passed on.
stopping=false
# shellcheck disable=SC2317 # run by the traps below
stop_cli() {
  local sig=$1 grace=${COOP_PULUMI_STOP_GRACE:-5} i
  if [[ $sig == INT ]]; then
    local stat
    read -r -a stat <"/proc/$$/stat" 2>/dev/null || stat=()
    # Fields 5 and 8 of /proc/PID/stat: process group, and the foreground group of its terminal.
    if [[ ${#stat[@]} -gt 7 && ${stat[4]} == "${stat[7]}" ]]; then return 0; fi
  fi
  $stopping && return 0
  stopping=true
  kill "-$sig" "$cli" 2>/dev/null || return 0
  [[ $sig == INT ]] && { stopping=false; return 0; }
  for i in $(seq $((grace * 10))); do kill -0 "$cli" 2>/dev/null || return 0; sleep 0.1; done
  kill -TERM "$cli" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$cli" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$cli" 2>/dev/null || true
}
trap 'stop_cli TERM' TERM
trap 'stop_cli HUP' HUP
trap 'stop_cli INT' INT
# An asynchronous command of a script starts with INT and QUIT ignored: the CLI gets them back.
# PR_SET_PDEATHSIG (setpriv): a SIGKILL of the wrapper reaches the CLI as a TERM.
pdeath=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig TERM true 2>/dev/null; then pdeath=(setpriv --pdeathsig TERM --); fi
run_cli() {
  trap - INT QUIT TERM HUP
  COOP_PULUMI_RUN=$run_id exec "${pdeath[@]}" pulumi "$@"
}
run_cli "$@" <&0 &
cli=$!
while :; do
  rc=0
  wait "$cli" || rc=$?
  # A wait a trapped signal interrupted returns above 128 while the CLI still runs.
  if ((rc > 128)) && kill -0 "$cli" 2>/dev/null; then continue; fi
  # It may have ended between the two: then its own status is still to be collected.
  if ((rc > 128)); then
    again=0
    wait "$cli" 2>/dev/null || again=$?
    ((again == 127)) || rc=$again
  fi
  break
done
trap - TERM HUP INT
end_run
exit "$rc"

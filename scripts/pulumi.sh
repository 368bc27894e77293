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
# An interrupted update's pending creates of steps the next up redoes are dropped; others are named.
case " $* " in
  *" up "* | *" preview "* | *" destroy "*)
    if [[ -n $stack ]]; then node build/scripts/pendingOps.js "$stack" || true; fi
    ;;
esac
exec pulumi "$@"

#!/usr/bin/env bash
# Runs a compiled project script (build/scripts/NAME.js) with the project's Pulumi environment,
# compiling first only when a TypeScript source is newer than the build (rollback is run at
# night: it should not wait for a compiler it does not need).
# It starts no process but node (and the compiler when needed): under load each one costs tens of
# milliseconds before the command has begun.
set -euo pipefail
here=${BASH_SOURCE[0]%/*}
[[ $here != "${BASH_SOURCE[0]}" ]] || here=.
# shellcheck source=scripts/env.sh
source "$here/env.sh"
script=$1
shift
out=$COOP_ROOT/build/scripts/$script.js

# stale: the build is missing or a TypeScript source is newer than it.
stale() {
  [[ -f $out ]] || return 0
  shopt -s globstar nullglob
  local f
  for f in "$COOP_ROOT"/{components,scripts,bench}/**/*.ts; do
    [[ $f -nt $out ]] && return 0
  done
  return 1
}
if stale; then
  (cd "$COOP_ROOT" && npx --no-install tsc -p .) >&2
fi
clear_stale_locks
exec node "$out" "$@"

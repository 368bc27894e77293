#!/usr/bin/env bash
# Runs a compiled project script (build/scripts/NAME.js) with the project's Pulumi environment,
# compiling first only when a TypeScript source is newer than the build (rollback is run at
# night: it should not wait for a compiler it does not need).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
script=$1
shift
out=$COOP_ROOT/build/scripts/$script.js
if [[ ! -f $out ]] || [[ -n $(find "$COOP_ROOT/components" "$COOP_ROOT/scripts" "$COOP_ROOT/bench" -name '*.ts' -newer "$out" -print -quit) ]]; then
  (cd "$COOP_ROOT" && npx --no-install tsc -p .) >&2
fi
clear_stale_locks
exec node "$out" "$@"

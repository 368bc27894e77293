#!/usr/bin/env bash
# Runs a compiled project script (build/scripts/NAME.js) with the project's Pulumi environment.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
script=$1
shift
exec node "$COOP_ROOT/build/scripts/$script.js" "$@"

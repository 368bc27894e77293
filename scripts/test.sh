#!/usr/bin/env bash
# README command 2 (and .ci/run): set everything up on this machine, then run the whole suite.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

started=$SECONDS
"$COOP_ROOT/scripts/setup.sh"
cd "$COOP_ROOT"
npm test
echo "test command wall time: $((SECONDS - started)) s"

#!/usr/bin/env bash
# README command 1: set everything up on this machine, deploy the local stack with the real
# Pulumi CLI, and print the URL to open.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$COOP_ROOT/scripts/setup.sh"
"$COOP_ROOT/scripts/pulumi.sh" up --stack local --yes --skip-preview --non-interactive
outputs=$("$COOP_ROOT/scripts/pulumi.sh" stack output --stack local --json)
echo
echo "The local stack is up. Open (each co-op on its own domain; *.localhost is this machine):"
jq -r '.coopUrls | to_entries[] | "  \(.key): \(.value | join("  "))"' <<<"$outputs"
echo "Roll a co-op back: npm run rollback -- --stack local    History: npm run releases -- --stack local"

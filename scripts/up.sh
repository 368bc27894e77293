#!/usr/bin/env bash
# README command 1: set everything up on this machine, deploy the local stack with the real
# Pulumi CLI, and print the URL to open.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$COOP_ROOT/scripts/setup.sh"
"$COOP_ROOT/scripts/pulumi.sh" up --stack local --yes --skip-preview --non-interactive
url=$("$COOP_ROOT/scripts/pulumi.sh" stack output --stack local proxyUrls --json | jq -r '.[0]')
echo
echo "The local stack is up. Open: $url"

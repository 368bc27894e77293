#!/usr/bin/env bash
# The policy pack's tests (issue 6; `npm run test:policy`): installs policy/'s npm dependencies when
# they are missing or older than package-lock.json (npm ci), compiles the pack and its tests
# (tsc, strict), then runs them with node's test runner: each rule's unit tests, the pack's wiring,
# and a `pulumi preview --policy-pack` of the fixture stack with the project's CLI. Exits non-zero
# when anything fails. Needs the toolchain of scripts/toolchain.sh (scripts/test.sh builds it).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$COOP_ROOT/policy"

need node "install Node.js 20 and re-run"
need npm "install Node.js 20 (with npm) and re-run"
need pulumi "run scripts/toolchain.sh, which builds the pinned CLI into $COOP_TOOLCHAIN_BIN"
need pulumi-analyzer-policy-coop-nodejs "run scripts/toolchain.sh, which installs it into $COOP_TOOLCHAIN_BIN"

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing the policy pack's npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

rm -rf build
node_modules/.bin/tsc -p .
# tsconfig.json's rootDir is the repository (the pack compiles components/rules.ts too): the pack's
# own files are under build/policy/.
node --test --test-reporter=spec build/policy/test/*.test.js

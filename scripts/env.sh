# shellcheck shell=bash
# The project's Pulumi environment. Source it (scripts/pulumi.sh and the tests do):
# the pinned CLI first on PATH, a file backend inside the project, no update checks,
# no plugin downloads (this machine cannot reach them, and a pinned build must not be swapped).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=toolchain/versions.env
source "$COOP_ROOT/toolchain/versions.env"

COOP_TOOLCHAIN_CACHE=${COOP_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coop-toolchain}
COOP_TOOLCHAIN_BIN="$COOP_TOOLCHAIN_CACHE/bin-pulumi-$PULUMI_VERSION"
export COOP_TOOLCHAIN_CACHE COOP_TOOLCHAIN_BIN

case ":$PATH:" in
  *":$COOP_TOOLCHAIN_BIN:"*) ;;
  *) PATH="$COOP_TOOLCHAIN_BIN:$COOP_ROOT/node_modules/.bin:$PATH" ;;
esac
export PATH

export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME=${PULUMI_HOME:-$COOP_ROOT/.pulumi-home}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$COOP_ROOT/.pulumi-state}
# The local stack's secrets are encrypted with this fixed passphrase. It protects nothing
# (it is written here) and must never be used for dev, uat or prod: those read
# PULUMI_CONFIG_PASSPHRASE from the operator's environment or a CI secret.
export COOP_LOCAL_PASSPHRASE=local-stack-only-not-a-secret

# shellcheck shell=bash
# The project's Pulumi environment. Source it (scripts/pulumi.sh and the tests do):
# the pinned CLI first on PATH, a file backend inside the project, no update checks,
# no plugin downloads (this machine cannot reach them, and a pinned build must not be swapped).
# shellcheck source=scripts/lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"
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
# PULUMI_HOME is left to Pulumi (~/.pulumi unless set): provider plugins an operator installed are found there.
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$COOP_ROOT/.pulumi-state}
# The local stack's secrets are encrypted with this fixed passphrase. It protects nothing
# (it is written here) and must never be used for dev, uat or prod: those read
# PULUMI_CONFIG_PASSPHRASE from the operator's environment or a CI secret.
export COOP_LOCAL_PASSPHRASE=local-stack-only-not-a-secret

# clear_stale_locks: a `pulumi up` that was killed leaves its lock in the file backend, and every
# later command (a rollback at night among them) then refuses to run. A lock taken on this host
# by a process that no longer runs is stale: remove it, and say so.
clear_stale_locks() {
  local dir=${PULUMI_BACKEND_URL#file://} lock pid host
  [[ $PULUMI_BACKEND_URL == file://* && -d $dir/.pulumi/locks ]] || return 0
  # The file backend keeps them as locks/ORGANIZATION/PROJECT/STACK/ID.json (locks/STACK/ID.json
  # in a backend made before projects had their own).
  for lock in "$dir"/.pulumi/locks/*/*.json "$dir"/.pulumi/locks/*/*/*/*.json; do
    [[ -f $lock ]] || continue
    pid=$(jq -r '.pid // empty' "$lock" 2>/dev/null) || continue
    host=$(jq -r '.hostname // empty' "$lock" 2>/dev/null) || continue
    # A zombie (killed, not yet reaped by its parent) runs no more than a process that is gone.
    if [[ -n $pid && $host == "$(hostname)" ]] &&
      { ! kill -0 "$pid" 2>/dev/null || [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) == Z ]]; }; then
      rm -f "$lock"
      printf '%s: removed a stale lock on stack %s left by pid %s, which no longer runs\n' \
        "$(basename "$0")" "$(basename "$(dirname "$lock")")" "$pid" >&2
    fi
  done
}

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
      rm -f "$lock" "$lock.attrs"
      printf '%s: removed a stale lock on stack %s left by pid %s, which no longer runs\n' \
        "$(basename "$0")" "$(basename "$(dirname "$lock")")" "$pid" >&2
    fi
  done
}

# heal_checkpoints: the file backend writes a stack's checkpoint (STACK.json) by renaming a complete
# temporary file over it, but its sidecar (STACK.json.attrs) by truncating and rewriting it in place,
# just after copying the previous checkpoint to STACK.json.bak. A CLI killed inside that rewrite
# leaves an empty .attrs, and every later command fails with `failed to load checkpoint: EOF`.
# Before a command, a checkpoint whose .json or .attrs does not parse is put back from its .bak
# (when the .bak parses), and one line says so; the broken files are kept beside it, renamed
# NAME.broken-TIME (a name the CLI does not read). A .json that parses is never replaced by an
# older .bak: when only its .attrs is broken and the .bak holds other data, the .attrs is set aside
# alone (the backend reads a missing .attrs as no attributes and writes a new one with the next update).
json_ok() { [[ -s $1 ]] && jq empty "$1" >/dev/null 2>&1; }
checkpoint_ok() { json_ok "$1" && { [[ ! -e $1.attrs ]] || json_ok "$1.attrs"; }; }
heal_checkpoints() {
  local dir=${PULUMI_BACKEND_URL#file://} file bak broken
  dir=${dir%%\?*}
  [[ $PULUMI_BACKEND_URL == file://* && -d $dir/.pulumi/stacks ]] || return 0
  # stacks/PROJECT/STACK.json, or stacks/STACK.json in a backend made before projects had their own.
  for file in "$dir"/.pulumi/stacks/*.json "$dir"/.pulumi/stacks/*/*.json; do
    if [[ ! -f $file ]] || checkpoint_ok "$file"; then continue; fi
    bak=$file.bak
    broken=$file.broken-$(date -u +%Y%m%dT%H%M%S.%NZ)
    if json_ok "$file" && ! { checkpoint_ok "$bak" && cmp -s "$file" "$bak"; }; then
      mv "$file.attrs" "$broken.attrs"
      printf '%s: set aside the broken %s (kept as %s); its checkpoint %s is intact and kept\n' \
        "$(basename "$0")" "$file.attrs" "$broken.attrs" "$file" >&2
    elif checkpoint_ok "$bak"; then
      mv "$file" "$broken"
      if [[ -e $file.attrs ]]; then mv "$file.attrs" "$broken.attrs"; fi
      cp -p "$bak" "$file.heal-tmp" && mv "$file.heal-tmp" "$file"
      if [[ -e $bak.attrs ]]; then cp -p "$bak.attrs" "$file.attrs"; fi
      printf '%s: restored the checkpoint %s from %s; the one that could not be loaded is kept as %s\n' \
        "$(basename "$0")" "$file" "$bak" "$broken" >&2
    else
      printf '%s: the checkpoint %s cannot be loaded and its backup %s is missing or broken too; left as it is\n' \
        "$(basename "$0")" "$file" "$bak" >&2
    fi
  done
}

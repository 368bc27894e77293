#!/usr/bin/env bash
# Everything a fresh Debian machine needs before the local stack can run: OS packages,
# npm dependencies, the pinned Pulumi toolchain and the local hosts. Idempotent.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# What must be on the machine, and the Debian package that brings it when it is not.
# Checked by file, not by package, so a Docker engine installed another way is used as is.
REQUIRED=(
  /usr/bin/docker:docker.io /usr/sbin/dockerd:docker.io
  /usr/sbin/sshd:openssh-server /usr/bin/ssh-keygen:openssh-client
  /usr/bin/docker-registry:docker-registry /usr/bin/htpasswd:apache2-utils
  /usr/bin/jq:jq /usr/bin/curl:curl /usr/bin/shellcheck:shellcheck
  /etc/ssl/certs/ca-certificates.crt:ca-certificates
  /usr/bin/cloud-init:cloud-init
  /usr/sbin/debootstrap:debootstrap
  /usr/bin/pg_dump:postgresql-client
  /usr/sbin/haproxy:haproxy /usr/bin/socat:socat /usr/sbin/ip:iproute2
  /usr/bin/nsenter:util-linux /usr/bin/unshare:util-linux /usr/bin/setpriv:util-linux
  /usr/bin/strace:strace
)

missing=()
for entry in "${REQUIRED[@]}"; do
  file=${entry%%:*} pkg=${entry#*:}
  if [[ ! -e $file ]] && ! command -v "$(basename "$file")" >/dev/null 2>&1; then
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
# The local stack's PostgreSQL (scripts/local-data.sh): Debian's server, whatever its version.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing Debian packages (${missing[*]}); run as root or install them first"
  need apt-get "this setup expects Debian or Ubuntu; install ${missing[*]} by hand"
  say "installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get could not install ${missing[*]}; run it by hand to see why"
fi

need node "install Node.js 20 (or 22) and re-run"
need go "install Go 1.25 or later (https://go.dev/dl) and re-run"

cd "$COOP_ROOT"
stamp=node_modules/.coop-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed; run it by hand to see why"
  echo "$want" >"$stamp"
fi

"$COOP_ROOT/scripts/toolchain.sh"
"$COOP_ROOT/scripts/local-hosts.sh" up

#!/usr/bin/env bash
# Builds the pinned Pulumi toolchain from Go modules into a cache outside the clone and
# links it into $COOP_TOOLCHAIN_BIN (see scripts/env.sh). Idempotent: a component whose
# version and go.sum are unchanged is not rebuilt. A `pulumi` of the pinned version already
# on PATH (outside the cache) is used as is, with the language host beside it.
#
#   scripts/toolchain.sh          build what is missing, print the CLI version
#   scripts/toolchain.sh --force  rebuild everything
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force=false
[[ ${1:-} == --force ]] && force=true

need go "install Go 1.25 or later (https://go.dev/dl) and re-run"
need node "install Node.js 20 and re-run"

npm_pulumi=$(node -p "require('$COOP_ROOT/package.json').dependencies['@pulumi/pulumi']")
[[ $npm_pulumi == "$PULUMI_VERSION" ]] ||
  die "toolchain/versions.env pins PULUMI_VERSION=$PULUMI_VERSION but package.json has @pulumi/pulumi $npm_pulumi; make them equal"

# Modules are fetched only through the proxy; these releases are missing from the checksum
# database it relays, so go.sum in toolchain/*/ is what verifies them.
export GOPROXY=${GOPROXY_OVERRIDE:-https://proxy.golang.org}
export GONOSUMDB=github.com/pulumi,github.com/basecamp
export GOFLAGS=-mod=readonly
export CGO_ENABLED=0

# place SRC DST: hard link (or copy) SRC to DST. Not a symlink: the CLI treats plugins that sit
# beside its own resolved executable as bundled, and warns about any it finds elsewhere on PATH.
place() {
  ln -f "$1" "$2" 2>/dev/null || install -m 0755 "$1" "$2"
}

# build NAME VERSION MODULE_DIR PACKAGE [LDFLAGS [BIN_NAME]]: go build PACKAGE inside the wrapper
# module MODULE_DIR into $COOP_TOOLCHAIN_CACHE/NAME-VERSION-SUMHASH/NAME and link it into the bin
# dir as BIN_NAME (default NAME).
# (Not called in $(...): a failure must stop this script, not a subshell.)
build() {
  local name=$1 version=$2 moddir=$COOP_ROOT/toolchain/$3 pkg=$4 ldflags=${5:-} bin_name=${6:-$1}
  local sum dir
  sum=$(cat "$moddir/go.mod" "$moddir/go.sum" | sha256sum | cut -c1-12)
  dir=$COOP_TOOLCHAIN_CACHE/$name-$version-$sum
  if $force || [[ ! -x $dir/$name ]]; then
    say "building $name $version (cold builds take minutes; cached in $dir)"
    mkdir -p "$dir"
    local started=$SECONDS log
    log=$(mktemp)
    if ! (cd "$moddir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$dir/$name.tmp" "$pkg") >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log" "$dir/$name.tmp"
      die "building $name $version failed (log above); check that the Go module proxy answers (go env GOPROXY) and re-run"
    fi
    rm -f "$log"
    mv "$dir/$name.tmp" "$dir/$name"
    say "built $name $version in $((SECONDS - started)) s"
  fi
  place "$dir/$name" "$COOP_TOOLCHAIN_BIN/$bin_name"
}

mkdir -p "$COOP_TOOLCHAIN_BIN"

# A pulumi of the pinned version on PATH outside our cache wins: link it and its siblings.
existing=$(PATH=${PATH//$COOP_TOOLCHAIN_BIN:/} command -v pulumi || true)
if [[ -n $existing ]] && [[ $("$existing" version 2>/dev/null) == "v$PULUMI_VERSION" ]] &&
  [[ -x $(dirname "$existing")/pulumi-language-nodejs ]]; then
  say "using $existing (v$PULUMI_VERSION already on PATH)"
  ln -sfn "$existing" "$COOP_TOOLCHAIN_BIN/pulumi"
  ln -sfn "$(dirname "$existing")/pulumi-language-nodejs" "$COOP_TOOLCHAIN_BIN/pulumi-language-nodejs"
else
  version_flag="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
  build pulumi "$PULUMI_VERSION" pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$version_flag"
  # The 3.68 host takes Pulumi.yaml's runtime options only as flags, which the 3.248 CLI no longer
  # passes: toolchain/pulumi-language-nodejs reads them from Pulumi.yaml and starts the host with them.
  build pulumi-language-nodejs "$PULUMI_LANGHOST_VERSION" langhost \
    github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_LANGHOST_VERSION" \
    pulumi-language-nodejs.bin
  install -m 0755 "$COOP_ROOT/toolchain/pulumi-language-nodejs" "$COOP_TOOLCHAIN_BIN/pulumi-language-nodejs"
fi

# The dynamic-provider plugin is a shell script shipped in the sdk module at the CLI's version.
sdk_dir=$(cd "$COOP_ROOT/toolchain/pulumi" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
[[ -f $sdk_dir/nodejs/dist/pulumi-resource-pulumi-nodejs ]] ||
  die "pulumi-resource-pulumi-nodejs missing from $sdk_dir; run: (cd toolchain/pulumi && go mod download)"
install -m 0755 "$sdk_dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$COOP_TOOLCHAIN_BIN/pulumi-resource-pulumi-nodejs"

# The policy pack (policy/) boots through an analyzer plugin, not the language host: the 3.68 host
# answers RunPlugin with "not supported", which the CLI uses for packs whose runtime has a language
# host. policy/PulumiPolicy.yaml therefore names the runtime coop-nodejs, for which the CLI runs
# the program pulumi-analyzer-policy-coop-nodejs from PATH (policy/bin).
install -m 0755 "$COOP_ROOT/policy/bin/pulumi-analyzer-policy-coop-nodejs" "$COOP_TOOLCHAIN_BIN/"

build kamal-proxy "$KAMAL_PROXY_VERSION" kamal-proxy github.com/basecamp/kamal-proxy/cmd/kamal-proxy
build actionlint "$ACTIONLINT_VERSION" actionlint github.com/rhysd/actionlint/cmd/actionlint
# The S3-compatible server that stands in for DigitalOcean Spaces on the local stack and in the
# tests (the co-ops' database backups).
build versitygw "$VERSITYGW_VERSION" versitygw github.com/versity/versitygw/cmd/versitygw

got=$("$COOP_TOOLCHAIN_BIN/pulumi" version)
[[ $got == "v$PULUMI_VERSION" ]] || die "built pulumi reports $got, expected v$PULUMI_VERSION"
say "pulumi $got ready in $COOP_TOOLCHAIN_BIN"

#!/usr/bin/env bash
# Publishes the two images every host pulls, the host agent and the proxy (kamal-proxy at the
# pinned version), built here FROM scratch for each platform and pushed to PREFIX as one
# multi-platform image each; prints their digests. What the images workflow runs
# (.github/workflows/images.yml, PREFIX ghcr.io/OWNER), and what an operator runs by hand.
#
#   scripts/publish-images.sh PREFIX [--platforms LIST] [--out FILE] [--stack-files [DIR]]
#
#   PREFIX        where the images go, e.g. ghcr.io/my-org (docker login to it first)
#   --platforms   comma-separated, default linux/amd64,linux/arm64 (DigitalOcean's droplets are amd64)
#   --out FILE    also write {"coop-agent": REF, "kamal-proxy": REF} there
#   --stack-files set coop:agent and coop:proxy.image in DIR/Pulumi.{dev,uat,prod}.yaml
#                 (DIR defaults to the repository)
#
# Each platform's image is pushed as PREFIX/NAME:TAG-ARCH, then the list of them as PREFIX/NAME:TAG
# (TAG: the agent's is the commit, short; the proxy's its version). A registry on 127.0.0.0/8
# (the tests') is reached over plain HTTP.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/host-images.sh
source "$COOP_ROOT/scripts/host-images.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; }

prefix=${1:-}
[[ -n $prefix && $prefix != -* ]] || {
  usage
  die "PREFIX is required (e.g. ghcr.io/my-org)"
}
shift
platforms=linux/amd64,linux/arm64 out="" stack_dir=""
while (($#)); do
  case $1 in
    --platforms) platforms=${2:?--platforms needs a list} && shift ;;
    --out) out=${2:?--out needs a file} && shift ;;
    --stack-files)
      stack_dir=$COOP_ROOT
      [[ ${2:-} != "" && ${2:-} != -* ]] && stack_dir=$2 && shift
      ;;
    *) usage && die "unknown argument $1" ;;
  esac
  shift
done
[[ $prefix =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$ ]] ||
  die "PREFIX $prefix: must be REGISTRY/OWNER in lower case (e.g. ghcr.io/my-org)"
for p in ${platforms//,/ }; do
  [[ $p =~ ^linux/(amd64|arm64)$ ]] || die "--platforms: $p is not linux/amd64 or linux/arm64"
done
for c in docker go jq; do need "$c" "run scripts/setup.sh (it installs what is missing)"; done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "the Docker engine is not reachable; start dockerd and retry"

insecure=()
[[ $prefix == 127.* || $prefix == localhost[:/]* ]] && insecure=(--insecure)
agent_tag=$(git -C "$COOP_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo local)
proxy_tag=v$KAMAL_PROXY_VERSION
work=$(mktemp -d "${TMPDIR:-/tmp}/publish-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# kamal_proxy_bin ARCH OUT: kamal-proxy at the pinned version, static, for linux/ARCH (the module
# wrapper and go.sum the toolchain builds it from).
kamal_proxy_bin() {
  (cd "$COOP_ROOT/toolchain/kamal-proxy" && CGO_ENABLED=0 GOOS=linux GOARCH=$1 GOFLAGS=-mod=readonly \
    GONOSUMDB=github.com/pulumi,github.com/basecamp GOPROXY=${GOPROXY_OVERRIDE:-https://proxy.golang.org} \
    go build -trimpath -ldflags "-s -w" -o "$2" github.com/basecamp/kamal-proxy/cmd/kamal-proxy) >"$work/go.log" 2>&1 || {
    tail -n 20 "$work/go.log" >&2
    die "building kamal-proxy $KAMAL_PROXY_VERSION for $1 failed (output above)"
  }
}

# push_platform NAME TAG ARCH DOCKERFILE CTX: builds and pushes PREFIX/NAME:TAG-ARCH; prints that ref.
push_platform() {
  local ref=$prefix/$1:$2-$3
  DOCKER_BUILDKIT=0 docker build --force-rm --pull=false --platform "linux/$3" -t "$ref" -f "$4" \
    --build-arg "VERSION=$2" "$5" >"$work/docker.log" 2>&1 || {
    tail -n 20 "$work/docker.log" >&2
    die "docker build of $ref failed (output above)"
  }
  docker push "$ref" >"$work/docker.log" 2>&1 || {
    tail -n 5 "$work/docker.log" >&2
    die "docker push of $ref failed (output above); log in first (docker login ${prefix%%/*})"
  }
  docker rmi "$ref" >/dev/null 2>&1 || true
  printf '%s\n' "$ref"
}

# publish NAME TAG: the multi-platform list of NAME's per-platform refs (read from stdin), pushed;
# prints PREFIX/NAME@sha256:... of the list.
publish() {
  local list=$prefix/$1:$2 refs digest
  mapfile -t refs
  docker manifest rm "$list" >/dev/null 2>&1 || true
  docker manifest create "${insecure[@]}" "$list" "${refs[@]}" >/dev/null ||
    die "docker manifest create $list failed (above)"
  digest=$(docker manifest push --purge "${insecure[@]}" "$list" | grep -o 'sha256:[0-9a-f]\{64\}' | tail -n 1) ||
    die "docker manifest push $list failed (above)"
  [[ -n $digest ]] || die "docker manifest push $list printed no digest"
  printf '%s@%s\n' "$prefix/$1" "$digest"
}

agent_refs=() proxy_refs=()
for p in ${platforms//,/ }; do
  arch=${p#linux/}
  say "building the agent and the proxy for linux/$arch"
  agent_context "$work/agent-$arch" "$arch" || die "go build of the host agent for $arch failed (output above)"
  agent_refs+=("$(push_platform coop-agent "$agent_tag" "$arch" "$COOP_ROOT/host/coop-agent.Dockerfile" "$work/agent-$arch")")
  kamal_proxy_bin "$arch" "$work/kamal-proxy-$arch"
  proxy_context "$work/proxy-$arch" "$arch" "$work/kamal-proxy-$arch" || die "the proxy image's context for $arch could not be made (output above)"
  proxy_refs+=("$(push_platform kamal-proxy "$proxy_tag" "$arch" "$COOP_ROOT/host/kamal-proxy.Dockerfile" "$work/proxy-$arch")")
done
agent=$(printf '%s\n' "${agent_refs[@]}" | publish coop-agent "$agent_tag")
proxy=$(printf '%s\n' "${proxy_refs[@]}" | publish kamal-proxy "$proxy_tag")
echo "coop-agent   $agent"
echo "kamal-proxy  $proxy"
[[ -z $out ]] || jq -n --arg a "$agent" --arg p "$proxy" '{"coop-agent": $a, "kamal-proxy": $p}' >"$out"

# The stack files: the two lines, in place (the rest of each file, its comments included, as it is).
if [[ -n $stack_dir ]]; then
  for s in dev uat prod; do
    f=$stack_dir/Pulumi.$s.yaml
    [[ -f $f ]] || die "$f does not exist"
    sed -i -e "s|^  coop:agent: .*|  coop:agent: $agent|" \
      -e "/^  coop:proxy:\$/,/^  [^ ]/ s|^    image: .*|    image: $proxy|" "$f"
    if ! grep -qxF "  coop:agent: $agent" "$f" || ! grep -qxF "    image: $proxy" "$f"; then
      die "$f: coop:agent or coop:proxy.image is not where this script looks for it (a top-level line '  coop:agent: ...' and '    image: ...' under '  coop:proxy:')"
    fi
    say "set coop:agent and coop:proxy.image in $f"
  done
fi

# shellcheck shell=bash
# The build contexts of the two images every host pulls: the host agent's and the proxy's. Sourced
# by scripts/build-images.sh (the local registry, this machine's architecture) and
# scripts/publish-images.sh (a registry the droplets reach, every architecture). Each function
# fills DIR, prints the go build output on stderr when it fails, and returns non-zero.
#
# The host/ module whose programs go into the images.
HOST_MODULE_DIR=${HOST_MODULE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../host" && pwd)}
# Every file gets this mtime: the same sources give the same layers, hence the same digest.
HOST_IMAGES_MTIME=${HOST_IMAGES_MTIME:-2000-01-01T00:00:00Z}

# host_go_build ARCH OUT PACKAGE: a static, reproducible build of a host/ program for linux/ARCH.
host_go_build() {
  local arch=$1 out=$2 pkg=$3 log
  log=$(mktemp)
  if ! (cd "$HOST_MODULE_DIR" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOTOOLCHAIN=local \
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out" "$pkg") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  touch -d "$HOST_IMAGES_MTIME" "$out"
}

# agent_context DIR ARCH: host/coop-agent.Dockerfile's context: the agent's static binary.
agent_context() {
  mkdir -p "$1"
  host_go_build "$2" "$1/coop-agent" ./cmd/coop-agent
}

# proxy_context DIR ARCH KAMAL_PROXY_BIN: host/kamal-proxy.Dockerfile's context: kamal-proxy (a
# static binary for ARCH), the entrypoint, the empty directories scratch cannot make, the CA bundle.
proxy_context() {
  local ctx=$1 arch=$2 bin=$3
  mkdir -p "$ctx/home" "$ctx/tmp" "$ctx/run"
  chmod 1777 "$ctx/tmp"
  chmod 0700 "$ctx/run"
  install -m 0755 "$bin" "$ctx/kamal-proxy"
  host_go_build "$arch" "$ctx/coop-proxy-start" ./cmd/coop-proxy-start || return 1
  if [[ ! -f /etc/ssl/certs/ca-certificates.crt ]]; then
    echo "/etc/ssl/certs/ca-certificates.crt missing (apt-get install ca-certificates); kamal-proxy needs it for Let's Encrypt" >&2
    return 1
  fi
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  touch -d "$HOST_IMAGES_MTIME" "$ctx/kamal-proxy" "$ctx/home" "$ctx/tmp" "$ctx/run" "$ctx/ca-certificates.crt"
}

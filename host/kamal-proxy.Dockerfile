# kamal-proxy image built FROM scratch around a prebuilt static binary, for
# hosts that cannot reach a public container registry.
#
# Build context (assembled by scripts/build-images.sh):
#   ./kamal-proxy   the static kamal-proxy binary (KAMAL_PROXY_BIN)
#   ./coop-proxy-start  the entrypoint (host/cmd/coop-proxy-start): clears the
#                   umask, then runs kamal-proxy, so that its command socket
#                   can be reached from the host through a mounted directory
#   ./run/          an empty directory: where kamal-proxy puts its command
#                   socket (XDG_RUNTIME_DIR); the host agent mounts its own
#                   directory there (the coop.proxy.socket-dir label says where)
#   ./home/         an empty directory; scratch has no mkdir, so copying it is
#                   how /home/kamal-proxy comes to exist
#   ./tmp/          an empty directory (mode 1777), the temp directory
#   ./ca-certificates.crt  the build machine's CA bundle, for Let's Encrypt
#
# kamal-proxy keeps its state under $HOME/.config/kamal-proxy; mount a volume
# there to keep routes and certificates across restarts. It runs as root here
# (scratch has no /etc/passwd to name another user).
FROM scratch

# The files first: Docker's classic builder, building for another platform (publish-images.sh's
# arm64), refuses a COPY that follows a step which only sets metadata.
COPY kamal-proxy /kamal-proxy
COPY coop-proxy-start /coop-proxy-start
COPY run/ /run/kamal-proxy/
COPY home/ /home/kamal-proxy/
COPY tmp/ /tmp/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

ARG VERSION=unknown
LABEL org.opencontainers.image.title="kamal-proxy" \
      org.opencontainers.image.version="${VERSION}" \
      coop.proxy.socket-dir="/run/kamal-proxy"

# PATH=/ lets `docker exec <container> kamal-proxy deploy ...` (what Kamal
# runs) find the binary by name.
ENV HOME=/home/kamal-proxy \
    PATH=/ \
    XDG_RUNTIME_DIR=/run/kamal-proxy

EXPOSE 80 443
ENTRYPOINT ["/coop-proxy-start", "/kamal-proxy"]
CMD ["run"]

# kamal-proxy image built FROM scratch around a prebuilt static binary, for
# hosts that cannot reach a public container registry.
#
# Build context (assembled by scripts/build-images.sh):
#   ./kamal-proxy   the static kamal-proxy binary (KAMAL_PROXY_BIN)
#   ./home/         an empty directory; scratch has no mkdir, so copying it is
#                   how /home/kamal-proxy comes to exist
#   ./tmp/          an empty directory (mode 1777): kamal-proxy puts its command
#                   socket in the temp directory
#   ./ca-certificates.crt  the build machine's CA bundle, for Let's Encrypt
#
# kamal-proxy keeps its state under $HOME/.config/kamal-proxy; mount a volume
# there to keep routes and certificates across restarts. It runs as root here
# (scratch has no /etc/passwd to name another user).
FROM scratch

ARG VERSION=unknown
LABEL org.opencontainers.image.title="kamal-proxy" \
      org.opencontainers.image.version="${VERSION}"

COPY kamal-proxy /kamal-proxy
COPY home/ /home/kamal-proxy/
COPY tmp/ /tmp/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# PATH=/ lets `docker exec <container> kamal-proxy deploy ...` (what Kamal
# runs) find the binary by name.
ENV HOME=/home/kamal-proxy \
    PATH=/

EXPOSE 80 443
ENTRYPOINT ["/kamal-proxy"]
CMD ["run"]

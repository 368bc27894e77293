# The co-op host agent, FROM scratch around its static binary (CGO_ENABLED=0, -trimpath), so that
# hosts need nothing but Docker to get it. A host installs it next to its co-op files with
#
#   docker run --rm -v ROOT/bin:/out IMAGE install /out/coop-agent-<first 12 hex of the image digest>
#
# (`install` copies the binary atomically, mode 0755, owned by the owner of ROOT/bin), then runs
# ROOT/bin/coop-agent-<hex> on the host itself: the agent reaches the Docker engine through its
# API and reads ROOT from its own path, neither of which it could do from inside this image.
#
# Build context (assembled by scripts/build-images.sh):
#   ./coop-agent   the static binary (go build ./cmd/coop-agent in host/)
FROM scratch

# The files first: Docker's classic builder, building for another platform (publish-images.sh's
# arm64), refuses a COPY that follows a step which only sets metadata.
COPY coop-agent /coop-agent

ARG VERSION=unknown
LABEL org.opencontainers.image.title="coop-agent" \
      org.opencontainers.image.version="${VERSION}"

ENTRYPOINT ["/coop-agent"]
CMD ["version"]

#!/usr/bin/env bash
# Builds the project's image (Dockerfile at the repository root) and loads it into the kind cluster.
# Wheels for the project and its pinned dependencies are built on the host into build/wheels, so the
# docker build needs nothing but Debian's mirror.
. "$(dirname "$0")/lib.sh"
IMAGE="${QUORUMDB_IMAGE:-quorumdb.local/quorumdb:dev}"
BASE_IMAGE="${BASE_IMAGE:-quorumdb.local/debian:$DEBIAN_SUITE}"
CLUSTER_NAME="${CLUSTER_NAME:-quorumdb}"
PY="${PYTHON:-python3}"

wheels() {
  rm -rf "$REPO_ROOT/build/wheels"; mkdir -p "$REPO_ROOT/build/wheels"
  "$PY" -m pip wheel --quiet --wheel-dir "$REPO_ROOT/build/wheels" "$REPO_ROOT"
}
image() {
  docker build -t "$IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" "$REPO_ROOT"
  # Each rebuild leaves the previous image untagged (its own layers: ~135 MB a time on a developer's disk).
  docker image prune -f --filter label=io.quorumdb.project=quorumdb >/dev/null
}
step project-wheels wheels
step project-image image
if [ "${1:-}" != "--no-load" ]; then
  # Workers only: nothing of ours runs on the control plane, and each node import costs ~25 s here.
  load() {
    local workers; workers=$(kind get nodes --name "$CLUSTER_NAME" | grep -v control-plane | paste -sd, -)
    kind load docker-image "$IMAGE" --name "$CLUSTER_NAME" --nodes "$workers"
  }
  step project-image-load load
fi
log "image $IMAGE built${1:+ ($1)}"

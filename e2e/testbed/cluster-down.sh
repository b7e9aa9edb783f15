#!/usr/bin/env bash
# `make cluster-down`: deletes the kind cluster and nothing else (built images and binaries stay cached).
. "$(dirname "$0")/lib.sh"
CLUSTER_NAME="${CLUSTER_NAME:-quorumdb}"
export KUBECONFIG="${KUBECONFIG:-$CACHE_DIR/kubeconfig}"
if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  kind delete cluster --name "$CLUSTER_NAME"
else
  log "no cluster $CLUSTER_NAME"
fi

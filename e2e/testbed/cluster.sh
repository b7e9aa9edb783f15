#!/usr/bin/env bash
# `make cluster`: from nothing to a ready three-zone kind cluster. Every step is cached, so a second run
# only creates the cluster. With KIND_NODE_IMAGE set (e.g. kindest/node:v1.34.0 where a registry is
# reachable) the local node-image build is skipped and that image is used unchanged.
. "$(dirname "$0")/lib.sh"
T0=$SECONDS
CLUSTER_NAME="${CLUSTER_NAME:-quorumdb}"
export KUBECONFIG="${KUBECONFIG:-$CACHE_DIR/kubeconfig}"

"$TESTBED_DIR/host-prep.sh"
if [ -z "${KIND_NODE_IMAGE:-}" ]; then
  "$TESTBED_DIR/build-bins.sh"
  "$TESTBED_DIR/base-image.sh"
  "$TESTBED_DIR/node-image.sh"
  NODE_IMAGE="quorumdb.local/kind-node:$K8S_VERSION"
else
  "$TESTBED_DIR/build-bins.sh" kind
  "$TESTBED_DIR/build-bins.sh" kubernetes
  "$TESTBED_DIR/build-bins.sh" helm
  ln -sf "$BIN_CACHE/kind-$KIND_VERSION/kind" "$TOOLS_DIR/kind"
  ln -sf "$BIN_CACHE/kubernetes-$K8S_VERSION/kubectl" "$TOOLS_DIR/kubectl"
  ln -sf "$BIN_CACHE/helm-$HELM_VERSION/helm" "$TOOLS_DIR/helm"
  NODE_IMAGE="$KIND_NODE_IMAGE"
fi

healthy() { kind export kubeconfig --name "$CLUSTER_NAME" >/dev/null 2>&1 && kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  log "cluster $CLUSTER_NAME exists; checking it"
  # After a host restart the node containers are stopped and their addresses may change: a cluster that
  # does not answer within a minute is recreated rather than nursed back.
  docker start $(kind get nodes --name "$CLUSTER_NAME") >/dev/null 2>&1 || true
  for _ in $(seq 12); do healthy && break; sleep 5; done
  if ! healthy; then
    log "cluster $CLUSTER_NAME is not healthy: recreating it"
    kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
  fi
  # A node image rebuilt since (its manifests or components changed) must not be ignored by a reused cluster.
  running=$(docker inspect -f '{{.Image}}' "$CLUSTER_NAME-control-plane" 2>/dev/null || true)
  wanted=$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE" 2>/dev/null || true)
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" && [ -n "$wanted" ] && [ "$running" != "$wanted" ]; then
    log "cluster $CLUSTER_NAME runs an older node image: recreating it"
    kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
  fi
fi
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  create() { kind create cluster --name "$CLUSTER_NAME" --image "$NODE_IMAGE" --config "$TESTBED_DIR/kind-config.yaml" --wait 0s; }
  step "kind-create" create
fi

wait_ready() {
  local what="$1" timeout="$2"; shift 2
  if ! "$@" --timeout="${timeout}s" >"$LOG_DIR/wait-$what.log" 2>&1; then
    kubectl get nodes -o wide >&2 || true
    kubectl get pods -A -o wide >&2 || true
    kind export logs "$LOG_DIR/kind-logs" --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
    die "$what not ready within ${timeout}s; node and pod state above; cluster logs: $LOG_DIR/kind-logs"
  fi
}
wait_ready nodes 240 kubectl wait --for=condition=Ready nodes --all
wait_ready kube-router 180 kubectl -n kube-system rollout status ds/kube-router
wait_ready coredns 180 kubectl -n kube-system rollout status deploy/coredns
wait_ready local-path 180 kubectl -n local-path-storage rollout status deploy/local-path-provisioner
log "cluster $CLUSTER_NAME ready in $((SECONDS - T0))s (KUBECONFIG=$KUBECONFIG)"
"$TESTBED_DIR/minio.sh"

#!/usr/bin/env bash
# The test bed's S3 server: builds the MinIO image from the binary build-bins.sh made (cached by version),
# loads it onto the control-plane node, applies minio/minio.yaml, waits for it and creates the bucket
# "quorumdb" (with the S3 API, from the host through a port-forward). Idempotent; `make cluster` runs it.
#   minio.sh secret NAMESPACE   also writes the Secret "minio-credentials" (accessKeyId, secretAccessKey)
#                               that an AuroraCluster's spec.backup.objectStore.credentialsSecret can name.
. "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$CACHE_DIR/kubeconfig}"
CLUSTER_NAME="${CLUSTER_NAME:-quorumdb}"
BASE_IMAGE="${BASE_IMAGE:-quorumdb.local/debian:$DEBIAN_SUITE}"
MINIO_IMAGE="quorumdb.local/minio:${MINIO_VERSION##*-}"
NS=quorumdb-minio

if [ "${1:-}" = secret ]; then
  ns="${2:?namespace}"
  user=$(kubectl -n "$NS" get secret minio-root -o jsonpath='{.data.accessKeyId}' | base64 -d)
  pass=$(kubectl -n "$NS" get secret minio-root -o jsonpath='{.data.secretAccessKey}' | base64 -d)
  kubectl -n "$ns" create secret generic minio-credentials --from-literal=accessKeyId="$user" \
    --from-literal=secretAccessKey="$pass" --dry-run=client -o yaml | kubectl -n "$ns" apply -f - >/dev/null
  exit 0
fi

build() {
  local ctx; ctx=$(mktemp -d)
  cp "$BIN_CACHE/minio-$MINIO_VERSION/minio" "$TESTBED_DIR/minio/Dockerfile" "$ctx/"
  docker build -t "$MINIO_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" "$ctx"
  rm -rf "$ctx"
}
docker image inspect "$MINIO_IMAGE" >/dev/null 2>&1 || step minio-image build
load() { kind load docker-image "$MINIO_IMAGE" --name "$CLUSTER_NAME" --nodes "$CLUSTER_NAME-control-plane"; }
docker exec "$CLUSTER_NAME-control-plane" crictl inspecti "$MINIO_IMAGE" >/dev/null 2>&1 || step minio-image-load load
sed "s|MINIO_IMAGE|$MINIO_IMAGE|" "$TESTBED_DIR/minio/minio.yaml" | kubectl apply -f - >/dev/null
kubectl -n "$NS" rollout status deploy/minio --timeout=180s >"$LOG_DIR/wait-minio.log" 2>&1 \
  || { kubectl -n "$NS" get pods -o wide >&2; die "MinIO not ready within 180s; see $LOG_DIR/wait-minio.log"; }

bucket() {
  local port=19000 pf=""
  trap 'kill $pf 2>/dev/null || true' RETURN
  local user pass
  user=$(kubectl -n "$NS" get secret minio-root -o jsonpath='{.data.accessKeyId}' | base64 -d)
  pass=$(kubectl -n "$NS" get secret minio-root -o jsonpath='{.data.secretAccessKey}' | base64 -d)
  local code=""
  for _ in $(seq 60); do
    # A port-forward exits for good on its first failed connection (MinIO restarting with its node after
    # a host reboot answered "connection refused" although the Deployment was rolled out): start another.
    if [ -z "$pf" ] || ! kill -0 "$pf" 2>/dev/null; then
      kubectl -n "$NS" port-forward svc/minio "$port:9000" >>"$LOG_DIR/minio-port-forward.log" 2>&1 &
      pf=$!
      sleep 1
    fi
    # PUT bucket, signed with SigV4 by curl itself: 200 created, 409 already ours.
    code=$(curl -s -o "$LOG_DIR/minio-bucket.out" -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$user:$pass" "http://127.0.0.1:$port/quorumdb" || true)
    case "$code" in 200|409) echo "bucket quorumdb ready ($code)"; return 0 ;; esac
    sleep 0.5
  done
  cat "$LOG_DIR/minio-bucket.out" >&2 || true
  echo "creating bucket quorumdb failed: HTTP ${code:-none}" >&2; return 1
}
step minio-bucket bucket
log "MinIO ready: http://minio.$NS.svc:9000, bucket quorumdb (credentials: minio.sh secret <namespace>)"

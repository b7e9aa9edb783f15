#!/usr/bin/env bash
# `make demo`: a fresh machine to a working AuroraCluster. Sets up the test bed, builds and loads the image,
# installs the operator with Helm, applies docs/examples/aurora-demo.yaml, waits for phase Ready (showing
# progress), then runs a workload pod: writes through the cluster endpoint, reads them back through the
# reader endpoint, and shows that the reader endpoint refuses writes.
. "$(dirname "$0")/testbed/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$CACHE_DIR/kubeconfig}"
IMAGE="${QUORUMDB_IMAGE:-quorumdb.local/quorumdb:dev}"
NS="${DEMO_NAMESPACE:-demo}"
NAME=demo

"$TESTBED_DIR/cluster.sh"
"$TESTBED_DIR/project-image.sh"

log "installing the operator with Helm"
# Helm never upgrades a chart's CRDs after the first install: apply the current ones first.
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/charts/quorumdb/crds" >/dev/null
helm upgrade --install quorumdb "$REPO_ROOT/charts/quorumdb" --namespace quorumdb-system --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --wait --timeout 180s

kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"
"$TESTBED_DIR/minio.sh" secret "$NS"   # the example backs up to the test bed's MinIO
T0=$SECONDS
kubectl -n "$NS" apply -f "$REPO_ROOT/docs/examples/aurora-demo.yaml"
log "waiting for AuroraCluster $NS/$NAME to become Ready"
while :; do
  phase=$(kubectl -n "$NS" get auroracluster "$NAME" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [ "$phase" = Ready ] && break
  if (( SECONDS - T0 > 420 )); then
    kubectl -n "$NS" get auroracluster,pods -o wide >&2
    kubectl -n "$NS" get events --sort-by=.lastTimestamp | tail -30 >&2
    die "AuroraCluster $NAME not Ready after 420s (phase '${phase:-none}'); operator log: kubectl -n quorumdb-system logs deploy/quorumdb-quorumdb-operator"
  fi
  printf '  %3ss  phase=%-12s pods ready: %s\n' "$((SECONDS - T0))" "${phase:-<none>}" \
    "$(kubectl -n "$NS" get pods -l app.kubernetes.io/instance="$NAME" --no-headers 2>/dev/null \
       | awk '{split($2, r, "/"); n++; if (r[1] == r[2]) ok++} END {printf "%d/%d", ok, n}')"
  sleep 5
done
log "AuroraCluster $NAME Ready in $((SECONDS - T0))s"
kubectl -n "$NS" get auroracluster "$NAME" -o wide
kubectl -n "$NS" get pods -o wide -L quorumdb.io/role

log "running the demo workload"
kubectl -n "$NS" delete pod demo-workload --ignore-not-found --wait=true >/dev/null
kubectl -n "$NS" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: demo-workload}
spec:
  restartPolicy: Never
  containers:
    - name: psql
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      env:
        - {name: PGUSER, valueFrom: {secretKeyRef: {name: $NAME-app, key: username}}}
        - {name: PGPASSWORD, valueFrom: {secretKeyRef: {name: $NAME-app, key: password}}}
        - {name: PGDATABASE, valueFrom: {secretKeyRef: {name: $NAME-app, key: dbname}}}
      command:
        - bash
        - -ec
        - |
          W="host=$NAME"; R="host=$NAME-ro"
          echo "== writer endpoint ($NAME): server is \$(psql "\$W" -Atc 'select inet_server_addr()'), in recovery: \$(psql "\$W" -Atc 'select pg_is_in_recovery()')"
          psql "\$W" -qc "create table if not exists demo_orders (id bigserial primary key, item text, at timestamptz default now())"
          for i in \$(seq 1 200); do echo "insert into demo_orders(item) values ('order-\$i');"; done | psql "\$W" -q
          n=\$(psql "\$W" -Atc "select count(*) from demo_orders"); echo "wrote 200 rows; writer has \$n"
          for t in \$(seq 1 50); do r=\$(psql "\$R" -Atc "select count(*) from demo_orders" 2>/dev/null || echo 0); [ "\$r" = "\$n" ] && break; sleep 0.2; done
          echo "== reader endpoint ($NAME-ro): server is \$(psql "\$R" -Atc 'select inet_server_addr()'), in recovery: \$(psql "\$R" -Atc 'select pg_is_in_recovery()'), sees \$r rows"
          if psql "\$R" -qc "insert into demo_orders(item) values ('via-reader')" 2>/tmp/err; then echo "UNEXPECTED: write accepted by reader"; exit 1; fi
          echo "write through reader endpoint refused: \$(head -1 /tmp/err)"
          [ "\$r" = "\$n" ]
YAML
kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/demo-workload --timeout=180s >/dev/null || true
kubectl -n "$NS" logs demo-workload
[ "$(kubectl -n "$NS" get pod demo-workload -o jsonpath='{.status.phase}')" = Succeeded ] || die "demo workload failed"
log "demo done: kubectl -n $NS get auroracluster $NAME; psql via 'kubectl -n $NS port-forward svc/$NAME 5432'"

#!/usr/bin/env bash
# Builds the kind node image on this machine: component images (control plane, etcd, CoreDNS, pause,
# kube-proxy, kube-router, local-path-provisioner) from locally built binaries, a node image from the
# local Debian base, then preloads the component images into the node's containerd (what
# `kind build node-image` does, minus the registry fetches that make it unusable offline).
# The result is tagged $NODE_IMAGE and rebuilt only when an input changes (content hash in a label).
. "$(dirname "$0")/lib.sh"
BASE_IMAGE="${BASE_IMAGE:-quorumdb.local/debian:$DEBIAN_SUITE}"
NODE_IMAGE="${NODE_IMAGE:-quorumdb.local/kind-node:$K8S_VERSION}"
KIND_MOD="$(go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION"
B="$BIN_CACHE"
K8S="$B/kubernetes-$K8S_VERSION"
CTX="$CACHE_DIR/node-context"

inputs_hash() {
  { cat "$TESTBED_DIR/versions.env" "$TESTBED_DIR/node/Dockerfile" "$TESTBED_DIR/node/containerd-config.toml" \
        "$TESTBED_DIR/node/manifests/"* "$TESTBED_DIR/files/runc-wrapper" "$TESTBED_DIR/node-image.sh";
    docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-16
}
HASH=$(inputs_hash)
if [ "$(docker image inspect -f '{{index .Config.Labels "quorumdb.inputs"}}' "$NODE_IMAGE" 2>/dev/null)" = "$HASH" ]; then
  log "node image $NODE_IMAGE is up to date"; exit 0
fi
[ -d "$KIND_MOD" ] || die "kind module sources missing at $KIND_MOD: run build-bins.sh"

# image NAME:TAG DOCKERFILE-BODY [FILES...]: build a small image from the given files.
image() {
  local ref="$1" body="$2"; shift 2
  local d; d=$(mktemp -d "$CACHE_DIR/img.XXXX")
  for f in "$@"; do cp "$f" "$d/"; done
  printf '%s\n' "$body" >"$d/Dockerfile"
  docker build -q -t "$ref" "$d" >/dev/null
  rm -rf "$d"
}

component_images() {
  local scratch='FROM scratch
ENV PATH=/usr/local/bin:/usr/bin:/bin'
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    image "registry.k8s.io/$c:$K8S_VERSION" "$scratch
COPY $c /usr/local/bin/$c" "$K8S/$c"
  done
  image "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$scratch
COPY etcd /usr/local/bin/etcd" "$B/etcd-$ETCD_VERSION/etcd"
  image "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$scratch
COPY coredns /coredns
ENTRYPOINT [\"/coredns\"]" "$B/coredns-$COREDNS_VERSION/coredns"
  image "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$scratch
COPY pause /pause
ENTRYPOINT [\"/pause\"]" "$B/pause-$PAUSE_IMAGE_TAG/pause"
  image "quorumdb.local/local-path-provisioner:$LOCAL_PATH_VERSION" "$scratch
COPY local-path-provisioner /usr/local/bin/local-path-provisioner" "$B/localpath-$LOCAL_PATH_VERSION/local-path-provisioner"
  # Network components need iptables/ipset userspace, nft backend like the node's.
  image "quorumdb.local/netbase:$DEBIAN_SUITE" "FROM $BASE_IMAGE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables ipset iproute2 conntrack kmod nftables && rm -rf /var/lib/apt/lists/*"
  # What the test bed's own tests run in pods: a shell, python3 (http.server as a tiny server) and getent.
  image "quorumdb.local/testbed-tools:$DEBIAN_SUITE" "FROM $BASE_IMAGE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*"
  image "registry.k8s.io/kube-proxy:$K8S_VERSION" "FROM quorumdb.local/netbase:$DEBIAN_SUITE
COPY kube-proxy /usr/local/bin/kube-proxy" "$K8S/kube-proxy"
  image "quorumdb.local/kube-router:$KUBE_ROUTER_VERSION" "FROM quorumdb.local/netbase:$DEBIAN_SUITE
COPY kube-router /usr/local/bin/kube-router
ENTRYPOINT [\"/usr/local/bin/kube-router\"]" "$B/kuberouter-$KUBE_ROUTER_VERSION/kube-router"
}

PRELOAD=(
  "registry.k8s.io/kube-apiserver:$K8S_VERSION" "registry.k8s.io/kube-controller-manager:$K8S_VERSION"
  "registry.k8s.io/kube-scheduler:$K8S_VERSION" "registry.k8s.io/kube-proxy:$K8S_VERSION"
  "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
  "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "quorumdb.local/kube-router:$KUBE_ROUTER_VERSION"
  "quorumdb.local/local-path-provisioner:$LOCAL_PATH_VERSION" "$BASE_IMAGE"
  "quorumdb.local/testbed-tools:$DEBIAN_SUITE"
)

node_context() {
  rm -rf "$CTX"; mkdir -p "$CTX/rootfs"
  local r="$CTX/rootfs"
  cp "$TESTBED_DIR/node/Dockerfile" "$CTX/"
  cp -a "$KIND_MOD/images/base/files/." "$r/"
  chmod -R u+w "$r"
  rm -f "$r/etc/systemd/system/containerd-fuse-overlayfs.service"
  mkdir -p "$r/usr/bin" "$r/usr/local/bin" "$r/usr/local/sbin" "$r/opt/cni/bin" "$r/kind/manifests" "$r/usr/local/libexec/quorumdb"
  cp "$K8S/kubeadm" "$K8S/kubelet" "$K8S/kubectl" "$r/usr/bin/"
  cp "$B/containerd-$CONTAINERD_VERSION/"{containerd,ctr,containerd-shim-runc-v2} "$r/usr/local/bin/"
  cp "$B/runc-$RUNC_VERSION/runc" "$r/usr/local/sbin/runc"
  cp "$B/crictl-$CRI_TOOLS_VERSION/crictl" "$r/usr/local/bin/"
  cp "$B/cni-$CNI_PLUGINS_VERSION/"{host-local,loopback,ptp,bridge,portmap} "$r/opt/cni/bin/"
  # Inside the node, privileged pods hit the same missing capability as the node itself.
  local runc=/usr/local/sbin/runc restrict=false
  if (( ! ((16#$(awk '/^CapBnd/ {print $2}' /proc/self/status) >> 24) & 1) )); then
    runc=/usr/local/libexec/quorumdb/runc-wrapper; restrict=true
  fi
  sed "s|@REAL_RUNC@|/usr/local/sbin/runc|" "$TESTBED_DIR/files/runc-wrapper" >"$r/usr/local/libexec/quorumdb/runc-wrapper"
  sed -e "s|@RUNC@|$runc|" -e "s|@PAUSE_TAG@|$PAUSE_IMAGE_TAG|" -e "s|@RESTRICT_OOM@|$restrict|" \
    "$TESTBED_DIR/node/containerd-config.toml" >"$r/etc/containerd/config.toml"
  sed "s|@KUBE_ROUTER_VERSION@|$KUBE_ROUTER_VERSION|g" "$TESTBED_DIR/node/manifests/default-cni.yaml" >"$r/kind/manifests/default-cni.yaml"
  cp "$TESTBED_DIR/node/manifests/default-storage.yaml" "$r/kind/manifests/"
  echo "$K8S_VERSION" >"$r/kind/version"
}

build_node() {
  docker build -t "$NODE_IMAGE-unloaded" --build-arg "BASE_IMAGE=$BASE_IMAGE" "$CTX"
}

# Preload: run the node without systemd, start containerd by hand, import the images, commit.
preload() {
  local name="quorumdb-node-preload" tars="$CACHE_DIR/preload"
  rm -rf "$tars"; mkdir -p "$tars"
  docker save "${PRELOAD[@]}" -o "$tars/images.tar"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --privileged --entrypoint sleep -v "$tars:/preload:ro" "$NODE_IMAGE-unloaded" infinity
  docker exec "$name" sh -c 'containerd >/var/log/containerd-preload.log 2>&1 &
    for i in $(seq 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
    ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests /preload/images.tar && ctr -n k8s.io images ls -q
    pkill containerd; for i in $(seq 50); do pgrep containerd >/dev/null || break; sleep 0.2; done
    rm -f /var/log/containerd-preload.log'
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'ENV container=docker' \
    --change 'CMD []' "$name" "$NODE_IMAGE-preloaded"
  docker rm -f "$name" >/dev/null
  # Docker 20.10's commit cannot set STOPSIGNAL (systemd needs SIGRTMIN+3): a two-line build does.
  image "$NODE_IMAGE" "FROM $NODE_IMAGE-preloaded
STOPSIGNAL SIGRTMIN+3
LABEL quorumdb.inputs=$HASH"
  docker rmi "$NODE_IMAGE-preloaded" "$NODE_IMAGE-unloaded" >/dev/null 2>&1 || true
  rm -rf "$tars"
}

step node-component-images component_images
step node-context node_context
step node-image-build build_node
step node-image-preload preload
log "node image $NODE_IMAGE ready"

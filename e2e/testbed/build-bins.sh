#!/usr/bin/env bash
# Builds every binary the test bed needs from the Go module proxy, at the versions pinned in versions.env.
# Each component lands in $BIN_CACHE/<name>-<version>/ and is rebuilt only when its version changes.
# Nothing here fetches prebuilt binaries: only Go modules (source) are downloaded.
. "$(dirname "$0")/lib.sh"
need go "Go toolchain: install Go >= 1.24"

LDFLAGS_STRIP="-s -w"
GOBUILD=(go build -trimpath)

# built NAME VERSION: true when the component is already cached.
built() { [ -f "$BIN_CACHE/$1-$2/.done" ]; }
mark() { touch "$BIN_CACHE/$1-$2/.done"; }

# wrapper_module DIR REQUIREMENTS...: a throw-away module that requires the given modules, so that
# modules whose go.mod carries replace directives (Kubernetes, etcd) can be built.
wrapper_module() {
  local dir="$1"; shift
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && go mod init aurora.local/build >/dev/null 2>&1)
}

build_k8s() {
  local v="$K8S_VERSION" out="$BIN_CACHE/kubernetes-$K8S_VERSION"
  built kubernetes "$v" && return 0
  local src="$CACHE_DIR/src/kubernetes-$v" minor staging
  minor="${v#v1.}"; minor="${minor%%.*}"
  staging="v0.${v#v1.}"
  wrapper_module "$src"
  cd "$src"
  # Copy k8s.io/kubernetes' staging replaces as published versions of the same release.
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
           cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
           cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
           kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
           mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
    go mod edit -replace "k8s.io/$m=k8s.io/$m@$staging"
  done
  local cmds=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
  local pkgs=(); for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  go get "k8s.io/kubernetes@$v"
  for p in "${pkgs[@]}"; do go get "$p@$v"; done
  local pkgv="k8s.io/component-base/version" cgv="k8s.io/client-go/pkg/version" date
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="$LDFLAGS_STRIP"
  for pv in "$pkgv" "$cgv"; do
    ld+=" -X $pv.gitVersion=$v -X $pv.gitMajor=1 -X $pv.gitMinor=$minor -X $pv.gitTreeState=clean -X $pv.buildDate=$date -X $pv.gitCommit=0000000000000000000000000000000000000000"
  done
  mkdir -p "$out"
  CGO_ENABLED=0 "${GOBUILD[@]}" -tags "providerless,dockerless" -ldflags "$ld" -o "$out/" "${pkgs[@]}"
  "$out/kubeadm" version -o short | grep -qx "$v" || { echo "kubeadm reports wrong version"; exit 1; }
  mark kubernetes "$v"
}

build_etcd() {
  local v="$ETCD_VERSION" out="$BIN_CACHE/etcd-$ETCD_VERSION"
  built etcd "$v" && return 0
  local src="$CACHE_DIR/src/etcd-$v"
  wrapper_module "$src"; cd "$src"
  for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do go mod edit -replace "go.etcd.io/etcd/$m=go.etcd.io/etcd/$m@$v"; done
  cat > main.go <<'GO'
// etcd's server entry point, built from go.etcd.io/etcd/server/v3 (the root module carries replaces).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$v"
  go mod tidy
  mkdir -p "$out"
  CGO_ENABLED=0 "${GOBUILD[@]}" -ldflags "$LDFLAGS_STRIP" -o "$out/etcd" .
  mark etcd "$v"
}

# go_install NAME VERSION PKG...: modules without replace directives build with `go install`.
go_install() {
  local name="$1" v="$2"; shift 2
  built "$name" "$v" && return 0
  local out="$BIN_CACHE/$name-$v"; mkdir -p "$out"
  for p in "$@"; do CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "$LDFLAGS_STRIP" "$p@$v"; done
  mark "$name" "$v"
}

build_containerd() {
  local v="$CONTAINERD_VERSION" m="github.com/containerd/containerd/v2"
  built containerd "$v" && return 0
  # containerd's go.mod has exclude directives, which `go install mod@version` refuses: use a wrapper module.
  local src="$CACHE_DIR/src/containerd-$v" out="$BIN_CACHE/containerd-$v"
  wrapper_module "$src"; cd "$src"
  local pkgs=("$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2")
  go get "$m@$v"; for p in "${pkgs[@]}"; do go get "$p@$v"; done
  mkdir -p "$out"
  CGO_ENABLED=0 "${GOBUILD[@]}" -tags "no_btrfs,no_devmapper,no_zfs" \
    -ldflags "$LDFLAGS_STRIP -X $m/version.Version=$v -X $m/version.Package=$m" -o "$out/" "${pkgs[@]}"
  mark containerd "$v"
}

build_runc() {
  local v="$RUNC_VERSION"
  built runc "$v" && return 0
  need gcc "a C compiler for runc's cgo (apt-get install gcc)"
  [ -f /usr/include/seccomp.h ] || die "runc needs libseccomp headers: apt-get install libseccomp-dev"
  local out="$BIN_CACHE/runc-$v"; mkdir -p "$out"
  # runc needs cgo and libseccomp; the node image ships Debian's libseccomp2 to match.
  GOBIN="$out" CGO_ENABLED=1 go install -trimpath -tags seccomp \
    -ldflags "$LDFLAGS_STRIP -X main.version=${v#v}" "github.com/opencontainers/runc@$v"
  mark runc "$v"
}

build_pause() {
  local v="$PAUSE_IMAGE_TAG" out="$BIN_CACHE/pause-$PAUSE_IMAGE_TAG"
  built pause "$v" && return 0
  mkdir -p "$out"; cd "$out"
  CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS_STRIP" -o "$out/pause" "$TESTBED_DIR/pause/pause.go"
  mark pause "$v"
}

what="${1:-all}"
run() { case "$what" in all|"$1") step "build-$1" "build_$1_fn" ;; esac; }
build_kubernetes_fn() { build_k8s; }
build_etcd_fn() { build_etcd; }
build_containerd_fn() { build_containerd; }
build_pause_fn() { build_pause; }
build_runc_fn() { build_runc; }
build_kind_fn() { go_install kind "$KIND_VERSION" sigs.k8s.io/kind; }
build_minio_fn() { go_install minio "$MINIO_VERSION" github.com/minio/minio; }
build_helm_fn() { go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm; }
build_crictl_fn() { go_install crictl "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl; }
build_cni_fn() { go_install cni "$CNI_PLUGINS_VERSION" github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/main/loopback github.com/containernetworking/plugins/plugins/main/ptp \
  github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/meta/portmap; }
build_coredns_fn() { go_install coredns "$COREDNS_VERSION" github.com/coredns/coredns; }
build_localpath_fn() { go_install localpath "$LOCAL_PATH_VERSION" github.com/rancher/local-path-provisioner; }
build_kuberouter_fn() { go_install kuberouter "$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router; }

for c in kind pause containerd runc crictl cni kubernetes etcd coredns localpath kuberouter helm minio; do
  run "$c"
done
# Host tools: kind, kubectl and helm on PATH for the scripts and tests.
if [ "$what" = all ]; then
  ln -sf "$BIN_CACHE/kind-$KIND_VERSION/kind" "$TOOLS_DIR/kind"
  ln -sf "$BIN_CACHE/kubernetes-$K8S_VERSION/kubectl" "$TOOLS_DIR/kubectl"
  ln -sf "$BIN_CACHE/helm-$HELM_VERSION/helm" "$TOOLS_DIR/helm"
fi

#!/usr/bin/env bash
# Build the lab's upstream control plane from the versions pinned in the go.mod files next to this script:
# kube-apiserver, kube-controller-manager and kube-scheduler (kubernetes/), etcd and etcdctl (etcd/), kwok (kwok/).
# kwok's stage definitions, Istio's networking CRDs and the Gateway API standard-channel CRDs are taken from the same
# pinned modules. Everything comes through the Go module proxy; Go's module and build caches make a rebuild with
# nothing changed take seconds.
# Usage: lab/controlplane/build.sh [OUTPUT_DIR]   (default: build/controlplane)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../../build/controlplane}" && cd "${1:-$here/../../build/controlplane}" && pwd)
mkdir -p "$out/bin" "$out/crds/istio" "$out/crds/gateway-api"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

kubernetes_version=$(cd "$here/kubernetes" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kubernetes_version" | cut -d. -f2)
# A fixed build date keeps the link step reproducible, so an unchanged rebuild is a cache hit.
stamp="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp="$stamp -X $package.gitVersion=$kubernetes_version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
  stamp="$stamp -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
done

build() {  # module directory, output name, package, link flags
  local started=$SECONDS
  (cd "$here/$1" && go build -ldflags="$4" -o "$out/bin/$2" "$3")
  echo "built $2 in $((SECONDS - started)) s"
}
for command in kube-apiserver kube-controller-manager kube-scheduler; do
  build kubernetes "$command" "k8s.io/kubernetes/cmd/$command" "$stamp"
done
build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
build etcd etcdctl go.etcd.io/etcd/etcdctl/v3 "-s -w"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-s -w"

module_dir() { (cd "$here/$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2"); }
kwok_dir=$(module_dir kwok sigs.k8s.io/kwok)
: > "$out/kwok-stages.yaml"
for stage in node/fast node/heartbeat-with-lease pod/fast; do
  for file in "$kwok_dir/kustomize/stage/$stage"/*.yaml; do
    case $(basename "$file") in kustomization.yaml) continue ;; esac
    { echo "---"; cat "$file"; } >> "$out/kwok-stages.yaml"
  done
done
istio_dir=$(module_dir crds istio.io/api)
install -m 0644 "$istio_dir/kubernetes/customresourcedefinitions.gen.yaml" "$out/crds/istio/"
gateway_dir=$(module_dir crds sigs.k8s.io/gateway-api)
install -m 0644 "$gateway_dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$out/crds/gateway-api/"
# The safe-upgrades ValidatingAdmissionPolicy in that folder is not a CRD.
rm -f "$out/crds/gateway-api/gateway.networking.k8s.io_vap_safeupgrades.yaml"
"$out/bin/kube-apiserver" --version
"$out/bin/etcd" --version | head -1

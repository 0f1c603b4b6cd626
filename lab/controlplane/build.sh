#!/usr/bin/env bash
# Build the lab's upstream control plane from the versions pinned in the go.mod files next to this script:
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok (kubernetes/), and etcd (etcd/).
# kwok shares the Kubernetes module, so it is compiled against the same k8s.io/* v0.37.2 packages instead of its own
# v0.36.1 copies. etcd keeps a module of its own: merged, it would move the control plane's grpc, etcd client,
# OpenTelemetry and golang.org/x modules off the versions Kubernetes v1.37.2 is released with, to save under a
# minute. kwok's stage definitions, Istio's networking CRDs and the Gateway API standard-channel CRDs are taken from
# the same pinned modules. Everything comes through the Go module proxy; Go's module and build caches make a rebuild
# with nothing changed take seconds.
# Usage: lab/controlplane/build.sh [OUTPUT_DIR]   (default: build/controlplane)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../../build/controlplane}" && cd "${1:-$here/../../build/controlplane}" && pwd)
mkdir -p "$out/bin" "$out/crds/istio" "$out/crds/gateway-api"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }
kubernetes_version=$(module_version kubernetes k8s.io/kubernetes)
kwok_version=$(module_version kubernetes sigs.k8s.io/kwok)
etcd_version=$(module_version etcd go.etcd.io/etcd/server/v3)
minor=$(echo "$kubernetes_version" | cut -d. -f2)
# A fixed build date keeps the link step reproducible, so an unchanged rebuild is a cache hit. kwok takes its own
# version from sigs.k8s.io/kwok/pkg/consts, not from these variables.
stamp="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp="$stamp -X $package.gitVersion=$kubernetes_version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
  stamp="$stamp -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
done

echo "Building kube-apiserver, kube-controller-manager, kube-scheduler $kubernetes_version, kwok $kwok_version" \
  "and etcd $etcd_version into $out/bin."
echo "With empty Go caches this takes about 16 minutes on 2 cores; with nothing changed, seconds."
started=$SECONDS
# One go command for all four, so compiles keep both cores busy and the links overlap. etcd comes after it and finds
# the standard library already compiled.
(cd "$here/kubernetes" && go build -ldflags="$stamp" -o "$out/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler sigs.k8s.io/kwok/cmd/kwok)
(cd "$here/etcd" && go build -ldflags="-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3)
echo "built in $((SECONDS - started)) s"

module_dir() { (cd "$here/$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2"); }
kwok_dir=$(module_dir kubernetes sigs.k8s.io/kwok)
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
"$out/bin/etcd" --version | sed -n 1p  # sed reads to the end: no SIGPIPE under pipefail
"$out/bin/kwok" --version

//go:build tools

// Package tools pins the upstream main packages built into ./bin. kwok shares this module, so it is built
// against the same k8s.io/* v0.37.2 packages as the control plane instead of compiling its own v0.36.1 copies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)

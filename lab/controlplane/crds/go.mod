module progressive.delivery/lab/controlplane/crds

go 1.26.0

// Only the CRD manifests these modules publish are used; nothing is compiled.
require (
	istio.io/api v1.32.0
	sigs.k8s.io/gateway-api v1.6.3
)

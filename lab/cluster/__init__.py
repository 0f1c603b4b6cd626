"""The lab on a real Kubernetes control plane.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built
from pinned upstream sources by `make controlplane`, run as child processes
of the lab. The mesh reads the cluster through list and watch, as Istio does.
"""

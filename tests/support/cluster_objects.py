"""What tests read back from the cluster, minus what Kubernetes itself puts into every namespace."""
from __future__ import annotations

# kube-controller-manager's root-ca-certificate-publisher writes this ConfigMap into every namespace.
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"


def config_map_names(core, namespace: str) -> list[str]:
    """Names of the ConfigMaps in `namespace` that a user or the collection created, sorted."""
    return sorted(item.metadata.name for item in core.list_namespaced_config_map(namespace).items
                  if item.metadata.name != ROOT_CA_CONFIG_MAP)

"""What a fresh control plane gets before the lab reports it up: CRDs, the read-only identity, fake nodes."""
from __future__ import annotations

import concurrent.futures
import pathlib
import threading
from typing import Callable

import yaml

from lab.cluster.api import Api, ApiError, resource_path
from lab.cluster.pki import READONLY_USER

CRD_PATH = resource_path("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NODE_COUNT = 3
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Namespaces a cluster with Istio has besides the four kube-apiserver creates itself.
EXTRA_NAMESPACES = ("istio-system",)


def crd_documents(directory: pathlib.Path) -> list[dict]:
    documents = []
    for path in sorted(directory.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                documents.append(document)
    return documents


def apply_crds(connect: Callable[[], Api], directories: list[pathlib.Path], workers: int = 4) -> list[str]:
    """Create the CRDs side by side: kube-apiserver takes a moment over each schema, and has cores to spare."""
    crds = [crd for directory in directories for crd in crd_documents(directory)]
    local = threading.local()

    def create(crd: dict) -> str:
        if not hasattr(local, "api"):
            local.api = connect()
        crd.pop("status", None)
        local.api.create(CRD_PATH, crd)
        return crd["metadata"]["name"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crds") as pool:
        return list(pool.map(create, crds))


def crds_established(api: Api, names: list[str]) -> bool:
    items = api.get(CRD_PATH).get("items") or []
    established = {item["metadata"]["name"] for item in items
                   if any(c.get("type") == "Established" and c.get("status") == "True"
                          for c in (item.get("status") or {}).get("conditions") or [])}
    return set(names) <= established


def readonly_identity(api: Api) -> None:
    """A real RBAC identity that may get, list and watch everything and change nothing."""
    rbac = "rbac.authorization.k8s.io"
    api.create(resource_path(rbac, "v1", "clusterroles"), {
        "apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": READONLY_USER},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
                  {"nonResourceURLs": ["*"], "verbs": ["get"]}]})
    api.create(resource_path(rbac, "v1", "clusterrolebindings"), {
        "apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": READONLY_USER},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": READONLY_USER},
        "subjects": [{"apiGroup": rbac, "kind": "User", "name": READONLY_USER}]})


def fake_nodes(api: Api, count: int = NODE_COUNT) -> None:
    """Nodes that kwok keeps alive; the scheduler places pods on them."""
    for index in range(1, count + 1):
        name = f"lab-node-{index}"
        api.create(resource_path("", "v1", "nodes"), {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok"}},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                       "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"}},
        })


def namespaces(api: Api) -> None:
    for name in EXTRA_NAMESPACES:
        api.create(resource_path("", "v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": name}})


def nodes_ready(api: Api) -> bool:
    items = api.get(resource_path("", "v1", "nodes")).get("items") or []
    ready = [node for node in items
             if any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
             and not node.get("spec", {}).get("taints")]
    return len(ready) >= NODE_COUNT


def default_service_account(api: Api) -> bool:
    try:
        api.get(resource_path("", "v1", "serviceaccounts", "default", "default"))
    except ApiError:
        return False
    return True


def seed_demo(api: Api) -> None:
    """The demo objects of lab.seed, created through the API."""
    from lab.seed import DEMO_NAMESPACE, demo_namespace, demo_deployment  # pylint: disable=import-outside-toplevel
    namespace = demo_namespace()
    namespace.pop("status", None)
    api.create(resource_path("", "v1", "namespaces"), namespace)
    deployment = demo_deployment()
    deployment.pop("status", None)
    api.create(resource_path("apps", "v1", "deployments", DEMO_NAMESPACE), deployment)

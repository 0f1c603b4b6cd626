"""Demo objects: the workload Flagger's Istio guide starts from, so its Canary manifest runs as written."""
from __future__ import annotations

from lab.store import AlreadyExists, Store, now_rfc3339

DEMO_NAMESPACE = "prod"
DEMO_DEPLOYMENT = "backend-service"
DEMO_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"


def _namespace(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, "istio-injection": "enabled"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def demo_deployment(namespace: str = DEMO_NAMESPACE, name: str = DEMO_DEPLOYMENT) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": dict(labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {"prometheus.io/scrape": "true",
                                                                     "prometheus.io/port": "9797"}},
                "spec": {
                    "containers": [{
                        "name": name,
                        "image": DEMO_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["./podinfo", "--port=9898", "--port-metrics=9797", "--grpc-port=9999",
                                    "--level=info"],
                        "ports": [
                            {"name": "http", "containerPort": 9898, "protocol": "TCP"},
                            {"name": "http-metrics", "containerPort": 9797, "protocol": "TCP"},
                            {"name": "grpc", "containerPort": 9999, "protocol": "TCP"},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898}, "initialDelaySeconds": 1,
                                           "periodSeconds": 5},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9898}, "initialDelaySeconds": 1,
                                          "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                      "limits": {"cpu": "1", "memory": "128Mi"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler",
                },
            },
        },
        "status": {},
    }


# Namespaces every real cluster (with Istio) has from the start; clients and
# tests may rely on `default` existing.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "istio-system")


def seed_system(store: Store) -> None:
    """Create the namespaces a fresh cluster has, unless they already exist."""
    for name in SYSTEM_NAMESPACES:
        if store.get("namespaces", None, name) is not None:
            continue
        namespace = _namespace(name)
        if name != "default":
            del namespace["metadata"]["labels"]["istio-injection"]
        try:
            store.create("namespaces", namespace)
        except AlreadyExists:
            continue


def demo_namespace() -> dict:
    return _namespace(DEMO_NAMESPACE)


def seed_demo(store: Store) -> None:
    """Create namespace prod and Deployment backend-service unless they already exist."""
    for resource, obj in (("namespaces", _namespace(DEMO_NAMESPACE)), ("deployments", demo_deployment())):
        meta = obj["metadata"]
        if store.get(resource, meta.get("namespace"), meta["name"]) is not None:
            continue
        meta.setdefault("annotations", {})["lab.progressive.delivery/seeded-at"] = now_rfc3339()
        try:
            store.create(resource, obj)
        except AlreadyExists:
            continue

"""VirtualService and Gateway API pieces tests build routes from."""

from __future__ import annotations


def dest(host, weight=None, port=None):
    """A route destination entry, as Istio writes it: host, optional port number and weight."""
    entry = {"destination": {"host": host}}
    if port:
        entry["destination"]["port"] = {"number": port}
    if weight is not None:
        entry["weight"] = weight
    return entry


def create_gateway(custom, namespace: str, name: str = "public", class_name: str = "lab") -> dict:
    """A Gateway API Gateway with one HTTP listener on port 80 that takes routes from every namespace."""
    body = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
            "spec": {"gatewayClassName": class_name,
                     "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                                    "allowedRoutes": {"namespaces": {"from": "All"}}}]}}
    return custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways", body)

"""A Gateway API release is asked about HTTPRoutes, an Istio release about VirtualServices, never about the other."""

from __future__ import annotations

import pathlib

import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.kube import access

RBAC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "rbac.yml"


def documented(name: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    role = next(item for item in yaml.safe_load(RBAC.read_text(encoding="utf-8"))["items"]
                if item["kind"] == "ClusterRole" and item["metadata"]["name"] == name)
    return [(rule["apiGroups"][0], tuple(rule["resources"]), tuple(rule["verbs"])) for rule in role["rules"]]


def groups(permissions) -> set[str]:
    return {permission.group for permission in permissions}


def test_the_gateway_api_permissions_are_the_documented_cluster_role():
    assert [(p.group, p.resources, p.verbs) for p in access.GATEWAY_API_ACCESS] == documented(access.GATEWAY_API_ROLE)


def test_each_router_is_asked_only_about_its_own_api():
    assert access.required_access("istio") == access.REQUIRED_ACCESS
    assert "gateway.networking.k8s.io" not in groups(access.required_access("istio"))
    gateway = access.required_access("gatewayapi")
    assert "networking.istio.io" not in groups(gateway) and "gateway.networking.k8s.io" in groups(gateway)
    assert groups(gateway) - {"gateway.networking.k8s.io"} == groups(access.REQUIRED_ACCESS) - {"networking.istio.io"}


def test_the_message_sends_a_gateway_api_release_to_the_role_it_lacks():
    only = access.access_message(["get, create httproutes.gateway.networking.k8s.io"], "prod")
    assert "(ClusterRole progressive-delivery-gatewayapi)" in only
    both = access.access_message(["create events", "get httproutes.gateway.networking.k8s.io"], "prod")
    assert "(ClusterRole progressive-delivery and progressive-delivery-gatewayapi)" in both
    assert "(ClusterRole progressive-delivery)" in access.access_message(["create events"], "prod")

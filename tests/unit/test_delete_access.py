"""What ``canary_step action=delete`` asks the API server for is the ClusterRole progressive-delivery-delete of docs/rbac.yml."""

from __future__ import annotations

import pathlib

import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.kube import access

RBAC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "rbac.yml"


def documented(role_name: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    documents = yaml.safe_load(RBAC.read_text(encoding="utf-8"))
    role = next(item for item in documents["items"] if item["kind"] == "ClusterRole" and item["metadata"]["name"] == role_name)
    return [(rule["apiGroups"][0], tuple(rule["resources"]), tuple(rule["verbs"])) for rule in role["rules"]]


def test_the_delete_permissions_are_exactly_the_documented_delete_role():
    assert [(p.group, p.resources, p.verbs) for p in access.DELETE_ACCESS] == documented(access.DELETE_ROLE)


def test_a_release_never_needs_to_delete():
    assert all("delete" not in p.verbs for p in access.REQUIRED_ACCESS)


def test_the_message_names_the_delete_role():
    message = access.access_message(["delete services"], "prod", access.DELETE_ROLE)
    assert "ClusterRole progressive-delivery-delete" in message and "through the deletion" in message
    assert "nothing was changed" in message

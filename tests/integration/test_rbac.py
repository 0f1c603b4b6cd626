"""docs/rbac.yml for real: the role runs as a service account bound to exactly that ClusterRole.

The lab's API server authorizes with RBAC, so a permission the collection
needs and the document lacks fails here as it would on a cluster.
"""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from lab.testing import wait_for
from tests.support.cluster_objects import config_map_names
from tests.support.modules import REPO_ROOT, run_module
from tests.support.releases import Release, assert_safe, short_manifest
from tests.support.routes import create_gateway

RBAC = REPO_ROOT / "docs" / "rbac.yml"
ACCOUNT = "progressive-delivery"


def documented_role() -> dict:
    return next(item for item in yaml.safe_load(RBAC.read_text(encoding="utf-8"))["items"]
                if item["kind"] == "ClusterRole")


RULES = documented_role()["rules"]


def rule_id(rule: dict) -> str:
    return "+".join(rule["resources"])


class Identity:
    """A service account in the test's namespace, bound (RoleBinding) to a ClusterRole with the given rules."""

    def __init__(self, lab, namespace: str, tmp_path: pathlib.Path) -> None:
        from kubernetes import client  # pylint: disable=import-outside-toplevel

        self.lab = lab
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.api = lab.kube_client()
        self.core = client.CoreV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.role_name = "progressive-delivery-" + namespace

    def bind(self, rules: list[dict]) -> str:
        """The path of a kubeconfig that authenticates as the service account."""
        role = copy.deepcopy(documented_role())
        role["metadata"]["name"] = self.role_name
        role["rules"] = rules
        self.rbac.create_cluster_role(role)
        self.core.create_namespaced_service_account(self.namespace, {"metadata": {"name": ACCOUNT}})
        self.rbac.create_namespaced_role_binding(self.namespace, {
            "metadata": {"name": ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": self.namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": self.role_name}})
        token = self.core.create_namespaced_service_account_token(
            ACCOUNT, self.namespace, {"spec": {"expirationSeconds": 3600}}).status.token
        path = self.tmp_path / "service-account.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "lab", "cluster": {"server": self.lab.kube_url, "certificate-authority": self.lab.ca_cert}}],
            "users": [{"name": ACCOUNT, "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "lab", "user": ACCOUNT, "namespace": self.namespace}}]}))
        probe = rules[0]
        wait_for(lambda: self._allowed(path, probe["apiGroups"][0], probe["resources"][0], probe["verbs"][0]),
                 message="the RoleBinding to take effect")
        return str(path)

    def _allowed(self, kubeconfig: pathlib.Path, group: str, resource: str, verb: str) -> bool:
        from kubernetes import client, config  # pylint: disable=import-outside-toplevel

        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            review = client.AuthorizationV1Api(api).create_self_subject_access_review({"spec": {"resourceAttributes": {
                "namespace": self.namespace, "verb": verb, "group": group, "resource": resource}}})
            return bool(review.status.allowed)
        finally:
            api.close()

    def remove(self) -> None:
        from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

        try:
            self.rbac.delete_cluster_role(self.role_name)
        except ApiException as error:
            if error.status != 404:
                raise
        self.api.close()


@pytest.fixture
def identity(lab, namespace, tmp_path):
    made = Identity(lab, namespace, tmp_path)
    yield made
    made.remove()


def test_a_release_runs_with_exactly_the_documented_permissions(lab, namespace, tmp_path, identity):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    kubeconfig = identity.bind(RULES)
    first = release.run(canary_kubeconfig=kubeconfig)
    assert first.returncode == 0, first.stdout[-3000:]
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    promoted = release.run(canary_kubeconfig=kubeconfig)
    assert promoted.returncode == 0, promoted.stdout[-3000:]
    assert "Could not" not in promoted.stdout and "lack" not in promoted.stdout, promoted.stdout[-3000:]
    assert release.template(release.name + "-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    assert release.state()["phase"] == "Succeeded"
    assert_safe(release)


@pytest.mark.parametrize("removed", range(len(RULES)), ids=[rule_id(rule) for rule in RULES])
def test_without_any_one_rule_the_run_names_it_and_changes_nothing(lab, namespace, tmp_path, identity, removed):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    kubeconfig = identity.bind([rule for index, rule in enumerate(RULES) if index != removed])
    result = run_module("canary_step", dict(kubeconfig=kubeconfig, action="lock", name=release.name,
                                            namespace=namespace, run_id="run-rbac", holder="rbac test"))
    assert result["failed"], result
    rule = RULES[removed]
    group = rule["apiGroups"][0]
    for resource in rule["resources"]:
        named = "%s.%s" % (resource, group) if group else resource
        assert "%s %s" % (", ".join(rule["verbs"]), named) in result["msg"], result["msg"]
    assert "docs/rbac.yml" in result["msg"] and "nothing was changed" in result["msg"]
    assert config_maps_and_leases(release) == ([], [])


def config_maps_and_leases(release: Release) -> tuple[list[str], list[str]]:
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    leases = client.CoordinationV1Api(release.api).list_namespaced_lease(release.namespace).items
    return config_map_names(release.core, release.namespace), [lease.metadata.name for lease in leases]


def test_the_role_stops_at_the_lock_when_a_rule_is_missing(lab, namespace, tmp_path, identity):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    without_events = [rule for rule in RULES if rule["resources"] != ["events"]]
    result = release.run(canary_kubeconfig=identity.bind(without_events))
    assert result.returncode != 0
    assert "may not create, patch events in namespace %s" % namespace in result.stdout, result.stdout[-3000:]
    assert release.apps.list_namespaced_deployment(namespace).items[0].metadata.name == release.name
    assert len(release.apps.list_namespaced_deployment(namespace).items) == 1
    assert config_maps_and_leases(release) == ([], [])
    assert not release.custom.list_namespaced_custom_object("networking.istio.io", "v1", namespace, "virtualservices")["items"]


def test_a_gateway_api_release_needs_the_httproute_role_instead_of_istios(lab, namespace, tmp_path, identity):
    gateway_role = next(item for item in yaml.safe_load(RBAC.read_text(encoding="utf-8"))["items"]
                        if item["kind"] == "ClusterRole" and item["metadata"]["name"] == "progressive-delivery-gatewayapi")
    without_istio = [rule for rule in RULES if rule["apiGroups"] != ["networking.istio.io"]]
    manifest = short_manifest(namespace)
    manifest["spec"]["provider"] = "gatewayapi:v1"
    manifest["spec"]["service"] = {"port": 9898, "hosts": ["app.example.com"],
                                   "gatewayRefs": [{"name": "public", "namespace": namespace}]}
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    create_gateway(release.custom, namespace)
    kubeconfig = identity.bind(without_istio)
    refused = run_module("canary_step", dict(kubeconfig=kubeconfig, action="lock", name=release.name, namespace=namespace,
                                             run_id="run-rbac", holder="rbac test", provider="gatewayapi"))
    assert refused["failed"] and "httproutes.gateway.networking.k8s.io" in refused["msg"], refused
    assert "networking.istio.io" not in refused["msg"] and "progressive-delivery-gatewayapi" in refused["msg"], refused
    assert config_maps_and_leases(release) == ([], [])

    identity.rbac.patch_cluster_role(identity.role_name, {"rules": without_istio + gateway_role["rules"]})
    wait_for(lambda: identity._allowed(kubeconfig, "gateway.networking.k8s.io", "httproutes", "create"),  # pylint: disable=protected-access
             message="the HTTPRoute rule to take effect")
    first = release.run(canary_kubeconfig=kubeconfig)
    assert first.returncode == 0, first.stdout[-3000:]
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    promoted = release.run(canary_kubeconfig=kubeconfig)
    assert promoted.returncode == 0, promoted.stdout[-3000:]
    assert release.state()["phase"] == "Succeeded"
    assert_safe(release)

"""The shared client against the lab's HTTPS API: kubeconfig auth, the CA, and readable API errors."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.kube import client as kube
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError


def lab_client(kubeconfig: str, **extra) -> kube.KubeClient:
    return kube.client_from_auth(kube.resolve_auth(dict({"kubeconfig": kubeconfig}, **extra), environ={}))


def test_kubeconfig_with_lab_ca_reads_over_https(lab, namespace):
    client = lab_client(lab.kubeconfig)
    assert client.host.startswith("https://")
    created = client.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "probe"}, "data": {"k": "v"}}, namespace)
    assert created["metadata"]["resourceVersion"]
    assert client.get("v1", "configmaps", "probe", namespace)["data"] == {"k": "v"}


def test_explicit_host_token_and_ca_without_kubeconfig(lab, namespace):
    client = kube.client_from_auth(kube.resolve_auth(
        {"host": lab.kube_url, "api_key": lab.token, "ca_cert": lab.ca_cert}, environ={}))
    assert client.get("v1", "namespaces", namespace)["metadata"]["name"] == namespace


def test_certificates_are_verified_by_default(lab):
    with pytest.raises(KubeApiError) as caught:
        kube.client_from_auth(kube.resolve_auth({"host": lab.kube_url, "api_key": lab.token}, environ={})) \
            .get("v1", "namespaces", "default")
    assert caught.value.status is None
    assert "ca_cert" in caught.value.message


def test_read_only_token_gets_a_readable_403(lab, namespace):
    client = lab_client(lab.readonly_kubeconfig)
    assert client.get_or_none("v1", "configmaps", "absent", namespace) is None
    with pytest.raises(KubeApiError) as caught:
        client.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                      namespace)
    message = caught.value.explain("create", "ConfigMap", "x", namespace)
    assert caught.value.status == 403
    assert message.startswith("Could not create ConfigMap %s/x: HTTP 403 Forbidden" % namespace)
    assert "grant the 'create' verb on configmaps in namespace %s" % namespace in message


def test_stale_resource_version_is_a_conflict(lab, namespace):
    client = lab_client(lab.kubeconfig)
    created = client.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "cas"}, "data": {"n": "1"}}, namespace)
    client.patch("v1", "configmaps", "cas", {"data": {"n": "2"}}, namespace)
    stale = dict(created, data={"n": "3"})
    with pytest.raises(KubeApiError) as caught:
        client.replace("v1", "configmaps", "cas", stale, namespace)
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")
    assert client.get("v1", "configmaps", "cas", namespace)["data"] == {"n": "2"}


def test_kubeconfig_given_as_dict(lab, namespace):
    config = yaml.safe_load(open(lab.kubeconfig, encoding="utf-8"))
    client = kube.client_from_auth(kube.resolve_auth({"kubeconfig": config}, environ={}))
    assert client.served_versions("networking.istio.io")[:1] in (["v1"], ["v1beta1"])
    assert client.get("v1", "namespaces", namespace)["status"]["phase"] == "Active"

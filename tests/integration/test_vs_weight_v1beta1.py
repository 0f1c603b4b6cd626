"""vs_weight against a lab that serves networking.istio.io only at v1beta1, as an Istio older than 1.22 does.

The lab is switched with its admin endpoint PUT /lab/v1/istio-versions and
switched back afterwards whatever happens, since one lab serves the session.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
import requests

from tests.support.modules import run_module

GROUP = "networking.istio.io"
NAME = "backend"
BOTH_VERSIONS = ["v1", "v1beta1"]


def admin_session(lab) -> requests.Session:
    session = requests.Session()
    # A REQUESTS_CA_BUNDLE or proxy from the environment must not replace the lab's CA or reach the lab.
    session.trust_env = False
    session.verify = lab.ca_cert
    session.headers["Authorization"] = "Bearer %s" % lab.token
    return session


def put_istio_versions(session: requests.Session, lab, versions: list[str]) -> None:
    response = session.put("%s/lab/v1/istio-versions" % lab.kube_url, json={"versions": versions}, timeout=10)
    assert response.status_code == 200, (
        "the lab at %s refused to serve Istio at %s: HTTP %s %s (a lab started before the endpoint existed needs a "
        "restart)" % (lab.kube_url, versions, response.status_code, response.text))
    assert response.json() == {"versions": versions}


@contextlib.contextmanager
def istio_served_at(lab, versions: list[str]) -> Iterator[requests.Session]:
    session = admin_session(lab)
    put_istio_versions(session, lab, versions)
    try:
        yield session
    finally:
        put_istio_versions(session, lab, BOTH_VERSIONS)


def served_versions(session: requests.Session, lab) -> list[str]:
    group = session.get("%s/apis/%s" % (lab.kube_url, GROUP), timeout=10)
    assert group.status_code == 200, group.text
    return [entry["version"] for entry in group.json()["versions"]]


def read_at(session: requests.Session, lab, namespace: str, version: str) -> requests.Response:
    return session.get("%s/apis/%s/%s/namespaces/%s/virtualservices/%s"
                       % (lab.kube_url, GROUP, version, namespace, NAME), timeout=10)


def route_weights(obj: dict) -> list[int]:
    return [entry.get("weight") for entry in obj["spec"]["http"][0]["route"]]


@pytest.fixture
def split_virtual_service(lab_objects):
    return lab_objects.virtualservice(NAME, [NAME], [{"name": "main", "route": [
        {"destination": {"host": NAME + "-primary"}, "weight": 100},
        {"destination": {"host": NAME + "-canary"}, "weight": 0}]}])


def test_weights_change_through_v1beta1_when_v1_is_not_served(lab, namespace, k8s_auth, split_virtual_service):
    args = dict(k8s_auth, name=NAME, namespace=namespace)
    with istio_served_at(lab, ["v1beta1"]) as session:
        assert served_versions(session, lab) == ["v1beta1"]
        not_served = read_at(session, lab, namespace, "v1")
        assert not_served.status_code == 404 and "name" not in not_served.json()["details"]

        planned = run_module("vs_weight", dict(args, weight=50), check_mode=True)
        assert not planned.get("failed"), planned.get("msg")
        assert planned["changed"] is True and planned["api_version"] == "%s/v1beta1" % GROUP
        untouched = read_at(session, lab, namespace, "v1beta1").json()
        assert route_weights(untouched) == [100, 0]

        result = run_module("vs_weight", dict(args, weight=25))
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True
        assert result["api_version"] == "%s/v1beta1" % GROUP
        assert (result["primary_weight"], result["canary_weight"]) == (75, 25)
        assert [weight["weight"] for weight in result["previous_weights"]] == [100, 0]
        after = read_at(session, lab, namespace, "v1beta1").json()
        assert after["apiVersion"] == "%s/v1beta1" % GROUP
        assert route_weights(after) == [75, 25]
        assert result["resource_version"] == after["metadata"]["resourceVersion"]

        again = run_module("vs_weight", dict(args, weight=25))
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False and again["api_version"] == "%s/v1beta1" % GROUP

    back = admin_session(lab)
    assert served_versions(back, lab) == BOTH_VERSIONS
    at_v1 = run_module("vs_weight", dict(args, weight=0))
    assert not at_v1.get("failed"), at_v1.get("msg")
    assert at_v1["api_version"] == "%s/v1" % GROUP and at_v1["canary_weight"] == 0
    assert route_weights(read_at(back, lab, namespace, "v1").json()) == [100, 0]


def test_a_given_api_version_is_used_as_it_is(lab, namespace, k8s_auth, split_virtual_service):
    args = dict(k8s_auth, name=NAME, namespace=namespace)
    with istio_served_at(lab, ["v1beta1"]) as session:
        result = run_module("vs_weight", dict(args, weight=30, api_version="%s/v1beta1" % GROUP))
        assert not result.get("failed"), result.get("msg")
        assert result["api_version"] == "%s/v1beta1" % GROUP and result["canary_weight"] == 30

        wrong = run_module("vs_weight", dict(args, weight=40, api_version="%s/v1" % GROUP))
        assert wrong["failed"]
        assert "does not serve VirtualServices as %s/v1 (api_version)" % GROUP in wrong["msg"]
        assert route_weights(read_at(session, lab, namespace, "v1beta1").json()) == [70, 30]

    unknown = run_module("vs_weight", dict(args, api_version="%s/v2" % GROUP))
    assert unknown["failed"] and "api_version" in unknown["msg"]

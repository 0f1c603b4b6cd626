"""vs_weight against a lab that serves networking.istio.io only at v1beta1, as an Istio older than 1.22 does.

The lab is switched with `serve_istio_versions` (on the real control plane the
Istio CRDs' `served` flags change) and switched back afterwards whatever
happens, since one lab serves the session.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
import requests

from tests.support.modules import run_module

GROUP = "networking.istio.io"
NAME = "backend"


def admin_session(lab) -> requests.Session:
    session = requests.Session()
    # A REQUESTS_CA_BUNDLE or proxy from the environment must not replace the lab's CA or reach the lab.
    session.trust_env = False
    session.verify = lab.ca_cert
    session.headers["Authorization"] = "Bearer %s" % lab.token
    return session


def served_versions(session: requests.Session, lab) -> list[str]:
    group = session.get("%s/apis/%s" % (lab.kube_url, GROUP), timeout=10)
    assert group.status_code == 200, group.text
    return [entry["version"] for entry in group.json()["versions"]]


@pytest.fixture(scope="module")
def all_versions(lab) -> list[str]:
    """What the lab serves normally, preferred first (v1 among them)."""
    versions = served_versions(admin_session(lab), lab)
    assert versions[0] == "v1", versions
    return versions


@contextlib.contextmanager
def istio_served_at(lab, versions: list[str], restore: list[str]) -> Iterator[requests.Session]:
    # Kinds that exist at none of the versions keep theirs (EnvoyFilter is v1alpha3 only), as in an older Istio.
    served = lab.serve_istio_versions(versions)
    assert served[: len(versions)] == versions and "v1" not in served[len(versions):], served
    try:
        yield admin_session(lab)
    finally:
        assert lab.serve_istio_versions(restore) == restore


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


def test_weights_change_through_v1beta1_when_v1_is_not_served(lab, namespace, k8s_auth, split_virtual_service,
                                                              all_versions):
    args = dict(k8s_auth, name=NAME, namespace=namespace)
    with istio_served_at(lab, ["v1beta1"], all_versions) as session:
        assert served_versions(session, lab)[0] == "v1beta1" and "v1" not in served_versions(session, lab)
        not_served = read_at(session, lab, namespace, "v1")
        # kube-apiserver answers a path under an unserved version as an unknown path: "404 page not found".
        assert not_served.status_code == 404 and NAME not in not_served.text

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
    assert served_versions(back, lab) == all_versions
    at_v1 = run_module("vs_weight", dict(args, weight=0))
    assert not at_v1.get("failed"), at_v1.get("msg")
    assert at_v1["api_version"] == "%s/v1" % GROUP and at_v1["canary_weight"] == 0
    assert route_weights(read_at(back, lab, namespace, "v1").json()) == [100, 0]


def test_a_given_api_version_is_used_as_it_is(lab, namespace, k8s_auth, split_virtual_service, all_versions):
    args = dict(k8s_auth, name=NAME, namespace=namespace)
    with istio_served_at(lab, ["v1beta1"], all_versions) as session:
        result = run_module("vs_weight", dict(args, weight=30, api_version="%s/v1beta1" % GROUP))
        assert not result.get("failed"), result.get("msg")
        assert result["api_version"] == "%s/v1beta1" % GROUP and result["canary_weight"] == 30

        wrong = run_module("vs_weight", dict(args, weight=40, api_version="%s/v1" % GROUP))
        assert wrong["failed"]
        assert "does not serve VirtualServices as %s/v1 (api_version)" % GROUP in wrong["msg"]
        assert route_weights(read_at(session, lab, namespace, "v1beta1").json()) == [70, 30]

    unknown = run_module("vs_weight", dict(args, api_version="%s/v2" % GROUP))
    assert unknown["failed"] and "api_version" in unknown["msg"]

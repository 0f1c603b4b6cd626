"""Fault injection on the emulated API server, through its admin endpoint."""
from __future__ import annotations

import json
import time

import pytest

kubernetes = pytest.importorskip("kubernetes")
ApiException = kubernetes.client.ApiException


def test_injected_500_answers_internal_error_for_the_matching_requests_only(kube_lab, core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    kube_lab.inject_fault("GET", rf"/namespaces/{ns}/configmaps/cm$", status=500, count=1)
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("cm", ns)
    body = json.loads(caught.value.body)
    assert caught.value.status == 500
    assert (body["kind"], body["reason"], body["code"], body["status"]) == ("Status", "InternalError", 500, "Failure")
    assert core.read_namespaced_config_map("cm", ns).metadata.name == "cm"  # count=1 is used up


def test_injected_409_answers_a_real_conflict(kube_lab, core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    kube_lab.inject_fault("PUT", r"/configmaps/cm$", status=409)
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("cm", ns, {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    body = json.loads(caught.value.body)
    assert caught.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified; please apply your changes to the latest version and try again" in body["message"]
    assert body["details"]["name"] == "cm" and body["details"]["kind"] == "configmaps"
    assert core.read_namespaced_config_map("cm", ns).data is None


def test_injected_delay_slows_matching_requests(kube_lab, core, ns):
    kube_lab.inject_fault("*", rf"/namespaces/{ns}/configmaps$", delay=0.3)
    started = time.monotonic()
    core.list_namespaced_config_map(ns)
    assert time.monotonic() - started >= 0.3


def test_ratio_applies_a_fault_to_a_share_of_requests(kube_lab, core, ns):
    kube_lab.inject_fault("GET", rf"/namespaces/{ns}/configmaps$", status=500, ratio=0.5)
    outcomes = []
    for _ in range(40):
        try:
            core.list_namespaced_config_map(ns)
            outcomes.append(200)
        except ApiException as error:
            outcomes.append(error.status)
    assert set(outcomes) == {200, 500}


def test_fault_admin_endpoint_lists_clears_and_refuses_read_only_users(kube_lab, core, ns):
    fault_id = kube_lab.inject_fault("DELETE", r"/configmaps/", status=500, count=3)
    listed = kube_lab.session().get(f"{kube_lab.url}/lab/v1/faults").json()["faults"]
    assert [(f["id"], f["method"], f["status"], f["count"]) for f in listed] == [(fault_id, "DELETE", 500, 3)]
    refused = kube_lab.session("readonly").post(f"{kube_lab.url}/lab/v1/faults",
                                                json={"method": "GET", "path_regex": ".", "status": 500})
    assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
    invalid = kube_lab.session().post(f"{kube_lab.url}/lab/v1/faults", json={"method": "GET", "path_regex": "."})
    assert invalid.status_code == 400
    kube_lab.clear_faults()
    assert kube_lab.session().get(f"{kube_lab.url}/lab/v1/faults").json()["faults"] == []


def test_removing_one_fault_leaves_the_others(kube_lab, core, ns):
    kept = kube_lab.inject_fault("GET", rf"/namespaces/{ns}/configmaps$", status=500)
    lifted = kube_lab.inject_fault("GET", rf"/namespaces/{ns}/secrets$", status=500)
    kube_lab.remove_fault(lifted)
    assert [f["id"] for f in kube_lab.faults()] == [kept]
    core.list_namespaced_secret(ns)
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(ns)
    assert caught.value.status == 500

"""Taking over what Flagger generated for a Canary: which objects, what changes on them, and the refusals."""

from __future__ import annotations

import copy

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import (
    CANARY_ANNOTATION,
    MANAGED_BY_LABEL,
    mark,
    owner_of,
    ownership_problem,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import flagger_adoption as fa

CANARY_REF = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo", "uid": "0b6c-41",
              "controller": True, "blockOwnerDeletion": True}
OTHER_REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "9"}


def flagger_primary(refs=None, replicas=4):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo-primary", "namespace": "test", "resourceVersion": "41",
                         "labels": {"app": "podinfo-primary"}, "ownerReferences": refs or [dict(CANARY_REF)]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "podinfo-primary"}},
                     "template": {"metadata": {"labels": {"app": "podinfo-primary"},
                                               "annotations": {"flagger-id": "5e2a-4c"}},
                                  "spec": {"containers": [{"name": "app", "image": "podinfo:6.7.0"}]}}}}


def test_the_canary_owner_reference_is_found_by_group_and_kind():
    assert fa.flagger_owner(flagger_primary()) == CANARY_REF
    assert fa.flagger_owner(flagger_primary([OTHER_REF])) is None
    assert fa.flagger_owner(flagger_primary([dict(CANARY_REF, apiVersion="flagger.app/v1alpha3")]))["name"] == "podinfo"
    assert fa.flagger_owner(flagger_primary([dict(CANARY_REF, apiVersion="example.com/v1")])) is None
    assert fa.flagger_owner(None) is None


def test_adoption_marks_the_object_and_drops_only_flagger_references():
    primary = flagger_primary([dict(CANARY_REF), OTHER_REF])
    before = copy.deepcopy(primary)
    taken = fa.adopted(primary, "test", "podinfo")
    assert primary == before, "the input is not changed"
    assert owner_of(taken) == "test/podinfo" and ownership_problem(taken, "Deployment", "test", "podinfo") is None
    assert taken["metadata"]["ownerReferences"] == [OTHER_REF]
    # Everything else is as Flagger left it: replicas, pod template (no restart), resourceVersion for the write.
    assert taken["spec"] == before["spec"] and taken["metadata"]["resourceVersion"] == "41"
    assert taken["metadata"]["labels"]["app"] == "podinfo-primary"
    alone = fa.adopted(flagger_primary(), "test", "podinfo")
    assert "ownerReferences" not in alone["metadata"]
    assert alone["metadata"]["labels"][MANAGED_BY_LABEL] == "progressive.delivery"
    assert alone["metadata"]["annotations"][CANARY_ANNOTATION] == "test/podinfo"


def test_only_this_canarys_unowned_objects_are_adoptable():
    assert fa.adoptable(flagger_primary(), "Deployment", "podinfo")
    assert not fa.adoptable(flagger_primary(), "Deployment", "other")
    assert not fa.adoptable(flagger_primary([OTHER_REF]), "Deployment", "podinfo")
    assert not fa.adoptable(mark(flagger_primary(), "test", "podinfo"), "Deployment", "podinfo"), "already ours"
    assert not fa.adoptable(None, "Deployment", "podinfo")


def test_an_apex_service_people_created_is_adopted_when_flagger_points_it_at_the_primary():
    apex = {"metadata": {"name": "podinfo"}, "spec": {"selector": {"app": "podinfo-primary"}}}
    assert fa.adoptable(apex, "Service", "podinfo", "podinfo", "app", "podinfo-primary")
    assert not fa.adoptable(apex, "Service", "podinfo", "podinfo", "app", "other-primary")
    assert not fa.adoptable({"metadata": {"name": "podinfo"}, "spec": {"selector": {"app": "podinfo"}}},
                            "Service", "podinfo", "podinfo", "app", "podinfo-primary"), "still selects the target"
    assert not fa.adoptable(apex, "Service", "podinfo", "", "app", "podinfo-primary"), "no apex named"
    assert not fa.adoptable(apex, "VirtualService", "podinfo", "podinfo", "app", "podinfo-primary")
    owned = {"metadata": {"name": "podinfo", "ownerReferences": [OTHER_REF]}, "spec": apex["spec"]}
    assert not fa.adoptable(owned, "Service", "podinfo", "podinfo", "app", "podinfo-primary")


def test_the_refusal_names_the_option_and_the_role_variable():
    message = fa.flagger_problem(flagger_primary(), "Deployment", "test", "podinfo")
    assert "Deployment test/podinfo-primary was created by Flagger for Canary test/podinfo" in message
    assert "adopt_flagger=true" in message and "canary_adopt_flagger" in message
    other = fa.flagger_problem(flagger_primary(), "Deployment", "test", "web")
    assert "belongs to Flagger Canary test/podinfo, not to web" in other
    assert fa.flagger_problem(flagger_primary([OTHER_REF]), "Deployment", "test", "podinfo") is None
    assert fa.flagger_problem(mark(flagger_primary(), "test", "podinfo"), "Deployment", "test", "podinfo") is None


def test_a_primary_with_another_selector_is_not_adopted():
    assert fa.primary_problem(flagger_primary(), "test", "app", "podinfo-primary") is None
    problem = fa.primary_problem(flagger_primary(), "test", "name", "podinfo-primary")
    assert "Deployment test/podinfo-primary selects pods by" in problem and "name=podinfo-primary" in problem


def test_the_primary_runs_the_target_when_the_pod_specs_match():
    desired = {"spec": {"template": {"metadata": {"annotations": {"progressive.delivery/revision": "abc"}},
                                     "spec": {"containers": [{"name": "app", "image": "podinfo:6.7.0"}]}}}}
    assert fa.runs_target(flagger_primary(), desired)
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.7.1"
    assert not fa.runs_target(flagger_primary(), desired)

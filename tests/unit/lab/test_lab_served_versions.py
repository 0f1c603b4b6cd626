"""Served Istio versions in routing and discovery, and finalizers in the store, without HTTP."""
from __future__ import annotations

import pytest

from lab.kube import discovery
from lab.kube.api import KubeAPI, Request
from lab.kube.resources import ServedVersions
from lab.kube.routing import DiscoveryRoute, ResourceRoute, UnknownPath, route
from lab.store import NotFound, Store

ISTIO = "networking.istio.io"
VS_PATH = f"/apis/{ISTIO}/%s/namespaces/ns/virtualservices/api"


def test_default_serves_both_istio_versions_preferring_v1():
    served = ServedVersions()
    assert served.istio == ("v1", "v1beta1")
    assert served.groups()[ISTIO] == ("v1", "v1beta1")
    assert isinstance(route(VS_PATH % "v1", served), ResourceRoute)
    assert isinstance(route(VS_PATH % "v1beta1", served), ResourceRoute)


def test_narrowed_istio_versions_route_and_discover_only_what_is_served():
    served = ServedVersions(("v1beta1",))
    with pytest.raises(UnknownPath):
        route(VS_PATH % "v1", served)
    with pytest.raises(UnknownPath):
        route(f"/apis/{ISTIO}/v1", served)
    target = route(VS_PATH % "v1beta1", served)
    assert isinstance(target, ResourceRoute) and target.api_version == f"{ISTIO}/v1beta1"
    assert route(f"/apis/{ISTIO}", served) == DiscoveryRoute("group", ISTIO)
    group = discovery.api_group(ISTIO, served)
    assert group is not None and group["preferredVersion"]["version"] == "v1beta1"
    assert [entry["version"] for entry in group["versions"]] == ["v1beta1"]
    assert discovery.resource_list(ISTIO, "v1", served) is None
    assert route("/apis/apps/v1/namespaces/ns/deployments/web", served).rtype.plural == "deployments"


def test_switching_back_serves_v1_again_and_the_default_catalog_is_untouched():
    served = ServedVersions(("v1beta1",))
    assert served.set_istio(["v1", "v1beta1"]) == ("v1", "v1beta1")
    assert isinstance(route(VS_PATH % "v1", served), ResourceRoute)
    served.set_istio(("v1beta1",))
    assert isinstance(route(VS_PATH % "v1"), ResourceRoute), "the module-level default keeps serving v1"


@pytest.mark.parametrize("versions", [(), ("v2",), ("v1", "v1"), "v1beta1", None])
def test_invalid_istio_versions_are_refused(versions):
    with pytest.raises(ValueError, match="Istio versions"):
        ServedVersions(versions)


def test_an_unserved_version_answers_not_found_with_empty_details():
    api = KubeAPI(Store(), served=ServedVersions(("v1beta1",)))
    response = api.handle(Request.build("GET", VS_PATH % "v1"))
    assert response.code == 404
    assert response.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": "the server could not find the requested resource", "reason": "NotFound",
                             "details": {}, "code": 404}


# ----------------------------------------------------------------- finalizers
def held(name="held"):
    return {"metadata": {"name": name, "namespace": "ns", "finalizers": ["example.com/hold"]}, "data": {"a": "1"}}


def test_finalizers_turn_delete_into_marking_until_the_last_one_is_removed():
    store = Store()
    created = store.create("configmaps", held())
    marked = store.delete("configmaps", "ns", "held")
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["finalizers"] == ["example.com/hold"]
    assert int(marked["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stored = store.get("configmaps", "ns", "held")
    assert stored["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    assert store.delete("configmaps", "ns", "held") == stored, "a second delete changes nothing"

    cleared = store.get("configmaps", "ns", "held")
    cleared["metadata"].pop("deletionTimestamp")
    kept = store.update("configmaps", cleared)
    assert kept["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]

    released = store.get("configmaps", "ns", "held")
    released["metadata"]["finalizers"] = []
    store.update("configmaps", released)
    assert store.get("configmaps", "ns", "held") is None
    changes, _complete = store.changes_since(int(marked["metadata"]["resourceVersion"]))
    assert changes[-1].type == "DELETED"


def test_dry_run_and_forced_deletes_of_objects_with_finalizers():
    store = Store()
    store.create("configmaps", held())
    revision = store.revision
    preview = store.delete("configmaps", "ns", "held", dry_run=True)
    assert preview["metadata"]["deletionTimestamp"]
    assert store.revision == revision and "deletionTimestamp" not in store.get("configmaps", "ns", "held")["metadata"]
    store.delete("configmaps", "ns", "held", force=True)
    with pytest.raises(NotFound):
        store.delete("configmaps", "ns", "held")

"""One list of the Istio networking API versions, for canary_step's discovery and vs_weight's fallback."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_api


def test_pick_istio_version_prefers_v1():
    assert istio_api.pick_istio_version(["v1alpha3", "v1beta1", "v1"]) == "v1"
    assert istio_api.pick_istio_version(["v1alpha3", "v1beta1"]) == "v1beta1"
    assert istio_api.pick_istio_version(["v2"]) is None
    assert istio_api.pick_istio_version([]) is None


def test_api_versions_are_the_versions_in_the_same_order():
    assert istio_api.ISTIO_API_VERSIONS == tuple("networking.istio.io/" + v for v in istio_api.ISTIO_VERSIONS)
    assert istio_api.ISTIO_API_VERSIONS[0] == "networking.istio.io/v1"

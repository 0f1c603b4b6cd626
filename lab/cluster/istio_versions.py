"""Serve networking.istio.io at chosen versions only, as an older Istio does (before 1.22 there is no v1).

The CRDs' `served` flags change and nothing else: stored objects stay as they are.
"""
from __future__ import annotations

import time

from lab.cluster.api import Api, ApiError, resource_path
from lab.cluster.bootstrap import CRD_PATH

GROUP = "networking.istio.io"
SWITCH_TIMEOUT = 30.0


def served(api: Api) -> list[str]:
    """The group's served versions, preferred first, as discovery lists them."""
    try:
        return [entry["version"] for entry in api.get(f"/apis/{GROUP}").get("versions") or []]
    except ApiError as error:
        if error.status == 404:
            return []
        raise


def _path_answers(api: Api, version: str) -> bool:
    try:
        api.get(resource_path(GROUP, version, "virtualservices"), limit=1)
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    return True


def serve(api: Api, versions: list[str]) -> list[str]:
    """Serve VirtualServices and their kin at exactly `versions`; returns the group's versions once discovery lists them."""
    if not isinstance(versions, list) or not versions or not all(isinstance(v, str) for v in versions):
        raise ValueError(f"versions must be a non-empty list of version names, got {versions!r}")
    crds = [crd for crd in api.get(CRD_PATH).get("items") or [] if crd["spec"]["group"] == GROUP]
    known = sorted({entry["name"] for crd in crds for entry in crd["spec"]["versions"]})
    unknown = sorted(set(versions) - set(known))
    if unknown:
        raise ValueError(f"{GROUP} has no version {', '.join(unknown)} (it has {', '.join(known)})")
    # Discovery lists a version while any kind of the group serves it, so every CRD of the group switches.
    expected = set(versions)
    for crd in crds:
        if not any(entry["name"] in versions for entry in crd["spec"]["versions"]):
            # A kind that exists at none of these versions (EnvoyFilter is v1alpha3 only) keeps its own, as in Istio.
            expected.update(entry["name"] for entry in crd["spec"]["versions"] if entry["served"])
            continue
        for entry in crd["spec"]["versions"]:
            entry["served"] = entry["name"] in versions
        api.request("PUT", f"{CRD_PATH}/{crd['metadata']['name']}", crd)
    deadline = time.monotonic() + SWITCH_TIMEOUT
    while True:
        listed = served(api)
        if set(listed) == expected and all(_path_answers(api, v) == (v in versions) for v in known):
            return listed
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the API server still serves {GROUP} at {listed} after {SWITCH_TIMEOUT:.0f}s")
        time.sleep(0.1)

"""Discovery documents: /version, /api, /apis and the APIResourceLists of each group version."""
from __future__ import annotations

import hashlib

from lab.kube.resources import DEFAULT_SERVED, ResourceType, ServedVersions

VERSION_INFO = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.0-lab", "gitCommit": "0" * 40, "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64",
}
_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def _storage_hash(rtype: ResourceType) -> str:
    digest = hashlib.sha256(f"{rtype.group}/{rtype.versions[0]}/{rtype.kind}".encode()).digest()
    return digest[:8].hex()


def _entries(rtype: ResourceType) -> list[dict]:
    entry = {
        "name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced, "kind": rtype.kind,
        "verbs": sorted(rtype.verbs), "storageVersionHash": _storage_hash(rtype),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entries = [entry]
    for sub in rtype.subresources:
        sub_entry = {"name": f"{rtype.plural}/{sub}", "singularName": "", "namespaced": rtype.namespaced,
                     "kind": rtype.kind, "verbs": list(_SUBRESOURCE_VERBS)}
        if sub == "scale":
            sub_entry.update({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        entries.append(sub_entry)
    return entries


def resource_list(group: str, version: str, served: ServedVersions = DEFAULT_SERVED) -> dict | None:
    types = served.types_in(group, version)
    if not types:
        return None
    resources = [entry for rtype in types for entry in _entries(rtype)]
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(group: str, served: ServedVersions = DEFAULT_SERVED) -> dict | None:
    versions = served.of_group(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(served: ServedVersions = DEFAULT_SERVED) -> dict:
    groups = []
    for group in served.groups():
        document = api_group(group, served)
        if document:
            del document["kind"], document["apiVersion"]
            groups.append(document)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

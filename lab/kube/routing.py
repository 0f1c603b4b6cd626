"""Map request paths to discovery documents or to a resource, namespace, name and subresource."""
from __future__ import annotations

from dataclasses import dataclass

from lab.kube.resources import DEFAULT_SERVED, ResourceType, ServedVersions


@dataclass(frozen=True)
class ResourceRoute:
    rtype: ResourceType
    version: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def api_version(self) -> str:
        return self.rtype.api_version(self.version)


@dataclass(frozen=True)
class DiscoveryRoute:
    document: str            # "version", "api", "apis", "group", "resources", "health"
    group: str = ""
    version: str = ""


class UnknownPath(Exception):
    """The server could not find the requested resource."""


def route(path: str, served: ServedVersions = DEFAULT_SERVED) -> ResourceRoute | DiscoveryRoute:
    segments = [segment for segment in path.split("/") if segment]
    if path in ("/version", "/version/"):
        return DiscoveryRoute("version")
    if segments and segments[0] in ("healthz", "livez", "readyz"):
        return DiscoveryRoute("health")
    if segments[:1] == ["api"]:
        if len(segments) == 1:
            return DiscoveryRoute("api")
        if segments[1] != "v1":
            raise UnknownPath(path)
        if len(segments) == 2:
            return DiscoveryRoute("resources", "", "v1")
        return _resource_route(served, "", "v1", segments[2:], path)
    if segments[:1] == ["apis"]:
        if len(segments) == 1:
            return DiscoveryRoute("apis")
        group = segments[1]
        versions = served.of_group(group)
        if not versions:
            raise UnknownPath(path)
        if len(segments) == 2:
            return DiscoveryRoute("group", group)
        version = segments[2]
        if version not in versions:
            raise UnknownPath(path)
        if len(segments) == 3:
            return DiscoveryRoute("resources", group, version)
        return _resource_route(served, group, version, segments[3:], path)
    raise UnknownPath(path)


def _lookup(served: ServedVersions, group: str, version: str, plural: str, path: str) -> ResourceType:
    rtype = served.lookup(group, version, plural)
    if rtype is None:
        raise UnknownPath(path)
    return rtype


def _resource_route(served: ServedVersions, group: str, version: str, rest: list[str], path: str) -> ResourceRoute:
    if rest[0] == "namespaces" and len(rest) >= 3 and group == "" and rest[2] != "status" and rest[2] != "finalize":
        rest_in_ns = rest[2:]
        rtype = _lookup(served, group, version, rest_in_ns[0], path)
        if not rtype.namespaced or len(rest_in_ns) > 3:
            raise UnknownPath(path)
        return _with_name(rtype, version, rest[1], rest_in_ns[1:], path)
    if rest[0] == "namespaces" and len(rest) >= 3 and group != "":
        rtype = _lookup(served, group, version, rest[2], path)
        if not rtype.namespaced or len(rest) > 5:
            raise UnknownPath(path)
        return _with_name(rtype, version, rest[1], rest[3:], path)
    rtype = _lookup(served, group, version, rest[0], path)
    if len(rest) > 3 or (rtype.namespaced and len(rest) > 1):
        raise UnknownPath(path)
    return _with_name(rtype, version, None, rest[1:], path)


def _with_name(rtype: ResourceType, version: str, namespace: str | None, rest: list[str], path: str) -> ResourceRoute:
    name = rest[0] if rest else None
    subresource = rest[1] if len(rest) > 1 else None
    if subresource is not None and subresource not in rtype.subresources:
        raise UnknownPath(path)
    return ResourceRoute(rtype, version, namespace, name, subresource)

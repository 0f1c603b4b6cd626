"""The resource types the emulated API server serves, with their discovery facts."""
from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str                      # "" for the core group
    versions: tuple[str, ...]       # served versions, preferred first
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    builtin: bool = True            # built-in kinds accept strategic merge patch; custom resources do not
    create_on_update: bool = False  # PUT of a missing object creates it (leases, events)
    status_subresource: bool = False
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def qualified(self) -> str:
        """The group-qualified resource name used in API messages, e.g. deployments.apps."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version

    @property
    def storage_api_version(self) -> str:
        return self.api_version(self.versions[0])

    @property
    def writable(self) -> bool:
        return "create" in self.verbs


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "namespaces", "namespace", "Namespace", namespaced=False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"), subresources=("status",),
                 status_subresource=True),
    ResourceType("", ("v1",), "services", "service", "Service", short_names=("svc",), subresources=("status",),
                 status_subresource=True, categories=("all",)),
    ResourceType("", ("v1",), "configmaps", "configmap", "ConfigMap", short_names=("cm",)),
    ResourceType("", ("v1",), "secrets", "secret", "Secret"),
    ResourceType("", ("v1",), "events", "event", "Event", short_names=("ev",), create_on_update=True),
    ResourceType("", ("v1",), "pods", "pod", "Pod", short_names=("po",), verbs=READ_VERBS, subresources=("status",),
                 categories=("all",)),
    ResourceType("apps", ("v1",), "deployments", "deployment", "Deployment", short_names=("deploy",),
                 subresources=("scale", "status"), status_subresource=True, categories=("all",)),
    ResourceType("coordination.k8s.io", ("v1",), "leases", "lease", "Lease", create_on_update=True),
    ResourceType("autoscaling", ("v2",), "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", short_names=("hpa",), subresources=("status",), status_subresource=True,
                 categories=("all",)),
    ResourceType("networking.istio.io", ("v1", "v1beta1"), "virtualservices", "virtualservice", "VirtualService",
                 short_names=("vs",), subresources=("status",), categories=("istio-io", "networking-istio-io"),
                 builtin=False, status_subresource=True),
    ResourceType("networking.istio.io", ("v1", "v1beta1"), "destinationrules", "destinationrule", "DestinationRule",
                 short_names=("dr",), subresources=("status",), categories=("istio-io", "networking-istio-io"),
                 builtin=False, status_subresource=True),
)

BY_PLURAL: dict[str, ResourceType] = {rtype.plural: rtype for rtype in RESOURCE_TYPES}

# Group versions served, in the order discovery lists them.
GROUPS: dict[str, tuple[str, ...]] = {}
for _rtype in RESOURCE_TYPES:
    if _rtype.group:
        known = GROUPS.setdefault(_rtype.group, ())
        GROUPS[_rtype.group] = known + tuple(v for v in _rtype.versions if v not in known)


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    rtype = BY_PLURAL.get(plural)
    if rtype is None or rtype.group != group or version not in rtype.versions:
        return None
    return rtype


def types_in(group: str, version: str) -> list[ResourceType]:
    return [rtype for rtype in RESOURCE_TYPES if rtype.group == group and version in rtype.versions]

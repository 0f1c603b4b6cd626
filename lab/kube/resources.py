"""The resource types the emulated API server serves, with their discovery facts."""
from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
ISTIO_GROUP = "networking.istio.io"
# Every version of Istio's networking API the lab can serve, preferred first. Istio before 1.22 serves no v1.
ISTIO_VERSIONS = ("v1", "v1beta1")
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
    # DELETE answers the deleted object instead of a Status Success, as the API server's storage of this resource
    # does (pods, services, namespaces); custom resources and most built-ins answer a Status.
    returns_deleted_object: bool = False
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
                 status_subresource=True, returns_deleted_object=True),
    ResourceType("", ("v1",), "services", "service", "Service", short_names=("svc",), subresources=("status",),
                 status_subresource=True, categories=("all",), returns_deleted_object=True),
    ResourceType("", ("v1",), "configmaps", "configmap", "ConfigMap", short_names=("cm",)),
    ResourceType("", ("v1",), "secrets", "secret", "Secret"),
    ResourceType("", ("v1",), "events", "event", "Event", short_names=("ev",), create_on_update=True),
    ResourceType("", ("v1",), "pods", "pod", "Pod", short_names=("po",), verbs=READ_VERBS, subresources=("status",),
                 categories=("all",), returns_deleted_object=True),
    ResourceType("apps", ("v1",), "deployments", "deployment", "Deployment", short_names=("deploy",),
                 subresources=("scale", "status"), status_subresource=True, categories=("all",)),
    ResourceType("coordination.k8s.io", ("v1",), "leases", "lease", "Lease", create_on_update=True),
    ResourceType("autoscaling", ("v2",), "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", short_names=("hpa",), subresources=("status",), status_subresource=True,
                 categories=("all",)),
    ResourceType(ISTIO_GROUP, ISTIO_VERSIONS, "virtualservices", "virtualservice", "VirtualService",
                 short_names=("vs",), subresources=("status",), categories=("istio-io", "networking-istio-io"),
                 builtin=False, status_subresource=True),
    ResourceType(ISTIO_GROUP, ISTIO_VERSIONS, "destinationrules", "destinationrule", "DestinationRule",
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
    return DEFAULT_SERVED.lookup(group, version, plural)


def types_in(group: str, version: str) -> list[ResourceType]:
    return DEFAULT_SERVED.types_in(group, version)


class ServedVersions:
    """The group versions one API server serves; Istio's can be narrowed while it runs.

    Objects keep one stored form whatever is served, so switching versions
    neither loses nor converts anything.
    """

    def __init__(self, istio_versions: tuple[str, ...] | list[str] = ISTIO_VERSIONS) -> None:
        self._istio = self.checked_istio_versions(istio_versions)

    @staticmethod
    def checked_istio_versions(versions: object) -> tuple[str, ...]:
        if isinstance(versions, str) or not isinstance(versions, (list, tuple)):
            raise ValueError(f"Istio versions must be a list of versions out of {list(ISTIO_VERSIONS)}, "
                             f"got {versions!r}")
        chosen = tuple(versions)
        unknown = [version for version in chosen if version not in ISTIO_VERSIONS]
        if not chosen or unknown or len(set(chosen)) != len(chosen):
            raise ValueError(f"Istio versions must be a non-empty list without repeats out of "
                             f"{list(ISTIO_VERSIONS)} (preferred first), got {list(chosen)!r}")
        return chosen

    @property
    def istio(self) -> tuple[str, ...]:
        return self._istio

    def set_istio(self, versions: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        # One tuple assignment: request threads see the old or the new set, never a mix.
        self._istio = self.checked_istio_versions(versions)
        return self._istio

    def of_type(self, rtype: ResourceType) -> tuple[str, ...]:
        return self._istio if rtype.group == ISTIO_GROUP else rtype.versions

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Named groups and their served versions, preferred first, in the order discovery lists them."""
        return {group: (self._istio if group == ISTIO_GROUP else versions) for group, versions in GROUPS.items()}

    def of_group(self, group: str) -> tuple[str, ...]:
        if group == ISTIO_GROUP:
            return self._istio
        return GROUPS.get(group, ())

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = BY_PLURAL.get(plural)
        if rtype is None or rtype.group != group or version not in self.of_type(rtype):
            return None
        return rtype

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return [rtype for rtype in RESOURCE_TYPES if rtype.group == group and version in self.of_type(rtype)]


DEFAULT_SERVED = ServedVersions()

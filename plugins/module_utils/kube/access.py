# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a release needs the API server to allow, and the check that asks before anything changes.

``REQUIRED_ACCESS`` is the ClusterRole of docs/rbac.yml, rule by rule. A run
checks every verb of it when it takes the lock, so missing permissions are named
all at once instead of surfacing as a 403 half-way through a release. One
SelfSubjectRulesReview lists what the run may do in the namespace; only the verbs
it does not show as allowed are asked about one by one (SelfSubjectAccessReview),
since a rules review may leave out what other authorizers than RBAC allow. A run
with the documented role thus costs the API server one request, not 39. A release routed with the
Gateway API needs the ClusterRole progressive-delivery-gatewayapi instead of
the Istio rule (``required_access``), so neither kind of cluster is asked for
the other's API.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError

REVIEWS = ("authorization.k8s.io/v1", "selfsubjectaccessreviews")
RULES_REVIEWS = ("authorization.k8s.io/v1", "selfsubjectrulesreviews")


class Permission(NamedTuple):
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str


REQUIRED_ACCESS: tuple[Permission, ...] = (
    Permission("apps", ("deployments",), ("get", "list", "watch", "create", "update", "patch"),
               "the target, the primary copy and the canary's replicas"),
    Permission("", ("configmaps", "secrets", "services"), ("get", "list", "create", "update", "patch"),
               "-primary copies of ConfigMaps and Secrets, the state ConfigMap and the generated Services"),
    Permission("", ("events",), ("create", "patch"), "the Events that tell the release's story"),
    Permission("coordination.k8s.io", ("leases",), ("get", "create", "update"), "one run per canary"),
    Permission("networking.istio.io", ("virtualservices", "destinationrules"), ("get", "list", "create", "update", "patch"),
               "the routing the canary creates and the weights it moves"),
    Permission("autoscaling", ("horizontalpodautoscalers",), ("get", "create", "update"),
               "the -primary copy of the target's autoscaler"),
)
ROLE = "progressive-delivery"

# The ClusterRole progressive-delivery-gatewayapi of docs/rbac.yml, for canaries whose provider is gatewayapi.
GATEWAY_API_ACCESS: tuple[Permission, ...] = (
    Permission("gateway.networking.k8s.io", ("httproutes",), ("get", "list", "create", "update", "patch"),
               "the HTTPRoute the canary creates or adopts and the weights it moves"),
)
GATEWAY_API_ROLE = "progressive-delivery-gatewayapi"
_ISTIO_GROUP = "networking.istio.io"


def required_access(provider: str = "istio") -> tuple[Permission, ...]:
    """What a release routed by ``provider`` (istio or gatewayapi) needs; only its own router's API is asked about."""
    if provider == "gatewayapi":
        return tuple(p for p in REQUIRED_ACCESS if p.group != _ISTIO_GROUP) + GATEWAY_API_ACCESS
    return REQUIRED_ACCESS


# The ClusterRole progressive-delivery-delete of docs/rbac.yml: only canary_step action=delete (playbooks/delete.yml)
# removes objects, so a release never needs it.
DELETE_ACCESS: tuple[Permission, ...] = (
    Permission("apps", ("deployments",), ("delete",), "the primary copy"),
    Permission("", ("configmaps", "secrets", "services"), ("delete",),
               "-primary copies of ConfigMaps and Secrets, the state ConfigMap and the -primary/-canary Services"),
    Permission("coordination.k8s.io", ("leases",), ("delete",), "the canary's lock"),
    Permission("networking.istio.io", ("destinationrules",), ("delete",), "the -primary/-canary DestinationRules"),
    Permission("autoscaling", ("horizontalpodautoscalers",), ("delete",), "the -primary copy of the autoscaler"),
)
DELETE_ROLE = "progressive-delivery-delete"


def qualified(resource: str, group: str) -> str:
    return "%s.%s" % (resource, group) if group else resource


def review_body(namespace: str, group: str, resource: str, verb: str) -> dict[str, Any]:
    return {"apiVersion": REVIEWS[0], "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": namespace, "group": group, "resource": resource, "verb": verb}}}


def _matches(granted: Any, wanted: str) -> bool:
    return "*" in (granted or ()) or wanted in (granted or ())


def listed_as_allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether a rule of a SelfSubjectRulesReview allows ``verb`` on every object of ``resource``.

    A rule limited to some objects (resourceNames) allows less than a release needs, so it does not count.
    """
    return any(not rule.get("resourceNames") and _matches(rule.get("apiGroups"), group)
               and _matches(rule.get("resources"), resource) and _matches(rule.get("verbs"), verb)
               for rule in rules)


def allowed_rules(client: Any, namespace: str) -> list[dict[str, Any]]:
    """The resource rules the API server lists for this run's credentials in ``namespace``; none when it cannot."""
    try:
        review = client.create(RULES_REVIEWS[0], RULES_REVIEWS[1], {
            "apiVersion": RULES_REVIEWS[0], "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}})
    except KubeApiError:
        # Asked verb by verb instead, which says whether the API server can be asked at all.
        return []
    return list((review.get("status") or {}).get("resourceRules") or [])


def missing_access(client: Any, namespace: str, required: tuple[Permission, ...] = REQUIRED_ACCESS) -> list[str]:
    """``"<verbs> <resource>"`` for every resource some required verb is not allowed on, in table order.

    Raises KubeApiError when the API server does not answer the reviews.
    """
    rules = allowed_rules(client, namespace)

    def allowed(group: str, resource: str, verb: str) -> bool:
        return listed_as_allowed(rules, group, resource, verb) or bool(
            (client.create(REVIEWS[0], REVIEWS[1], review_body(namespace, group, resource, verb)).get("status") or {})
            .get("allowed"))

    missing = []
    for permission in required:
        for resource in permission.resources:
            denied = [verb for verb in permission.verbs if not allowed(permission.group, resource, verb)]
            if denied:
                missing.append("%s %s" % (", ".join(denied), qualified(resource, permission.group)))
    return missing


def access_message(missing: list[str], namespace: str, role: str = ROLE) -> str:
    """``role`` names the ClusterRole to grant; a Gateway API release that lacks only HTTPRoute access is sent to its own."""
    if role == ROLE and missing and all(m.endswith(".gateway.networking.k8s.io") for m in missing):
        role = GATEWAY_API_ROLE
    elif role == ROLE and any(m.endswith(".gateway.networking.k8s.io") for m in missing):
        role = "%s and %s" % (ROLE, GATEWAY_API_ROLE)
    return ("The credentials of this run may not %s in namespace %s: the API server would answer 403 Forbidden part-way "
            "through the %s. Grant what docs/rbac.yml lists (ClusterRole %s) and run again; "
            "nothing was changed." % ("; ".join(missing), namespace, "deletion" if role == DELETE_ROLE else "release", role))


def checked_access(client: Any, namespace: str,
                   required: tuple[Permission, ...] = REQUIRED_ACCESS) -> tuple[list[str], str | None]:
    """(missing permissions, a warning when the API server could not be asked)."""
    try:
        return missing_access(client, namespace, required), None
    except KubeApiError as exc:
        return [], ("Could not check this run's permissions in namespace %s (%s); going on without the check."
                    % (namespace, exc))

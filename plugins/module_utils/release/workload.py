# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The primary copy of a Deployment, its config references, revision hashing and readiness.

Pure functions over plain API dicts: nothing here talks to a cluster.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import PRIMARY_SUFFIX, primary_name

# Checked in this order, the first one present in spec.selector.matchLabels wins.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
REVISION_ANNOTATION = "progressive.delivery/revision"
CONFIG_CONTENT_FIELDS = ("data", "binaryData")
# Registry and service-account secrets belong to the cluster, not to a release.
TRACKED_SECRET_TYPES = frozenset(["Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"])
# Annotations that describe how the target was applied, not what it runs.
UNCOPIED_ANNOTATIONS = frozenset([
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
])
COPIED_SPEC_FIELDS = ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy")


class WorkloadError(DeliveryError):
    """A target that cannot be turned into a canary, explained for a person."""


def selector_label(deployment: dict[str, Any]) -> tuple[str, str]:
    """The selector label that tells primary pods from canary pods, and its value."""
    metadata = deployment.get("metadata") or {}
    match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in SELECTOR_LABELS:
        if match_labels.get(label):
            return label, match_labels[label]
    raise WorkloadError(
        "Deployment %s/%s has no usable selector label: spec.selector.matchLabels must contain one of %s "
        "(found %s). Add e.g. 'app: %s' to the selector and the pod template labels."
        % (metadata.get("namespace"), metadata.get("name"), ", ".join(SELECTOR_LABELS),
           json.dumps(match_labels, sort_keys=True) if match_labels else "none", metadata.get("name")))


def primary_labels(labels: dict[str, str] | None, label: str, primary_value: str) -> dict[str, str]:
    """``labels`` with the selector label pointing at the primary pods."""
    rewritten = {key: value for key, value in (labels or {}).items() if key != label}
    rewritten[label] = primary_value
    return rewritten


@dataclass
class ConfigRefs:
    """Names of the ConfigMaps and Secrets a pod spec reads."""

    configmaps: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)


def _containers(pod_spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for key in ("initContainers", "containers"):
        yield from pod_spec.get(key) or []


def collect_config_refs(pod_spec: dict[str, Any]) -> ConfigRefs:
    """Every ConfigMap and Secret referenced by volumes, projected volumes, env valueFrom and envFrom."""
    refs = ConfigRefs()
    for volume in pod_spec.get("volumes") or []:
        if (volume.get("configMap") or {}).get("name"):
            refs.configmaps.add(volume["configMap"]["name"])
        if (volume.get("secret") or {}).get("secretName"):
            refs.secrets.add(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("configMap") or {}).get("name"):
                refs.configmaps.add(source["configMap"]["name"])
            if (source.get("secret") or {}).get("name"):
                refs.secrets.add(source["secret"]["name"])
    for container in _containers(pod_spec):
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if (value_from.get("configMapKeyRef") or {}).get("name"):
                refs.configmaps.add(value_from["configMapKeyRef"]["name"])
            if (value_from.get("secretKeyRef") or {}).get("name"):
                refs.secrets.add(value_from["secretKeyRef"]["name"])
        for env_from in container.get("envFrom") or []:
            if (env_from.get("configMapRef") or {}).get("name"):
                refs.configmaps.add(env_from["configMapRef"]["name"])
            if (env_from.get("secretRef") or {}).get("name"):
                refs.secrets.add(env_from["secretRef"]["name"])
    return refs


def _rename(ref: dict[str, Any] | None, key: str, tracked: set[str], suffix: str) -> None:
    if ref and ref.get(key) in tracked:
        ref[key] = ref[key] + suffix


def rename_config_refs(pod_spec: dict[str, Any], tracked: ConfigRefs, suffix: str = PRIMARY_SUFFIX) -> dict[str, Any]:
    """A copy of ``pod_spec`` whose tracked ConfigMap/Secret references point at the ``-primary`` copies."""
    renamed = copy.deepcopy(pod_spec)
    for volume in renamed.get("volumes") or []:
        _rename(volume.get("configMap"), "name", tracked.configmaps, suffix)
        _rename(volume.get("secret"), "secretName", tracked.secrets, suffix)
        for source in (volume.get("projected") or {}).get("sources") or []:
            _rename(source.get("configMap"), "name", tracked.configmaps, suffix)
            _rename(source.get("secret"), "name", tracked.secrets, suffix)
    for container in _containers(renamed):
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            _rename(value_from.get("configMapKeyRef"), "name", tracked.configmaps, suffix)
            _rename(value_from.get("secretKeyRef"), "name", tracked.secrets, suffix)
        for env_from in container.get("envFrom") or []:
            _rename(env_from.get("configMapRef"), "name", tracked.configmaps, suffix)
            _rename(env_from.get("secretRef"), "name", tracked.secrets, suffix)
    return renamed


def is_tracked_secret(secret: dict[str, Any]) -> bool:
    return (secret.get("type") or "Opaque") in TRACKED_SECRET_TYPES


def stable_hash(data: Any) -> str:
    """A short hash that only depends on content (key order and whitespace do not matter)."""
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def config_checksum(obj: dict[str, Any]) -> str:
    return stable_hash({"data": obj.get("data") or {}, "binaryData": obj.get("binaryData") or {}})


def config_checksums(configmaps: Iterable[dict[str, Any]], secrets: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``{"configmap/<name>": hash, "secret/<name>": hash}`` for the objects a pod reads."""
    checksums = {}
    for configmap in configmaps:
        checksums["configmap/" + configmap["metadata"]["name"]] = config_checksum(configmap)
    for secret in secrets:
        checksums["secret/" + secret["metadata"]["name"]] = config_checksum(secret)
    return checksums


def revision_checksum(pod_template: dict[str, Any], checksums: dict[str, str]) -> str:
    """The identity of a release: the pod template (metadata and spec) and the data of the configs it reads."""
    template = copy.deepcopy(pod_template or {})
    annotations = (template.get("metadata") or {}).get("annotations")
    if annotations:
        annotations.pop(REVISION_ANNOTATION, None)
    return stable_hash({"template": template, "configs": checksums})


def _copied_annotations(annotations: dict[str, str] | None) -> dict[str, str]:
    return {key: value for key, value in (annotations or {}).items() if key not in UNCOPIED_ANNOTATIONS}


def primary_template(target: dict[str, Any], label: str, primary_value: str, tracked: ConfigRefs,
                     checksum: str) -> dict[str, Any]:
    """The target's pod template as the primary runs it."""
    template = (target.get("spec") or {}).get("template") or {}
    metadata = template.get("metadata") or {}
    annotations = dict(metadata.get("annotations") or {})
    # The revision annotation changes the template when only config data changed,
    # so the primary's pods restart and read the new -primary configs.
    annotations[REVISION_ANNOTATION] = checksum
    return {
        "metadata": {
            "labels": primary_labels(metadata.get("labels"), label, primary_value),
            "annotations": annotations,
        },
        "spec": rename_config_refs(template.get("spec") or {}, tracked),
    }


def build_primary(target: dict[str, Any], namespace: str, canary: str, label: str, value: str,
                  tracked: ConfigRefs, checksum: str) -> dict[str, Any]:
    """The ``<target>-primary`` Deployment created at initialization."""
    metadata = target.get("metadata") or {}
    spec = target.get("spec") or {}
    replicas = spec.get("replicas")
    primary_value = primary_name(value)
    primary_spec: dict[str, Any] = {
        "replicas": replicas if isinstance(replicas, int) and replicas > 0 else 1,
        "selector": {"matchLabels": {label: primary_value}},
        "template": primary_template(target, label, primary_value, tracked, checksum),
    }
    for key in COPIED_SPEC_FIELDS:
        if key in spec:
            primary_spec[key] = copy.deepcopy(spec[key])
    primary = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": primary_name(metadata["name"]),
            "namespace": namespace,
            "labels": primary_labels(metadata.get("labels"), label, primary_value),
            "annotations": _copied_annotations(metadata.get("annotations")),
        },
        "spec": primary_spec,
    }
    return mark(primary, namespace, canary)


def promoted_primary(primary: dict[str, Any], target: dict[str, Any], label: str, value: str, tracked: ConfigRefs,
                     checksum: str) -> dict[str, Any]:
    """The existing primary carrying the target's template and rollout settings (replicas untouched)."""
    updated = copy.deepcopy(primary)
    spec = updated.setdefault("spec", {})
    target_spec = target.get("spec") or {}
    for key in COPIED_SPEC_FIELDS:
        if key in target_spec:
            spec[key] = copy.deepcopy(target_spec[key])
        else:
            spec.pop(key, None)
    spec["template"] = primary_template(target, label, primary_name(value), tracked, checksum)
    return updated


def with_template(deployment: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    updated = copy.deepcopy(deployment)
    updated.setdefault("spec", {})["template"] = copy.deepcopy(template)
    return updated


def template_differs(deployment: dict[str, Any], template: dict[str, Any]) -> bool:
    current = (deployment.get("spec") or {}).get("template") or {}
    return _template_view(current) != _template_view(template)


def _template_view(template: dict[str, Any]) -> dict[str, Any]:
    metadata = template.get("metadata") or {}
    return {"labels": metadata.get("labels") or {}, "annotations": metadata.get("annotations") or {},
            "spec": template.get("spec") or {}}


def updated_target(target: dict[str, Any], image: str | None, container: str | None,
                   pod_annotations: dict[str, str] | None) -> dict[str, Any] | None:
    """The target with a new image and/or pod template annotations; None when it already has them."""
    updated = copy.deepcopy(target)
    template = updated.setdefault("spec", {}).setdefault("template", {})
    containers = template.setdefault("spec", {}).get("containers") or []
    if image:
        chosen = [c for c in containers if c.get("name") == container] if container else containers[:1]
        if not chosen:
            names = ", ".join(c.get("name", "?") for c in containers) or "none"
            raise WorkloadError("Deployment %s/%s has no container named '%s' (containers: %s): set 'container' to one "
                                "of them" % ((target.get("metadata") or {}).get("namespace"),
                                             (target.get("metadata") or {}).get("name"), container, names))
        chosen[0]["image"] = image
    if pod_annotations:
        metadata = template.setdefault("metadata", {})
        annotations = dict(metadata.get("annotations") or {})
        annotations.update({key: str(value) for key, value in pod_annotations.items()})
        metadata["annotations"] = annotations
    return None if updated == target else updated


def primary_config_copy(obj: dict[str, Any], kind: str, namespace: str, canary: str) -> dict[str, Any]:
    """The ``-primary`` copy of a ConfigMap or Secret the target reads."""
    metadata = obj.get("metadata") or {}
    copied: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": primary_name(metadata["name"]),
            "namespace": namespace,
            "labels": dict(metadata.get("labels") or {}),
        },
    }
    for key in ("data", "binaryData"):
        if obj.get(key):
            copied[key] = copy.deepcopy(obj[key])
    if kind == "Secret":
        copied["type"] = obj.get("type") or "Opaque"
    return mark(copied, namespace, canary)


def config_content_differs(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    return any((existing.get(key) or {}) != (desired.get(key) or {}) for key in CONFIG_CONTENT_FIELDS)


def config_content(obj: dict[str, Any]) -> dict[str, Any]:
    """The data of a ConfigMap or Secret, without its metadata."""
    return {key: copy.deepcopy(obj[key]) for key in CONFIG_CONTENT_FIELDS if obj.get(key)}


def with_config_content(existing: dict[str, Any], content: dict[str, Any]) -> dict[str, Any] | None:
    """``existing`` holding exactly ``content``; None when it already does."""
    if not config_content_differs(existing, content):
        return None
    updated = copy.deepcopy(existing)
    for key in CONFIG_CONTENT_FIELDS:
        updated.pop(key, None)
        if content.get(key):
            updated[key] = copy.deepcopy(content[key])
    return updated


def config_backup_secret(name: str, contents: dict[str, dict[str, Any]], namespace: str, canary: str) -> dict[str, Any]:
    """A Secret keeping the data of Secrets by name, one key each, so it never has to sit in a ConfigMap."""
    data = {}
    for secret_name, content in sorted(contents.items()):
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
        data[secret_name] = base64.b64encode(encoded).decode("ascii")
    backup = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": name, "namespace": namespace}, "data": data}
    return mark(backup, namespace, canary)


def read_config_backup(secret: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The contents ``config_backup_secret`` stored, by Secret name; unreadable entries are left out."""
    contents: dict[str, dict[str, Any]] = {}
    for secret_name, encoded in (secret.get("data") or {}).items():
        try:
            content = json.loads(base64.b64decode(encoded).decode("utf-8"))
        except ValueError:
            continue
        if isinstance(content, dict):
            contents[secret_name] = content
    return contents


def primary_hpa(hpa: dict[str, Any], primary_deployment: str, namespace: str, canary: str) -> dict[str, Any]:
    """A copy of the target's HorizontalPodAutoscaler that scales the primary instead."""
    metadata = hpa.get("metadata") or {}
    spec = copy.deepcopy(hpa.get("spec") or {})
    scale_target = dict(spec.get("scaleTargetRef") or {})
    scale_target["name"] = primary_deployment
    spec["scaleTargetRef"] = scale_target
    copied = {
        "apiVersion": hpa.get("apiVersion") or "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": primary_name(metadata["name"]), "namespace": namespace,
                     "labels": dict(metadata.get("labels") or {})},
        "spec": spec,
    }
    return mark(copied, namespace, canary)


def canary_replicas(target: dict[str, Any] | None, primary: dict[str, Any] | None, hpa: dict[str, Any] | None) -> int:
    """How many canary pods to start: the target's replicas, else the primary's, else the HPA minimum, else 1."""
    for deployment in (target, primary):
        replicas = ((deployment or {}).get("spec") or {}).get("replicas")
        if isinstance(replicas, int) and replicas > 0:
            return replicas
    minimum = ((hpa or {}).get("spec") or {}).get("minReplicas")
    if isinstance(minimum, int) and minimum > 0:
        return minimum
    return 1


@dataclass
class Readiness:
    ready: bool
    failed: bool
    message: str


def ready_threshold_replicas(updated: int, threshold: int) -> int:
    """How many of ``updated`` replicas must be available for ``threshold`` percent, rounded down as Flagger does."""
    return (updated * threshold) // 100


def evaluate_readiness(deployment: dict[str, Any], threshold: int = 100) -> Readiness:
    """Whether a Deployment's rollout is complete, still going, or stuck past its progress deadline.

    ``threshold`` is Flagger's primaryReadyThreshold / canaryReadyThreshold: the percent of the updated replicas
    that must be available. Every replica must still be updated and no old one left, whatever the threshold.
    """
    metadata = deployment.get("metadata") or {}
    name = "%s/%s" % (metadata.get("namespace"), metadata.get("name"))
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = metadata.get("generation") or 0
    observed = status.get("observedGeneration") or 0
    if generation > observed:
        return Readiness(False, False, "Deployment %s: waiting for the controller to observe generation %s (observed %s)"
                         % (name, generation, observed))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Readiness(False, True, "Deployment %s exceeded its progress deadline (%ss): %s"
                             % (name, spec.get("progressDeadlineSeconds", 600),
                                condition.get("message") or "pods did not become ready"))
    desired = spec.get("replicas")
    desired = 1 if desired is None else desired
    updated = status.get("updatedReplicas") or 0
    current = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < desired:
        return Readiness(False, False, "Deployment %s: waiting for rollout to finish: %s out of %s new replicas have been updated"
                         % (name, updated, desired))
    if current > updated:
        return Readiness(False, False, "Deployment %s: waiting for rollout to finish: %s old replicas are pending termination"
                         % (name, current - updated))
    needed = ready_threshold_replicas(updated, threshold)
    share = "" if threshold >= 100 else " (ready threshold %s%%: %s needed)" % (threshold, needed)
    if available < needed:
        return Readiness(False, False, "Deployment %s: waiting for rollout to finish: %s of %s updated replicas are available%s"
                         % (name, available, updated, share))
    return Readiness(True, False, "Deployment %s is ready: %s of %s replicas available%s" % (name, available, desired, share))

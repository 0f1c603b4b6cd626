"""Defaulting and validation of objects, as the API server applies them before storing."""
from __future__ import annotations

import base64
import binascii
import datetime
import itertools
import re
import threading

from lab.kube import status as st
from lab.kube.resources import ResourceType
from lab.kube.selectors import is_valid_label_key, label_selector_matches

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
LABEL_NAME_KINDS = frozenset({"namespaces", "services"})
SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


class DecodeError(ValueError):
    """The body does not fit the kind's Go types; the API server answers 400 BadRequest."""


def name_problem(name: str, label: bool) -> str | None:
    if label:
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if _DNS1123_LABEL.match(name) else LABEL_MESSAGE
    if len(name) > 253:
        return "must be no more than 253 characters"
    return None if _DNS1123_SUBDOMAIN.match(name) else SUBDOMAIN_MESSAGE


class ClusterIPAllocator:
    def __init__(self) -> None:
        self._next = itertools.count(10)
        self._lock = threading.Lock()

    def allocate(self) -> str:
        with self._lock:
            index = next(self._next)
        return f"10.96.{index // 250}.{index % 250 + 1}"


def _expect(value: object, kinds: type | tuple[type, ...], field: str, go_type: str, owner: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) and kinds in (int, (int,)):
        raise DecodeError(f"json: cannot unmarshal bool into Go struct field {owner}.{field} of type {go_type}")
    if not isinstance(value, kinds):
        found = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")
        raise DecodeError(f"json: cannot unmarshal {found} into Go struct field {owner}.{field} of type {go_type}")


def _check_object_meta(obj: dict, errors: list[st.FieldError], name_is_label: bool) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        errors.append(st.FieldError("Required", "metadata.name", "name or generateName is required"))
    else:
        problem = name_problem(name, name_is_label)
        if problem:
            errors.append(st.FieldError("Invalid", "metadata.name", problem, name))
    for field in ("labels", "annotations"):
        _expect(meta.get(field), dict, f"metadata.{field}", "map[string]string", "ObjectMeta")
        for key, value in (meta.get(field) or {}).items():
            _expect(value, str, f"metadata.{field}", "map[string]string", "ObjectMeta")
            if not is_valid_label_key(key) or len(key.split("/")[-1]) > 63:
                errors.append(st.FieldError("Invalid", f"metadata.{field}", "name part must consist of alphanumeric "
                                            "characters, '-', '_' or '.', and must start and end with an "
                                            "alphanumeric character", key))
            elif field == "labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                errors.append(st.FieldError("Invalid", "metadata.labels", "a valid label must be an empty string or "
                                            "consist of alphanumeric characters, '-', '_' or '.', and must start "
                                            "and end with an alphanumeric character", value))


# ---------------------------------------------------------------- defaults
def _default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        image = container.get("image") or ""
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _default_deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    if isinstance(template.get("spec"), dict):
        _default_pod_spec(template["spec"])


def _default_service(obj: dict, allocator: ClusterIPAllocator, existing: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        old_spec = (existing or {}).get("spec") or {}
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or allocator.allocate()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {"loadBalancer": {}})


def _canonical_micro_time(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"json: cannot unmarshal {type(value).__name__} into Go struct field LeaseSpec.{field} "
                          "of type metav1.MicroTime")
    text = value.replace("Z", "+00:00")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse') from None
    if moment.tzinfo is None:
        raise DecodeError(f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": missing time zone')
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default_secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        _expect(string_data, dict, "stringData", "map[string]string", "Secret")
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            _expect(value, str, "stringData", "map[string]string", "Secret")
            data[key] = base64.b64encode(value.encode()).decode()


# -------------------------------------------------------------- validation
def _validate_deployment(obj: dict, existing: dict | None, errors: list[st.FieldError]) -> None:
    spec = obj.get("spec")
    _expect(spec, dict, "spec", "v1.DeploymentSpec", "Deployment")
    spec = spec or {}
    _expect(spec.get("replicas"), int, "spec.replicas", "int32", "DeploymentSpec")
    _expect(spec.get("selector"), dict, "spec.selector", "v1.LabelSelector", "DeploymentSpec")
    _expect(spec.get("template"), dict, "spec.template", "v1.PodTemplateSpec", "DeploymentSpec")
    _expect(spec.get("progressDeadlineSeconds"), int, "spec.progressDeadlineSeconds", "int32", "DeploymentSpec")
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(st.FieldError("Invalid", "spec.replicas", "must be greater than or equal to 0", replicas))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        errors.append(st.FieldError("Required", "spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.append(st.FieldError("Invalid", "spec.selector", "empty selector is invalid for deployment",
                                    selector, show_value=False))
    elif not label_selector_matches(selector, template_labels):
        errors.append(st.FieldError("Invalid", "spec.template.metadata.labels",
                                    "`selector` does not match template `labels`", template_labels))
    if existing is not None and selector and selector != (existing.get("spec") or {}).get("selector"):
        errors.append(st.FieldError("Invalid", "spec.selector", "field is immutable", selector, show_value=False))
    pod_spec = template.get("spec")
    _expect(pod_spec, dict, "spec.template.spec", "v1.PodSpec", "PodTemplateSpec")
    containers = (pod_spec or {}).get("containers")
    _expect(containers, list, "spec.template.spec.containers", "[]v1.Container", "PodSpec")
    if not containers:
        errors.append(st.FieldError("Required", "spec.template.spec.containers"))
        return
    seen = set()
    for index, container in enumerate(containers):
        _expect(container, dict, f"spec.template.spec.containers[{index}]", "v1.Container", "PodSpec")
        field = f"spec.template.spec.containers[{index}]"
        name = container.get("name")
        if not name:
            errors.append(st.FieldError("Required", f"{field}.name"))
        elif name in seen:
            errors.append(st.FieldError("Duplicate", f"{field}.name", value=name))
        elif name_problem(name, label=True):
            errors.append(st.FieldError("Invalid", f"{field}.name", LABEL_MESSAGE, name))
        seen.add(name)
        if not container.get("image"):
            errors.append(st.FieldError("Required", f"{field}.image"))
        for port_index, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort") if isinstance(port, dict) else None
            _expect(number, int, f"{field}.ports.containerPort", "int32", "ContainerPort")
            if not isinstance(number, int) or not 0 < number < 65536:
                errors.append(st.FieldError("Invalid" if number is not None else "Required",
                                            f"{field}.ports[{port_index}].containerPort",
                                            "must be between 1 and 65535, inclusive", number))


def _validate_service(obj: dict, existing: dict | None, errors: list[st.FieldError]) -> None:
    spec = obj.get("spec") or {}
    _expect(spec.get("ports"), list, "spec.ports", "[]v1.ServicePort", "ServiceSpec")
    _expect(spec.get("selector"), dict, "spec.selector", "map[string]string", "ServiceSpec")
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.append(st.FieldError("NotSupported", "spec.type",
                                    'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"', kind))
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        errors.append(st.FieldError("Required", "spec.ports"))
    names = set()
    for index, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        _expect(number, int, "spec.ports.port", "int32", "ServicePort")
        if not isinstance(number, int) or not 0 < number < 65536:
            errors.append(st.FieldError("Invalid" if number is not None else "Required", f"spec.ports[{index}].port",
                                        "must be between 1 and 65535, inclusive", number))
        if len(ports) > 1 and not port.get("name"):
            errors.append(st.FieldError("Required", f"spec.ports[{index}].name"))
        elif port.get("name") in names:
            errors.append(st.FieldError("Duplicate", f"spec.ports[{index}].name", value=port.get("name")))
        names.add(port.get("name"))
    old_ip = ((existing or {}).get("spec") or {}).get("clusterIP")
    if existing is not None and old_ip and spec.get("clusterIP") != old_ip:
        errors.append(st.FieldError("Invalid", "spec.clusterIP", "field is immutable", spec.get("clusterIP")))


def _validate_configmap(obj: dict, errors: list[st.FieldError]) -> None:
    for field in ("data", "binaryData"):
        _expect(obj.get(field), dict, field, "map[string]string", obj.get("kind", "ConfigMap"))
        for key, value in (obj.get(field) or {}).items():
            _expect(value, str, field, "map[string]string", obj.get("kind", "ConfigMap"))
            if not _CONFIG_KEY.match(key):
                errors.append(st.FieldError("Invalid", f"{field}[{key}]", "a valid config key must consist of "
                                            "alphanumeric characters, '-', '_' or '.'", key))
    if obj.get("kind") == "Secret":
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise DecodeError("illegal base64 data at input byte 0") from None


def _validate_lease(obj: dict) -> None:
    spec = obj.get("spec")
    _expect(spec, dict, "spec", "v1.LeaseSpec", "Lease")
    spec = spec or {}
    _expect(spec.get("holderIdentity"), str, "spec.holderIdentity", "string", "LeaseSpec")
    _expect(spec.get("leaseDurationSeconds"), int, "spec.leaseDurationSeconds", "int32", "LeaseSpec")
    _expect(spec.get("leaseTransitions"), int, "spec.leaseTransitions", "int32", "LeaseSpec")
    for field in ("acquireTime", "renewTime"):
        if spec.get(field) is not None:
            spec[field] = _canonical_micro_time(spec[field], field)


def _validate_lease_values(obj: dict, errors: list[st.FieldError]) -> None:
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        errors.append(st.FieldError("Invalid", "spec.leaseDurationSeconds", "must be greater than 0", duration))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        errors.append(st.FieldError("Invalid", "spec.leaseTransitions", "must be greater than or equal to 0",
                                    transitions))


def _validate_hpa(obj: dict, errors: list[st.FieldError]) -> None:
    spec = obj.get("spec")
    _expect(spec, dict, "spec", "v2.HorizontalPodAutoscalerSpec", "HorizontalPodAutoscaler")
    spec = spec or {}
    _expect(spec.get("maxReplicas"), int, "spec.maxReplicas", "int32", "HorizontalPodAutoscalerSpec")
    _expect(spec.get("minReplicas"), int, "spec.minReplicas", "int32", "HorizontalPodAutoscalerSpec")
    target = spec.get("scaleTargetRef") or {}
    if not target.get("kind"):
        errors.append(st.FieldError("Required", "spec.scaleTargetRef.kind"))
    if not target.get("name"):
        errors.append(st.FieldError("Required", "spec.scaleTargetRef.name"))
    maximum = spec.get("maxReplicas")
    minimum = spec.get("minReplicas", 1)
    if not isinstance(maximum, int) or maximum < 1:
        errors.append(st.FieldError("Invalid", "spec.maxReplicas", "must be greater than or equal to 1", maximum))
    elif isinstance(minimum, int) and minimum > maximum:
        errors.append(st.FieldError("Invalid", "spec.maxReplicas", "must be greater than or equal to `minReplicas`",
                                    maximum))


def _validate_custom(obj: dict, rtype: ResourceType) -> None:
    _expect(obj.get("spec"), dict, "spec", "object", rtype.kind)


def prepare(rtype: ResourceType, obj: dict, existing: dict | None, allocator: ClusterIPAllocator) -> dict:
    """Default and validate `obj` in place for a create (existing None) or an update; raises ApiError or DecodeError."""
    meta = obj.get("metadata")
    _expect(meta, dict, "metadata", "v1.ObjectMeta", rtype.kind)
    errors: list[st.FieldError] = []
    if rtype.plural == "deployments":
        _default_deployment(obj)
    elif rtype.plural == "services":
        _default_service(obj, allocator, existing)
    elif rtype.plural == "secrets":
        _default_secret(obj)
    elif rtype.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = (existing or {}).get("status") or {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    _check_object_meta(obj, errors, rtype.plural in LABEL_NAME_KINDS)
    if rtype.plural == "deployments":
        _validate_deployment(obj, existing, errors)
    elif rtype.plural == "services":
        _validate_service(obj, existing, errors)
    elif rtype.plural in ("configmaps", "secrets"):
        _validate_configmap(obj, errors)
    elif rtype.plural == "leases":
        _validate_lease(obj)
        _validate_lease_values(obj, errors)
    elif rtype.plural == "horizontalpodautoscalers":
        _validate_hpa(obj, errors)
    elif not rtype.builtin:
        _validate_custom(obj, rtype)
    if errors:
        raise st.invalid(rtype, (meta or {}).get("name") or "", errors)
    return obj

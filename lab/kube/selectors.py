"""Label and field selectors with the API server's grammar."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_KEY = r"(?:[a-z0-9A-Z](?:[-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z](?:[-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_VALUE = r"(?:[a-z0-9A-Z](?:[-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_BINARY_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*(\S*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """The selector does not parse; the API server answers 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str          # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" also match objects without the key, as in Kubernetes.
        return not present or labels[self.key] not in self.values


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if depth != 0:
        raise SelectorError(f"unable to parse requirement: unbalanced parentheses in {selector!r}")
    return parts


def _checked_value(value: str, selector: str) -> str:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise SelectorError(f"unable to parse requirement: values[0][{selector}]: Invalid value: \"{value}\": "
                            "a valid label must be an empty string or consist of alphanumeric characters, "
                            "'-', '_' or '.', and must start and end with an alphanumeric character")
    return value


def parse_label_selector(selector: str | None) -> list[Requirement]:
    if selector is None or not selector.strip():
        return []
    requirements = []
    for part in _split_requirements(selector):
        if not part.strip():
            raise SelectorError(f"found '', expected: identifier in label selector {selector!r}")
        match = _SET_RE.match(part)
        if match:
            values = tuple(_checked_value(value.strip(), match.group(1)) for value in match.group(3).split(","))
            requirements.append(Requirement(match.group(1), match.group(2), values))
            continue
        match = _BINARY_RE.match(part)
        if match:
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), operator, (_checked_value(match.group(3), match.group(1)),)))
            continue
        match = _EXISTS_RE.match(part)
        if match:
            requirements.append(Requirement(match.group(2), "!" if match.group(1) else "exists"))
            continue
        raise SelectorError(f"unable to parse requirement: {part.strip()!r} is not a valid label selector term")
    return requirements


def labels_match(requirements: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in requirements)


def selector_from_match_labels(match_labels: dict[str, str]) -> str:
    """The string form of a matchLabels selector, as Scale.status.selector shows it."""
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def label_selector_matches(selector: dict | None, labels: dict[str, str] | None) -> bool:
    """Match a LabelSelector object (matchLabels + matchExpressions); an empty selector matches everything."""
    selector = selector or {}
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        operator = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expression.get("operator"))
        if operator is None:
            return False
        if not Requirement(expression.get("key", ""), operator, tuple(expression.get("values") or ())).matches(labels):
            return False
    return True


# -------------------------------------------------------------- field selectors
FieldGetter = Callable[[dict], str]


def _path_getter(path: str) -> FieldGetter:
    keys = path.split(".")

    def getter(obj: dict) -> str:
        value: object = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else str(value)
    return getter


COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.phase", "status.podIP"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str
    getter: FieldGetter

    def matches(self, obj: dict) -> bool:
        equal = self.getter(obj) == self.value
        return equal if self.operator == "=" else not equal


def parse_field_selector(selector: str | None, resource: str) -> list[FieldRequirement]:
    if selector is None or not selector.strip():
        return []
    supported = COMMON_FIELDS + EXTRA_FIELDS.get(resource, ())
    requirements = []
    for part in selector.split(","):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not match:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        field, operator, value = match.groups()
        if field not in supported:
            raise SelectorError(f'field label not supported: {field}')
        getter = _path_getter("source.component" if field == "source" else field)
        requirements.append(FieldRequirement(field, "!=" if operator == "!=" else "=", value, getter))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: dict) -> bool:
    return all(requirement.matches(obj) for requirement in requirements)


def is_valid_label_key(key: str) -> bool:
    return bool(_KEY_RE.match(key))

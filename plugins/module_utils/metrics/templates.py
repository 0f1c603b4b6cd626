# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric definitions: Flagger's builtin Istio queries, MetricTemplate manifests, and safe query rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.durations import is_prometheus_duration

# PromQL of Flagger's Istio observer, unchanged, so a threshold tuned for Flagger means the same here.
BUILTIN_QUERIES: dict[str, str] = {
    "request-success-rate": """
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}",
                response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}"
            }[{{ interval }}]
        )
    )
    * 100""",
    "request-duration": """
    histogram_quantile(
        0.99,
        sum(
            rate(
                istio_request_duration_milliseconds_bucket{
                    reporter="destination",
                    destination_workload_namespace="{{ namespace }}",
                    destination_workload=~"{{ target }}"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

# Raw material for comparing canary and primary: request and error counts, and latency buckets.
COUNT_QUERIES: dict[str, str] = {
    "requests": 'sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"}[{{ interval }}]))',
    "errors": 'sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}",response_code=~"5.*"}[{{ interval }}]))',
    "duration_buckets": 'sum(increase(istio_request_duration_milliseconds_bucket{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) by (le)',
}

# Probes that tell "no sidecar/telemetry" apart from "no traffic" when a metric comes back empty.
PROBE_QUERIES: dict[str, str] = {
    "workload_series": 'count(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"})',
    "workload_requests": 'sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"}[{{ interval }}]))',
    "namespace_series": 'count(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}"})',
    "any_series": "count(istio_requests_total)",
}

MODEL_VARIABLES = ("name", "namespace", "target", "service", "ingress", "interval")
ON_NO_DATA_CHOICES = ("fail", "pass", "skip")
DEFAULT_INTERVAL = "1m"

_PLACEHOLDER = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
_VARIABLE_REF = re.compile(r"^(?:\.)?variables\.([A-Za-z_][A-Za-z0-9_\-]*)$")
# Outside a string literal a value becomes query syntax, so only plain tokens may appear there.
_BARE_TOKEN = re.compile(r"^[A-Za-z0-9_:.\-]+$")


class TemplateError(DeliveryError, ValueError):
    """A query template cannot be rendered: unknown or missing variable, unsafe value, bad template."""


class MetricDefinitionError(DeliveryError, ValueError):
    """A metric entry or MetricTemplate manifest is not usable as written."""


@dataclass
class ThresholdRange:
    min: float | None = None
    max: float | None = None

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclass
class TemplateProvider:
    """A MetricTemplate's ``spec.provider``: the Prometheus it names and where its credentials are."""

    template: str
    namespace: str | None = None
    address: str | None = None
    secret_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass
class MetricSpec:
    name: str
    query_template: str
    source: str
    interval: str = DEFAULT_INTERVAL
    threshold_range: ThresholdRange | None = None
    on_no_data: str = "fail"
    critical: bool = False
    template_variables: dict[str, str] = field(default_factory=dict)
    # Where a MetricTemplate says its Prometheus is (spec.provider); None for builtins and inline queries.
    provider: TemplateProvider | None = None

    @property
    def builtin(self) -> str | None:
        return self.source[len("builtin:"):] if self.source.startswith("builtin:") else None


@dataclass
class RenderContext:
    namespace: str
    target: str
    service: str | None = None
    name: str | None = None
    ingress: str | None = None

    def model(self, interval: str) -> dict[str, str | None]:
        # Flagger defaults service (and the canary name) to the target when not given.
        return {
            "name": self.name or self.target,
            "namespace": self.namespace,
            "target": self.target,
            "service": self.service or self.target,
            "ingress": self.ingress,
            "interval": interval,
        }

    def for_target(self, target: str) -> "RenderContext":
        return RenderContext(self.namespace, target, self.service, self.name, self.ingress)


def escape_promql_string(value: str, quote: str = '"') -> str:
    """Escape ``value`` for use inside a PromQL string literal delimited by ``quote``."""
    if quote == "`":
        if "`" in value:
            raise TemplateError("value %r contains a backtick and cannot be placed inside a raw `...` string" % (value,))
        return value
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == quote:
            out.append("\\" + quote)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append("\\x%02x" % ord(char))
        else:
            out.append(char)
    return "".join(out)


def _literal_state_at(text: str, start: int, state: str | None) -> str | None:
    """Advance the string-literal state (None or the open quote) over ``text[start:]``."""
    index = start
    while index < len(text):
        char = text[index]
        if state is None:
            if char in "\"'`":
                state = char
            elif char == "#":
                # PromQL comment: runs to end of line; quotes inside it do not open literals.
                newline = text.find("\n", index)
                index = len(text) if newline < 0 else newline
                continue
        elif char == "\\" and state != "`":
            index += 2
            continue
        elif char == state:
            state = None
        index += 1
    return state


def render_query(template: str, model: Mapping[str, Any], variables: Mapping[str, Any] | None = None) -> str:
    """Render Flagger's ``{{ var }}`` placeholders, escaping each value for where it lands in the query."""
    variables = variables or {}
    pieces: list[str] = []
    state: str | None = None
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        literal = template[position:match.start()]
        if match.group(1):
            literal = literal.rstrip()
        state = _literal_state_at(literal, 0, state)
        pieces.append(literal)
        expression = match.group(2).strip()
        value = _lookup(expression, model, variables)
        pieces.append(_place(expression, value, state))
        position = match.end()
        if match.group(3):
            rest = template[position:]
            position += len(rest) - len(rest.lstrip())
    tail = template[position:]
    if "{{" in tail:
        raise TemplateError("query template has a '{{' without a matching '}}'")
    pieces.append(tail)
    return "".join(pieces)


def _lookup(expression: str, model: Mapping[str, Any], variables: Mapping[str, Any]) -> str:
    bare = expression[1:] if expression.startswith(".") else expression
    if bare in MODEL_VARIABLES:
        value = model.get(bare)
        if value in (None, ""):
            raise TemplateError("template variable '%s' has no value; set the module option '%s'" % (bare, bare))
        return str(value)
    ref = _VARIABLE_REF.match(expression)
    if ref:
        key = ref.group(1)
        if key not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise TemplateError("template variable 'variables.%s' is not defined in templateVariables (defined: %s)" % (key, known))
        return str(variables[key])
    raise TemplateError(
        "unknown template expression '{{ %s }}'; available: %s and variables.<key> from templateVariables"
        % (expression, ", ".join(MODEL_VARIABLES))
    )


def _place(expression: str, value: str, state: str | None) -> str:
    if state is not None:
        return escape_promql_string(value, state)
    if expression.lstrip(".") == "interval":
        if not is_prometheus_duration(value):
            raise TemplateError("interval %r is not a Prometheus duration such as 30s, 1m or 1h30m" % (value,))
        return value
    if not _BARE_TOKEN.match(value):
        raise TemplateError(
            "value %r for '{{ %s }}' sits outside a quoted string in the query and contains characters that would change "
            "the query; quote the placeholder in the template" % (value, expression)
        )
    return value


def parse_threshold_range(raw: Any, metric_name: str) -> ThresholdRange | None:
    if raw in (None, {}):
        return None
    if not isinstance(raw, Mapping):
        raise MetricDefinitionError("metric '%s': thresholdRange must be a mapping with min and/or max, got %r" % (metric_name, raw))
    unknown = set(raw) - {"min", "max"}
    if unknown:
        raise MetricDefinitionError("metric '%s': thresholdRange accepts only min and max, got %s" % (metric_name, ", ".join(sorted(unknown))))
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        try:
            bounds[key] = float(value)
        except (TypeError, ValueError):
            raise MetricDefinitionError("metric '%s': thresholdRange.%s must be a number, got %r" % (metric_name, key, value)) from None
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise MetricDefinitionError(
            "metric '%s': thresholdRange.min (%g) is greater than max (%g); no value could pass" % (metric_name, bounds["min"], bounds["max"])
        )
    return ThresholdRange(bounds["min"], bounds["max"])


def _template_key(manifest: Mapping[str, Any]) -> tuple[str, str | None]:
    metadata = manifest.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise MetricDefinitionError("a MetricTemplate's metadata must be a mapping with name (and namespace), got %s"
                                    % type(metadata).__name__)
    return metadata.get("name") or "", metadata.get("namespace")


def template_query(manifest: Any, reference: str) -> str:
    """Return the query of a Flagger MetricTemplate manifest after checking it targets Prometheus."""
    if not isinstance(manifest, Mapping):
        raise MetricDefinitionError("%s: a MetricTemplate must be a mapping (the manifest), got %s" % (reference, type(manifest).__name__))
    kind = manifest.get("kind")
    if kind not in (None, "MetricTemplate"):
        raise MetricDefinitionError("%s: expected kind MetricTemplate, found %s" % (reference, kind))
    spec = manifest.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise MetricDefinitionError("%s: spec must be a mapping, got %s" % (reference, type(spec).__name__))
    provider_spec = spec.get("provider") or {}
    if not isinstance(provider_spec, Mapping):
        raise MetricDefinitionError("%s: spec.provider must be a mapping such as {type: prometheus}, got %r" % (reference, provider_spec))
    provider = provider_spec.get("type") or "prometheus"
    if str(provider).lower() != "prometheus":
        raise MetricDefinitionError(
            "%s: provider type %r is not supported; this module queries Prometheus only (spec.provider.type: prometheus)" % (reference, provider)
        )
    query = spec.get("query")
    if not isinstance(query, str) or not query.strip():
        raise MetricDefinitionError("%s: spec.query is empty" % reference)
    return query


def template_provider(manifest: Mapping[str, Any], namespace: str | None = None) -> TemplateProvider:
    """Read ``spec.provider`` of a MetricTemplate already checked by :func:`template_query`."""
    name, own_namespace = _template_key(manifest)
    provider = (manifest.get("spec") or {}).get("provider") or {}
    namespace = own_namespace or namespace
    label = "%s/%s" % (namespace, name) if namespace else (name or "inline")
    address = provider.get("address")
    if address is not None and not isinstance(address, str):
        raise MetricDefinitionError("MetricTemplate %s: spec.provider.address must be a URL string, got %r" % (label, address))
    secret_ref = provider.get("secretRef")
    if secret_ref is not None and (not isinstance(secret_ref, Mapping) or not secret_ref.get("name")):
        raise MetricDefinitionError("MetricTemplate %s: spec.provider.secretRef must be {name: <Secret>}, got %r" % (label, secret_ref))
    return TemplateProvider(
        template=label,
        namespace=namespace,
        address=(address or "").strip() or None,
        secret_name=str(secret_ref["name"]) if secret_ref else None,
        insecure_skip_verify=bool(provider.get("insecureSkipVerify", False)),
    )


def provider_from_plan(raw: Mapping[str, Any], template: str) -> TemplateProvider:
    """The plan's ``provider`` entry of a metric ({address, secret_ref, insecure_skip_verify}) as a TemplateProvider."""
    secret_ref = raw.get("secret_ref") or {}
    return TemplateProvider(
        template="%s/%s" % (secret_ref["namespace"], template) if secret_ref.get("namespace") else template,
        namespace=secret_ref.get("namespace"),
        address=(raw.get("address") or "").strip() or None,
        secret_name=secret_ref.get("name"),
        insecure_skip_verify=bool(raw.get("insecure_skip_verify", False)),
    )


def _find_template(ref: Any, templates: list[Mapping[str, Any]], metric_name: str) -> Mapping[str, Any]:
    if isinstance(ref, Mapping):
        wanted_name, wanted_namespace = ref.get("name"), ref.get("namespace")
    else:
        wanted_name, wanted_namespace = ref, None
    if not wanted_name:
        raise MetricDefinitionError("metric '%s': templateRef needs a name" % metric_name)
    candidates = [t for t in templates if isinstance(t, Mapping) and _template_key(t)[0] == wanted_name]
    if wanted_namespace:
        candidates = [t for t in candidates if _template_key(t)[1] in (None, wanted_namespace)]
    if not candidates:
        known = ", ".join(sorted("%s%s" % (n, "/" + ns if ns else "") for n, ns in (_template_key(t) for t in templates if isinstance(t, Mapping))))
        raise MetricDefinitionError(
            "metric '%s': templateRef '%s' matches none of metric_templates (given: %s)" % (metric_name, wanted_name, known or "none")
        )
    return candidates[0]


def resolve_metric(raw: Mapping[str, Any], templates: list[Mapping[str, Any]] | None = None) -> MetricSpec:
    """Turn one entry of Flagger's ``analysis.metrics`` (plus our options) into a MetricSpec."""
    name = raw.get("name")
    if not name:
        raise MetricDefinitionError("every metric needs a name, got %r" % (dict(raw),))
    templates = templates or []
    provider: TemplateProvider | None = None
    variables = raw.get("templateVariables") or {}
    if not isinstance(variables, Mapping):
        raise MetricDefinitionError("metric '%s': templateVariables must be a mapping" % name)
    if raw.get("query"):
        query, source = raw["query"], "query"
    elif raw.get("template"):
        query = template_query(raw["template"], "metric '%s' template" % name)
        source = "template:%s" % (_template_key(raw["template"])[0] or "inline")
        provider = template_provider(raw["template"], _ref_namespace(raw.get("templateRef")))
    elif raw.get("templateRef"):
        manifest = _find_template(raw["templateRef"], templates, name)
        query = template_query(manifest, "MetricTemplate '%s'" % _template_key(manifest)[0])
        source = "template:%s" % _template_key(manifest)[0]
        provider = template_provider(manifest, _ref_namespace(raw.get("templateRef")))
    elif name in BUILTIN_QUERIES:
        query, source = BUILTIN_QUERIES[name], "builtin:%s" % name
    else:
        raise MetricDefinitionError(
            "metric '%s' has no query, template or templateRef and is not a builtin (%s)" % (name, ", ".join(sorted(BUILTIN_QUERIES)))
        )
    if isinstance(raw.get("provider"), Mapping) and source.startswith("template:"):
        # The plan has already read the template's provider and knows the namespace its Secret lives in.
        provider = provider_from_plan(raw["provider"], source[len("template:"):])
    on_no_data = raw.get("on_no_data") or "fail"
    if on_no_data not in ON_NO_DATA_CHOICES:
        raise MetricDefinitionError("metric '%s': on_no_data must be one of %s, got %r" % (name, ", ".join(ON_NO_DATA_CHOICES), on_no_data))
    interval = str(raw.get("interval") or DEFAULT_INTERVAL)
    if not is_prometheus_duration(interval):
        raise MetricDefinitionError("metric '%s': interval %r is not a Prometheus duration such as 30s, 1m or 1h" % (name, interval))
    return MetricSpec(
        name=str(name),
        query_template=query,
        source=source,
        interval=interval,
        threshold_range=parse_threshold_range(raw.get("thresholdRange"), name),
        on_no_data=on_no_data,
        critical=bool(raw.get("critical", False)),
        template_variables={str(k): str(v) for k, v in variables.items()},
        provider=provider,
    )


def _ref_namespace(ref: Any) -> str | None:
    return ref.get("namespace") if isinstance(ref, Mapping) else None


def render_metric(spec: MetricSpec, context: RenderContext) -> str:
    try:
        return render_query(spec.query_template, context.model(spec.interval), spec.template_variables)
    except TemplateError as exc:
        raise TemplateError("metric '%s': %s" % (spec.name, exc)) from None


def render_named(template: str, context: RenderContext, interval: str = DEFAULT_INTERVAL) -> str:
    return render_query(template, context.model(interval))

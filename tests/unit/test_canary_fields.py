"""Every field of Flagger's Canary CRD is used by the plan or named in its notes; unknown fields are named too.

The field list comes from Flagger's CRD (tests/data/flagger-canary-v1beta1-fields.txt); what the role does with each is
the table in plan/fields.py. A field counts as honoured when changing it changes the plan (or turns it into an error
naming it), as warned when a note names it.
"""

from __future__ import annotations

import copy
import pathlib
import re

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.plan import fields
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import CanarySpecError, build_plan

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((ROOT / "examples" / "backend-service-canary.yaml").read_text())
CRD_FIELDS = [line.strip() for line in (ROOT / "tests" / "data" / "flagger-canary-v1beta1-fields.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]


def template(name, namespace, query):
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus"}, "query": query}}


TEMPLATES = [template("errors", "prod", "sum(errors)"), template("latency", "prod", "sum(latency)"),
             template("errors", "observability", "sum(errors_elsewhere)")]

GATEWAY_API = {"spec.provider": "gatewayapi:v1", "spec.service.gateways": None}
MATCH = {"spec.analysis.iterations": 3, "spec.analysis.stepWeight": None, "spec.analysis.maxWeight": None}
AFFINITY = {"spec.analysis.sessionAffinity": {"cookieName": "canary"}}
HOOK = {"spec.analysis.webhooks": [{"name": "load", "url": "http://hooks/"}]}
ALERT = {"spec.analysis.alerts": [{"name": "on-call", "providerRef": {"name": "slack"}}]}
TEMPLATE_METRIC = {"spec.analysis.metrics": [{"name": "errors", "templateRef": {"name": "errors"},
                                              "thresholdRange": {"max": 1}}]}

# path -> (value A, value B, other paths set first). None as a value removes the field.
HONOURED = {
    "apiVersion": ("flagger.app/v1beta1", "apps/v1", {}),
    "kind": ("Canary", "Deployment", {}),
    "metadata": ({"name": "a", "namespace": "prod"}, {"name": "b", "namespace": "prod"}, {}),
    "spec.provider": ("istio", "linkerd", {}),
    "spec.metricsServer": (None, "http://prometheus:9090", {}),
    "spec.progressDeadlineSeconds": (60, 120, {}),
    "spec.targetRef.apiVersion": ("apps/v1", "apps/v2", {}),
    "spec.targetRef.kind": ("Deployment", "DaemonSet", {}),
    "spec.targetRef.name": ("a", "b", {}),
    "spec.autoscalerRef.apiVersion": ("autoscaling/v2", "keda.sh/v1alpha1", {"spec.autoscalerRef.name": "a"}),
    "spec.autoscalerRef.kind": ("HorizontalPodAutoscaler", "ScaledObject", {"spec.autoscalerRef.name": "a"}),
    "spec.autoscalerRef.name": ("a", "b", {}),
    "spec.service.name": ("a", "b", {}),
    "spec.service.port": (80, 8080, {}),
    "spec.service.portName": ("http", "grpc", {}),
    "spec.service.appProtocol": ("http", "grpc", {}),
    "spec.service.targetPort": (9898, "http", {}),
    "spec.service.portDiscovery": (False, True, {}),
    "spec.service.timeout": ("5s", "10s", {}),
    "spec.service.hosts": (["a.example.com"], ["b.example.com"], {}),
    "spec.service.gateways": (["mesh"], ["public"], {}),
    "spec.service.gatewayRefs": ([{"name": "a"}], [{"name": "b"}], GATEWAY_API),
    "spec.service.delegation": (False, True, {}),
    "spec.service.match": ([{"uri": {"prefix": "/a"}}], [{"uri": {"prefix": "/b"}}], {}),
    "spec.service.retries": ({"attempts": 1}, {"attempts": 3}, {}),
    "spec.service.rewrite": ({"uri": "/a"}, {"uri": "/b"}, {}),
    "spec.service.headers": ({"request": {"add": {"x": "a"}}}, {"request": {"add": {"x": "b"}}}, {}),
    "spec.service.corsPolicy": ({"allowOrigins": [{"exact": "a"}]}, {"allowOrigins": [{"exact": "b"}]}, {}),
    "spec.service.trafficPolicy": ({"tls": {"mode": "DISABLE"}}, {"tls": {"mode": "ISTIO_MUTUAL"}}, {}),
    "spec.service.apex.labels": ({"a": "1"}, {"a": "2"}, {}),
    "spec.service.apex.annotations": ({"a": "1"}, {"a": "2"}, {}),
    "spec.service.primary.labels": ({"a": "1"}, {"a": "2"}, {}),
    "spec.service.primary.annotations": ({"a": "1"}, {"a": "2"}, {}),
    "spec.service.canary.labels": ({"a": "1"}, {"a": "2"}, {}),
    "spec.service.canary.annotations": ({"a": "1"}, {"a": "2"}, {}),
    "spec.skipAnalysis": (False, True, {}),
    "spec.revertOnDeletion": (False, True, {}),
    "spec.suspend": (False, True, {}),
    "spec.analysis.interval": ("1m", "2m", {}),
    "spec.analysis.iterations": (None, 5, {}),
    "spec.analysis.threshold": (1, 2, {}),
    "spec.analysis.maxWeight": (50, 60, {}),
    "spec.analysis.stepWeight": (10, 20, {}),
    "spec.analysis.stepWeights": ([10, 50], [20, 50], {"spec.analysis.stepWeight": None}),
    "spec.analysis.stepWeightPromotion": (10, 20, {}),
    "spec.analysis.mirror": (False, True, {}),
    "spec.analysis.mirrorWeight": (10, 20, {"spec.analysis.mirror": True}),
    "spec.analysis.primaryReadyThreshold": (100, 50, {}),
    "spec.analysis.canaryReadyThreshold": (100, 50, {}),
    "spec.analysis.match": ([{"headers": {"x": {"exact": "a"}}}], [{"headers": {"x": {"exact": "b"}}}], MATCH),
    "spec.analysis.match[].headers": ({"x": {"exact": "a"}}, {"x": {"exact": "b"}}, MATCH),
    "spec.analysis.match[].queryParams": ({"x": {"exact": "a"}}, {"x": {"exact": "b"}}, MATCH),
    "spec.analysis.match[].sourceLabels": ({"app": "a"}, {"app": "b"}, MATCH),
    "spec.analysis.metrics[].name": ("request-success-rate", "request-duration", {}),
    "spec.analysis.metrics[].interval": ("1m", "2m", {}),
    "spec.analysis.metrics[].threshold": (90, 95, {"spec.analysis.metrics[].thresholdRange": None}),
    "spec.analysis.metrics[].thresholdRange.min": (90, 95, {}),
    "spec.analysis.metrics[].thresholdRange.max": (100, 101, {}),
    "spec.analysis.metrics[].query": ("sum(a)", "sum(b)", {}),
    "spec.analysis.metrics[].templateRef.name": ("errors", "latency", TEMPLATE_METRIC),
    "spec.analysis.metrics[].templateRef.namespace": ("prod", "observability", TEMPLATE_METRIC),
    "spec.analysis.metrics[].templateVariables": ({"x": "a"}, {"x": "b"}, {}),
    "spec.analysis.alerts[].name": ("a", "b", ALERT),
    "spec.analysis.alerts[].severity": ("info", "error", ALERT),
    "spec.analysis.alerts[].providerRef.name": ("slack", "teams", ALERT),
    "spec.analysis.alerts[].providerRef.namespace": ("prod", "flagger", ALERT),
    "spec.analysis.webhooks[].name": ("a", "b", HOOK),
    "spec.analysis.webhooks[].type": ("rollout", "pre-rollout", HOOK),
    "spec.analysis.webhooks[].muteAlert": (False, True, HOOK),
    "spec.analysis.webhooks[].url": ("http://a/", "http://b/", HOOK),
    "spec.analysis.webhooks[].timeout": ("10s", "20s", HOOK),
    "spec.analysis.webhooks[].retries": (1, 2, HOOK),
    "spec.analysis.webhooks[].disableTLS": (False, True, HOOK),
    "spec.analysis.webhooks[].metadata": ({"cmd": "a"}, {"cmd": "b"}, HOOK),
    "spec.analysis.sessionAffinity.cookieName": ("a", "b", AFFINITY),
    "spec.analysis.sessionAffinity.primaryCookieName": ("a", "b", AFFINITY),
    "spec.analysis.sessionAffinity.maxAge": (60, 120, AFFINITY),
}

# path -> a value; the note must name the path (or the warned object holding it).
WARNED = {
    "spec.autoscalerRef.primaryScalerQueries": {"primary": "sum(x)"},
    "spec.autoscalerRef.primaryScalerReplicas": {"minReplicas": 2},
    "spec.autoscalerRef.primaryScalerReplicas.minReplicas": 2,
    "spec.autoscalerRef.primaryScalerReplicas.maxReplicas": 4,
    "spec.ingressRef.apiVersion": "networking.k8s.io/v1",
    "spec.ingressRef.kind": "Ingress",
    "spec.ingressRef.name": "a",
    "spec.routeRef.apiVersion": "apisix.apache.org/v2",
    "spec.routeRef.kind": "ApisixRoute",
    "spec.routeRef.name": "a",
    "spec.upstreamRef.apiVersion": "gloo.solo.io/v1",
    "spec.upstreamRef.kind": "Upstream",
    "spec.upstreamRef.name": "a",
    "spec.upstreamRef.namespace": "gloo",
    "spec.service.trafficDistribution": "PreferClose",
    "spec.service.headless": True,
    "spec.service.backendTimeout": "10s",
    "spec.service.meshName": "global",
    "spec.service.backends": ["a"],
    "spec.service.mirror": [{"backendRef": {"name": "a", "port": 80}}],
    "spec.service.unmanagedMetadata.annotations": ["a"],
    "spec.service.unmanagedMetadata.labels": ["a"],
    "spec.analysis.sessionAffinity.domain": "example.com",
    "spec.analysis.sessionAffinity.httpOnly": True,
    "spec.analysis.sessionAffinity.partitioned": True,
    "spec.analysis.sessionAffinity.path": "/",
    "spec.analysis.sessionAffinity.sameSite": "Strict",
    "spec.analysis.sessionAffinity.secure": True,
    "status": {"phase": "Succeeded"},
}


def set_path(document, path, value):
    """Set a dotted path, creating mappings on the way; ``[]`` is the list's first item; None removes the field."""
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        key, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        if is_list:
            items = node.setdefault(key, [{}])
            node = items[0]
        else:
            node = node.setdefault(key, {})
    last = parts[-1]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


def outcome(document):
    """The plan without its notes, or the errors: what a field can change."""
    try:
        plan = build_plan(document, TEMPLATES)
    except CanarySpecError as exc:
        return ("rejected", exc.errors)
    plan.pop("notes")
    return ("plan", plan)


def with_value(path, value, before):
    document = copy.deepcopy(SEED)
    for other, other_value in before.items():
        set_path(document, other, other_value)
    set_path(document, path, value)
    return document


def containers():
    return {path for path in CRD_FIELDS if any(other.startswith(path + ".") or other.startswith(path + "[]")
                                               for other in CRD_FIELDS)}


def test_the_table_and_the_crd_list_name_the_same_fields():
    assert sorted(set(CRD_FIELDS) - set(fields.FIELDS)) == []
    assert sorted(set(fields.FIELDS) - set(CRD_FIELDS) - set(fields.NOT_IN_CRD)) == []
    assert len(CRD_FIELDS) == len(set(CRD_FIELDS))


def test_every_crd_field_has_a_check_here():
    leaves = set(CRD_FIELDS) - containers()
    assert sorted(leaves - set(HONOURED) - set(WARNED)) == []
    for path in HONOURED:
        assert fields.FIELDS[path][0] in (fields.HONOURED, fields.DIFFERENT), path
    for path in WARNED:
        assert fields.FIELDS[path][0] == fields.WARNED, path


@pytest.mark.parametrize("path", sorted(HONOURED))
def test_honoured_field_changes_the_plan(path):
    value_a, value_b, before = HONOURED[path]
    first, second = outcome(with_value(path, value_a, before)), outcome(with_value(path, value_b, before))
    assert first != second, "%s: the plan is the same for %r and %r" % (path, value_a, value_b)
    for result in (first, second):
        if result[0] == "rejected":
            assert any(path.replace("[]", "[0]").split(".")[-1] in problem for problem in result[1]), result


# What an unused field needs around it for the manifest to be valid otherwise.
CONTEXT = {"spec.autoscalerRef.": {"spec.autoscalerRef.name": "a"}, "spec.analysis.sessionAffinity.": AFFINITY}


@pytest.mark.parametrize("path", sorted(WARNED))
def test_unused_field_is_named_in_a_note(path):
    before = next((value for prefix, value in CONTEXT.items() if path.startswith(prefix)), {})
    plan = build_plan(with_value(path, WARNED[path], before), TEMPLATES)
    concrete = path.replace("[]", "[0]")
    named = [note for note in plan["notes"] if concrete.startswith(note.split(":")[0])]
    assert named and "not used by the role" in named[0], plan["notes"]


@pytest.mark.parametrize("path", sorted(containers()))
def test_an_object_is_honoured_through_its_fields_or_warned_whole(path):
    children = [other for other in CRD_FIELDS if other.startswith(path + ".") or other.startswith(path + "[]")]
    if fields.FIELDS[path][0] == fields.WARNED:
        assert all(fields.FIELDS[child][0] == fields.WARNED for child in children), path
    else:
        assert any(child in HONOURED for child in children), path


@pytest.mark.parametrize("path, value, named", [
    ("spec.analysis.treshold", 5, "spec.analysis.treshold"),
    ("spec.analysis.metrics[].thresholdrange", {"min": 1}, "spec.analysis.metrics[0].thresholdrange"),
    ("spec.servce", {"port": 80}, "spec.servce"),
    ("spec.analysis.webhooks[].mute", True, "spec.analysis.webhooks[0].mute"),
    ("spec.service.apex.label", {"a": "b"}, None),
])
def test_unknown_fields_are_named(path, value, named):
    document = with_value(path, value, HOOK)
    if named is None:
        # Inside an object whose keys are fixed, a typo is an error.
        assert any("spec.service.apex.label: unknown field" in p for p in outcome(document)[1])
        return
    plan = build_plan(document, TEMPLATES)
    notes = [n for n in plan["notes"] if n.startswith(named + ": unknown field")]
    assert notes, plan["notes"]


def test_typos_under_the_old_canary_analysis_key_are_named_too():
    document = copy.deepcopy(SEED)
    document["spec"]["canaryAnalysis"] = document["spec"].pop("analysis")
    document["spec"]["canaryAnalysis"]["treshold"] = 5
    notes = build_plan(document)["notes"]
    assert [n.split(":")[0] for n in notes] == ["spec.canaryAnalysis.treshold"], notes


def test_seed_manifest_has_no_notes():
    assert build_plan(SEED)["notes"] == []


def test_the_table_gives_a_reason_for_every_field():
    for path, (treatment, why) in fields.FIELDS.items():
        assert treatment in (fields.HONOURED, fields.DIFFERENT, fields.WARNED), path
        assert why and not re.search(r"\bTODO\b", why), path


def test_the_migration_guide_shows_the_table():
    text = (ROOT / "docs" / "migrating-from-flagger.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| (honoured differently|honoured|warned) \|", text, re.MULTILINE))
    assert rows == {path: treatment for path, (treatment, _why) in fields.FIELDS.items()}

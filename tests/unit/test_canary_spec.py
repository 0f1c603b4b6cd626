"""The Flagger Canary manifest parser: plans, defaults, and errors that name the field."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import (
    CanarySpecError,
    build_plan,
    canary_steps,
    format_seconds,
    parse_go_duration,
    promotion_steps,
)

SEED = yaml.safe_load((pathlib.Path(__file__).resolve().parents[2] / "examples" / "backend-service-canary.yaml").read_text())


def manifest(**analysis):
    document = copy.deepcopy(SEED)
    document["spec"]["analysis"].update(analysis)
    return document


def test_plan_names_the_services_after_spec_service_name():
    document = copy.deepcopy(SEED)
    document["spec"]["service"]["name"] = "api"
    plan = build_plan(document)
    assert (plan["service_name"], plan["primary_service"], plan["canary_service"]) == ("api", "api-primary", "api-canary")
    assert plan["primary"] == "backend-service-primary"


def errors_of(document, **kwargs) -> list[str]:
    with pytest.raises(CanarySpecError) as caught:
        build_plan(document, **kwargs)
    return caught.value.errors


def test_seed_manifest_plan():
    plan = build_plan(SEED)
    assert plan["name"] == "backend-service" and plan["namespace"] == "prod" and plan["target"] == "backend-service"
    assert plan["primary"] == "backend-service-primary"
    assert plan["service_name"] == "backend-service"
    assert (plan["primary_service"], plan["canary_service"]) == ("backend-service-primary", "backend-service-canary")
    assert plan["steps"] == [10, 20, 30, 40, 50]
    assert plan["threshold"] == 5 and plan["interval_seconds"] == 60 and plan["interval"] == "1m"
    assert plan["service"]["port"] == 80 and plan["service"]["hosts"] == ["api.example.com"]
    assert plan["service"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    assert plan["thresholds"] == [{"metric": "request-success-rate", "min": 99.0, "max": None},
                                  {"metric": "request-duration", "min": None, "max": 500.0}]
    assert [m["interval"] for m in plan["metrics"]] == ["1m", "1m"]
    assert plan["promotion_steps"] == [0]
    assert plan["progress_deadline_seconds"] == 600 and not plan["skip_analysis"]
    assert all(hooks == [] for hooks in plan["webhooks"].values())


def test_overrides_shorten_intervals_without_editing_the_manifest():
    original = copy.deepcopy(SEED)
    plan = build_plan(SEED, interval_override="5s", metric_interval_override="10s")
    assert plan["interval_seconds"] == 5 and [m["interval"] for m in plan["metrics"]] == ["10s", "10s"]
    assert SEED == original
    only_interval = build_plan(SEED, interval_override="5s")
    assert [m["interval"] for m in only_interval["metrics"]] == ["5s", "5s"]


@pytest.mark.parametrize("step, maximum, weights, expected", [
    (10, 50, [], [10, 20, 30, 40, 50]),
    (20, 50, [], [20, 40, 60]),
    (30, 100, [], [30, 60, 90, 100]),
    (0, 0, [1, 2, 10, 80], [1, 2, 10, 80]),
    (0, 0, [5, 150], [5, 100]),
])
def test_canary_steps_follow_flagger(step, maximum, weights, expected):
    assert canary_steps(step, maximum, weights) == expected


def test_step_weights_and_promotion_steps():
    document = copy.deepcopy(SEED)
    analysis = document["spec"]["analysis"]
    del analysis["stepWeight"], analysis["maxWeight"]
    analysis["stepWeights"] = [1, 5, 25, 60]
    analysis["stepWeightPromotion"] = 25
    plan = build_plan(document)
    assert plan["steps"] == [1, 5, 25, 60] and plan["max_weight"] == 60
    assert plan["promotion_steps"] == [35, 10, 0]
    assert promotion_steps(50, 0) == [0]


@pytest.mark.parametrize("text, seconds", [("1m", 60), ("30s", 30), ("1m30s", 90), ("1.5h", 5400), ("500ms", 0.5)])
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1 m", "1x", "", "m", 60, None, "1m30"])
def test_bad_go_durations(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_format_seconds():
    assert [format_seconds(s) for s in (5, 60, 90, 3600, 0.5)] == ["5s", "1m", "1m30s", "1h", "500ms"]


def test_error_names_the_field_and_the_value():
    assert errors_of(manifest(stepWeight="ten")) == [
        'spec.analysis.stepWeight: must be an integer between 1 and 100, got "ten"']
    assert errors_of(manifest(interval="soon")) == [
        'spec.analysis.interval: must be a duration string such as 30s, 1m or 1m30s, got "soon"']
    assert errors_of(manifest(threshold=0)) == ["spec.analysis.threshold: must be an integer of at least 1, got 0"]


def test_all_problems_are_reported_at_once():
    document = manifest(maxWeight=500)
    document["spec"]["targetRef"]["kind"] = "DaemonSet"
    del document["spec"]["service"]["port"]
    document["spec"]["analysis"]["metrics"][0]["thresholdRange"] = {"min": "high"}
    problems = errors_of(document)
    assert len(problems) == 4
    assert any(p.startswith("spec.targetRef.kind: not supported yet") for p in problems)
    assert "spec.service.port: is required" in problems
    assert "spec.analysis.maxWeight: must be an integer between 1 and 100, got 500" in problems
    assert 'spec.analysis.metrics[0].thresholdRange.min: must be a number, got "high"' in problems


def iteration_manifest(**analysis):
    """The seed with its canary weights replaced by the given iteration-strategy fields."""
    document = copy.deepcopy(SEED)
    for key in ("stepWeight", "maxWeight"):
        document["spec"]["analysis"].pop(key)
    document["spec"]["analysis"].update(analysis)
    return document


INSIDER = [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]


def test_ab_testing_is_match_with_iterations():
    plan = build_plan(iteration_manifest(iterations=10, match=INSIDER))
    assert plan["strategy"] == "ab-testing" and plan["iterations"] == 10
    assert plan["steps"] == [0] * 10 and plan["match"] == INSIDER
    assert plan["mirror_weight"] is None and plan["session_affinity"] is None
    assert plan["max_weight"] == 0 and plan["step_weight"] == 0 and plan["promotion_steps"] == [0]
    assert plan["notes"] == []


def test_blue_green_is_iterations_without_match():
    plan = build_plan(iteration_manifest(iterations=3))
    # Three iterations without traffic, then one analysis with all traffic on the canary before the promotion.
    assert (plan["strategy"], plan["iterations"], plan["steps"], plan["match"]) == ("blue-green", 3, [0, 0, 0, 100], [])
    assert plan["mirror_weight"] is None and plan["notes"] == [] and plan["max_weight"] == 100
    mirrored = build_plan(iteration_manifest(iterations=3, mirror=True))
    assert mirrored["strategy"] == "blue-green-mirror" and mirrored["mirror_weight"] == 100
    assert mirrored["steps"] == [0, 0, 0, 100]
    assert build_plan(iteration_manifest(iterations=3, mirror=True, mirrorWeight=25))["mirror_weight"] == 25


def test_iteration_strategies_walk_promotion_back_from_the_whole_traffic():
    plan = build_plan(iteration_manifest(iterations=2, stepWeightPromotion=40))
    assert plan["promotion_steps"] == [60, 20, 0]


def test_canary_with_mirroring_analyses_one_mirrored_step_first():
    plan = build_plan(manifest(mirror=True, mirrorWeight=50))
    assert plan["strategy"] == "canary" and plan["iterations"] == 0
    assert plan["steps"] == [0, 10, 20, 30, 40, 50] and plan["mirror_weight"] == 50
    assert plan["promotion_steps"] == [0]
    assert any(n.startswith("spec.analysis.mirror:") and "50%" in n for n in plan["notes"]), plan["notes"]


def test_seed_has_the_strategy_defaults():
    plan = build_plan(SEED)
    assert (plan["strategy"], plan["iterations"], plan["match"], plan["mirror_weight"]) == ("canary", 0, [], None)
    assert plan["session_affinity"] is None
    assert (plan["primary_ready_threshold"], plan["canary_ready_threshold"]) == (100, 100)


@pytest.mark.parametrize("extra, field, named", [
    ({"iterations": 5}, "spec.analysis.stepWeight", "spec.analysis.iterations"),
    ({"iterations": 5, "match": [{"headers": {"x": {"exact": "y"}}}], "mirror": True}, "spec.analysis.mirror",
     "spec.analysis.match"),
    ({"mirrorWeight": 20}, "spec.analysis.mirrorWeight", "spec.analysis.mirror"),
    ({"iterations": 5, "sessionAffinity": {"cookieName": "c"}}, "spec.analysis.sessionAffinity",
     "spec.analysis.iterations"),
])
def test_fields_flagger_silently_drops_are_named_in_notes(extra, field, named):
    plan = build_plan(manifest(**extra))
    notes = [n for n in plan["notes"] if n.startswith(field + ":")]
    assert notes and named in notes[0] and "ignored" in notes[0], plan["notes"]


def test_flaggers_precedence_decides_when_both_are_given():
    plan = build_plan(manifest(iterations=4))
    assert plan["strategy"] == "blue-green" and plan["steps"] == [0] * 4 + [100]
    plan = build_plan(manifest(iterations=4, match=INSIDER, mirror=True))
    assert plan["strategy"] == "ab-testing" and plan["mirror_weight"] is None
    assert build_plan(manifest(mirrorWeight=20))["mirror_weight"] is None
    assert build_plan(manifest(iterations=4, sessionAffinity={"cookieName": "c"}))["session_affinity"] is None


def test_match_without_iterations_is_refused_naming_both_fields():
    problems = errors_of(manifest(match=INSIDER))
    assert len(problems) == 1 and problems[0].startswith("spec.analysis.match: needs spec.analysis.iterations")
    assert "stepWeight" in problems[0]


@pytest.mark.parametrize("extra, expected", [
    ({"iterations": 0}, "spec.analysis.iterations: must be an integer of at least 1, got 0"),
    ({"iterations": "ten"}, 'spec.analysis.iterations: must be an integer of at least 1, got "ten"'),
    ({"iterations": 2, "match": {"headers": {}}}, "spec.analysis.match: must be a list"),
    ({"iterations": 2, "match": [{}]}, "spec.analysis.match[0]: is empty"),
    ({"iterations": 2, "match": [{"header": {"x": {"exact": "y"}}}]}, "spec.analysis.match[0].header: unknown field"),
    ({"iterations": 2, "match": [{"headers": {"x": {"exact": "y", "regex": "z"}}}]},
     "spec.analysis.match[0].headers.x: give one of exact, prefix or regex, got exact, regex"),
    ({"iterations": 2, "match": [{"headers": {"x": {"suffix": "y"}}}]},
     "spec.analysis.match[0].headers.x.suffix: unknown field; a string match has exact, prefix or regex (Istio has"),
    ({"iterations": 2, "match": [{"headers": {"x": {}}}]}, "spec.analysis.match[0].headers.x: needs one of exact"),
    ({"iterations": 2, "match": [{"headers": {"x": "y"}}]}, 'spec.analysis.match[0].headers.x: must be a mapping'),
    ({"iterations": 2, "match": [{"sourceLabels": {"app": 3}}]}, "spec.analysis.match[0].sourceLabels.app: must be a string"),
    ({"iterations": 2, "match": [{"ignoreUriCase": "yes"}]}, "spec.analysis.match[0].ignoreUriCase: must be true or false"),
    ({"mirror": "yes"}, 'spec.analysis.mirror: must be true or false, got "yes"'),
    ({"mirror": True, "mirrorWeight": 0}, "spec.analysis.mirrorWeight: must be an integer between 1 and 100, got 0"),
    ({"mirror": True, "mirrorWeight": 101}, "spec.analysis.mirrorWeight: must be an integer between 1 and 100, got 101"),
    ({"sessionAffinity": {"maxAge": 60}}, "spec.analysis.sessionAffinity.cookieName: is required"),
    ({"sessionAffinity": {"cookieName": "c", "maxAge": 0}}, "spec.analysis.sessionAffinity.maxAge: must be an integer"),
    ({"sessionAffinity": {"cookieName": "c", "cookie": "x"}}, "spec.analysis.sessionAffinity.cookie: unknown field"),
    ({"sessionAffinity": {"cookieName": "c", "primaryCookieName": "c"}},
     "spec.analysis.sessionAffinity.primaryCookieName: must differ from cookieName"),
    ({"sessionAffinity": {"cookieName": "c", "sameSite": "lax"}}, "spec.analysis.sessionAffinity.sameSite: must be Strict"),
    ({"primaryReadyThreshold": 101}, "spec.analysis.primaryReadyThreshold: must be an integer between 0 and 100, got 101"),
    ({"canaryReadyThreshold": "all"}, 'spec.analysis.canaryReadyThreshold: must be an integer between 0 and 100'),
])
def test_strategy_field_errors_name_the_field(extra, expected):
    problems = errors_of(manifest(**extra))
    assert any(p.startswith(expected) for p in problems), problems


def test_match_accepts_istio_conditions_and_says_which_flagger_would_drop():
    match = [{"headers": {"user-agent": {"regex": ".*Firefox.*"}}, "queryParams": {"beta": {}}},
             {"sourceLabels": {"app": "frontend"}}, {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}]
    plan = build_plan(iteration_manifest(iterations=2, match=match))
    assert plan["match"] == match
    assert plan["notes"] == ["spec.analysis.match[2]: uri, method not in Flagger's Canary CRD (its API server would "
                             "drop them); the role applies them as Istio match conditions"]


def test_session_affinity_and_ready_thresholds():
    plan = build_plan(manifest(sessionAffinity={"cookieName": "flagger-cookie", "primaryCookieName": "primary-cookie"},
                               primaryReadyThreshold=50, canaryReadyThreshold=0))
    assert plan["session_affinity"] == {"cookie_name": "flagger-cookie", "max_age": 86400,
                                        "primary_cookie_name": "primary-cookie"}
    assert (plan["primary_ready_threshold"], plan["canary_ready_threshold"]) == (50, 0)
    assert plan["notes"] == []
    plan = build_plan(manifest(sessionAffinity={"cookieName": "c", "maxAge": 60, "secure": True, "path": "/"}))
    assert plan["session_affinity"] == {"cookie_name": "c", "max_age": 60, "primary_cookie_name": None}
    assert sorted(plan["notes"]) == [
        "spec.analysis.sessionAffinity.%s: not used by the role: the role's affinity cookie carries the name, value "
        "and Max-Age only" % key for key in ("path", "secure")]


def test_step_weights_lose_to_step_weight_as_in_flagger():
    plan = build_plan(manifest(stepWeights=[5, 50]))
    assert plan["steps"] == [10, 20, 30, 40, 50] and plan["step_weights"] == []
    assert any(n.startswith("spec.analysis.stepWeights: ignored") for n in plan["notes"])


def test_no_weights_and_no_iterations_names_every_choice():
    document = iteration_manifest()
    problems = errors_of(document)
    assert problems == ["spec.analysis: needs stepWeight (with maxWeight) or stepWeights for a canary, or iterations "
                        "for A/B testing (with match) or blue/green"]


def test_template_ref_resolves_against_given_templates():
    document = manifest(metrics=[{"name": "error-budget", "templateRef": {"name": "budget"},
                                  "templateVariables": {"limit": 3}, "thresholdRange": {"max": 1}, "interval": "2m"}])
    template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "metadata": {"name": "budget", "namespace": "prod"},
                "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                         "query": "sum(rate(x{namespace='{{ namespace }}'}[{{ interval }}])) > {{ variables.limit }}"}}
    plan = build_plan(document, [template])
    metric = plan["metrics"][0]
    assert metric["template"] == template and metric["templateVariables"] == {"limit": "3"} and metric["interval"] == "2m"
    other_namespace = dict(template, metadata={"name": "budget", "namespace": "staging"})
    problems = errors_of(document, metric_templates=[other_namespace])
    assert problems == ["spec.analysis.metrics[0].templateRef: MetricTemplate prod/budget was not given "
                        "(pass it in canary_metric_templates; given: staging/budget)"]
    datadog = dict(template, spec={"provider": {"type": "datadog"}, "query": "avg:x"})
    assert "only prometheus is supported" in errors_of(document, metric_templates=[datadog])[0]


def test_unknown_metric_without_template_is_an_error():
    problems = errors_of(manifest(metrics=[{"name": "cpu", "thresholdRange": {"max": 1}}]))
    assert problems == ['spec.analysis.metrics[0]: "cpu" is not a builtin metric (request-success-rate, request-duration): '
                        "give it a templateRef"]


def test_deprecated_threshold_field_keeps_flaggers_meaning():
    plan = build_plan(manifest(metrics=[{"name": "request-success-rate", "threshold": 99},
                                        {"name": "request-duration", "threshold": 500}]))
    assert [m["thresholdRange"] for m in plan["metrics"]] == [{"min": 99.0}, {"max": 500.0}]


def test_webhooks_grouped_by_type_with_rollout_default():
    hooks = [{"name": "smoke", "type": "pre-rollout", "url": "http://hooks/", "timeout": "30s",
              "metadata": {"type": "bash", "cmd": "curl -sf http://x"}},
             {"name": "load", "url": "http://hooks/", "metadata": {"type": "cmd", "cmd": "hey"}},
             {"name": "gate", "type": "confirm-promotion", "url": "http://hooks/gate/check"}]
    plan = build_plan(manifest(webhooks=hooks))
    assert [h["name"] for h in plan["webhooks"]["pre-rollout"]] == ["smoke"]
    assert plan["webhooks"]["rollout"][0]["type"] == "rollout"
    assert plan["webhooks"]["confirm-promotion"][0]["metadata"] == {}
    assert plan["webhooks"]["pre-rollout"][0]["timeout"] == "30s"


def test_webhook_errors_name_the_entry():
    problems = errors_of(manifest(webhooks=[{"name": "x", "type": "pre-deploy", "url": "http://h/"},
                                            {"name": "y", "url": "ftp://h/"}]))
    assert problems[0].startswith("spec.analysis.webhooks[0].type: must be one of confirm-rollout")
    assert problems[1] == 'spec.analysis.webhooks[1].url: must be an http:// or https:// address, got "ftp://h/"'


def test_critical_metrics_must_exist():
    plan = build_plan(SEED, critical_metrics=["request-success-rate"])
    assert [m["critical"] for m in plan["metrics"]] == [True, False]
    assert errors_of(SEED, critical_metrics=["latency"])[0].startswith("critical metrics: latency named but not among")


def test_not_a_canary():
    assert errors_of({"kind": "Deployment", "metadata": {"name": "a", "namespace": "b"}, "spec": {}})[0] == (
        'kind: must be Canary, got "Deployment"')
    assert errors_of("text") == ['manifest: must be a mapping, got "text"']


def test_legacy_canary_analysis_key_and_provider():
    document = copy.deepcopy(SEED)
    document["spec"]["canaryAnalysis"] = document["spec"].pop("analysis")
    assert build_plan(document)["steps"] == [10, 20, 30, 40, 50]
    document["spec"]["provider"] = "linkerd"
    errors = errors_of(document)
    assert len(errors) == 1 and errors[0].startswith('spec.provider: "linkerd" is not supported; supported: istio')
    assert "gatewayapi:v1" in errors[0] and "gatewayapi:v1beta1" in errors[0]


def gateway_manifest(provider="gatewayapi:v1", **service):
    document = copy.deepcopy(SEED)
    document["spec"]["provider"] = provider
    document["spec"]["service"] = {"port": 80, "hosts": ["api.example.com"],
                                   "gatewayRefs": [{"name": "public", "namespace": "gateways"}]}
    document["spec"]["service"].update(service)
    return document


@pytest.mark.parametrize("provider, router, api_version", [
    (None, "istio", None),
    ("istio", "istio", None),
    ("gatewayapi:v1", "gatewayapi", "gateway.networking.k8s.io/v1"),
    ("gatewayapi:v1beta1", "gatewayapi", "gateway.networking.k8s.io/v1beta1"),
])
def test_the_plan_names_the_router_and_the_route_api_version(provider, router, api_version):
    document = copy.deepcopy(SEED) if router == "istio" else gateway_manifest(provider)
    if provider is not None:
        document["spec"]["provider"] = provider
    plan = build_plan(document)
    assert (plan["provider"], plan["route_api_version"]) == (router, api_version)
    if router == "istio":
        assert plan["notes"] == []
    else:
        assert plan["notes"] == ["spec.analysis.metrics: request-success-rate and request-duration query Istio's "
                                 "telemetry (istio_requests_total): right when Istio implements the Gateway API; with "
                                 "another implementation, give MetricTemplates over its metrics (docs/gateway-api.md)"]
        document["spec"]["analysis"]["metrics"] = [{"name": "errors", "thresholdRange": {"max": 1}, "query": "vector(0)"}]
        assert build_plan(document)["notes"] == []


def test_a_manifest_without_provider_takes_the_mesh_provider_and_its_own_wins():
    document = gateway_manifest()
    del document["spec"]["provider"]
    plan = build_plan(document, mesh_provider="gatewayapi:v1beta1")
    assert (plan["provider"], plan["route_api_version"]) == ("gatewayapi", "gateway.networking.k8s.io/v1beta1")
    assert build_plan(copy.deepcopy(SEED), mesh_provider=None)["provider"] == "istio"
    assert build_plan(gateway_manifest(), mesh_provider="istio")["provider"] == "gatewayapi"
    with pytest.raises(CanarySpecError) as caught:
        build_plan(copy.deepcopy(SEED), mesh_provider="linkerd")
    assert caught.value.errors[0].startswith('the mesh provider (canary_mesh_provider): "linkerd" is not supported')


def test_gateway_api_needs_gateway_refs_and_checks_them():
    document = gateway_manifest()
    del document["spec"]["service"]["gatewayRefs"]
    assert errors_of(document) == ["spec.service.gatewayRefs: is required with a Gateway API provider: the Gateways "
                                   "(name, namespace, sectionName, port) the HTTPRoute attaches to"]
    errors = errors_of(gateway_manifest(gatewayRefs=[{"namespace": "gateways", "port": 0, "listener": "web"}]))
    assert [e.split(":")[0] for e in errors] == ["spec.service.gatewayRefs[0].listener", "spec.service.gatewayRefs[0].name",
                                                 "spec.service.gatewayRefs[0].port"], errors


def test_istio_only_fields_are_refused_with_gateway_api_and_named():
    document = gateway_manifest(gateways=["public-gateway"], trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}},
                                retries={"attempts": 3}, corsPolicy={"allowOrigins": [{"exact": "a"}]},
                                delegation=True)
    named = sorted(error.split(":")[0] for error in errors_of(document))
    assert named == ["spec.service.corsPolicy", "spec.service.delegation", "spec.service.gateways",
                     "spec.service.retries", "spec.service.trafficPolicy"]
    assert all("configures Istio only" in error for error in errors_of(document))


def test_gateway_api_refuses_match_conditions_an_httproute_cannot_express():
    document = gateway_manifest(match=[{"uri": {"prefix": "/api"}, "authority": {"exact": "a"},
                                        "headers": {"x-user": {"prefix": "beta"}}}])
    document["spec"]["analysis"].update({"iterations": 2, "match": [{"sourceLabels": {"app": "a"}}]})
    for key in ("stepWeight", "maxWeight"):
        document["spec"]["analysis"].pop(key)
    named = sorted(error.split(":")[0] for error in errors_of(document))
    assert named == ["spec.analysis.match[0].sourceLabels", "spec.service.match[0].authority",
                     "spec.service.match[0].headers.x-user"]
    fine = gateway_manifest(match=[{"uri": {"regex": "/v[0-9]+"}, "method": {"exact": "GET"},
                                    "queryParams": {"beta": {"exact": "1"}}}])
    assert build_plan(fine)["service"]["match"][0]["method"] == {"exact": "GET"}


def test_gateway_refs_with_istio_are_noted_as_unused():
    document = copy.deepcopy(SEED)
    document["spec"]["service"]["gatewayRefs"] = [{"name": "public"}]
    notes = build_plan(document)["notes"]
    assert len(notes) == 1 and notes[0].startswith("spec.service.gatewayRefs: not used by the role"), notes


@pytest.mark.parametrize("analysis, strategy, iterations, mirrored_steps", [
    ({"iterations": 3}, "blue-green", 3, []),
    ({"iterations": 2, "mirror": True, "mirrorWeight": 40}, "blue-green-mirror", 2, [0, 1]),
    ({"iterations": 4, "match": INSIDER}, "ab-testing", 4, []),
])
def test_the_release_loop_reads_the_iteration_plans_as_meant(analysis, strategy, iterations, mirrored_steps):
    from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy

    plan = build_plan(iteration_manifest(**analysis))
    walked = Strategy.from_plan(plan)
    assert walked.name == strategy and walked.iteration_count == iterations
    assert [index for index in range(len(plan["steps"])) if walked.is_mirror_step(index)] == mirrored_steps
    assert walked.switches_to_canary == (strategy != "ab-testing")


def test_the_release_loop_mirrors_only_the_first_step_of_a_mirrored_canary():
    from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy

    walked = Strategy.from_plan(build_plan(manifest(mirror=True)))
    assert [walked.is_mirror_step(index) for index in range(3)] == [True, False, False]


def test_an_override_does_not_hide_an_invalid_manifest_interval():
    document = copy.deepcopy(SEED)
    document["spec"]["analysis"]["interval"] = "1 minute"
    document["spec"]["analysis"]["metrics"][0]["interval"] = "a while"
    with pytest.raises(CanarySpecError) as caught:
        build_plan(document, interval_override="2s", metric_interval_override="10s")
    errors = caught.value.errors
    assert any(error.startswith("spec.analysis.interval:") for error in errors), errors
    assert any(error.startswith("spec.analysis.metrics[0].interval: must be a Prometheus duration") for error in errors), errors
    assert len(errors) == 2
    # A valid manifest still takes the overrides.
    plan = build_plan(copy.deepcopy(SEED), interval_override="2s", metric_interval_override="10s")
    assert plan["interval_seconds"] == 2.0 and {m["interval"] for m in plan["metrics"]} == {"10s"}

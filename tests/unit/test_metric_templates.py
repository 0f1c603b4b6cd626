"""Builtin queries, Flagger-style placeholder rendering, escaping and metric resolution."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import (
    BUILTIN_QUERIES,
    MetricDefinitionError,
    RenderContext,
    TemplateError,
    escape_promql_string,
    render_metric,
    render_query,
    resolve_metric,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import collapse_whitespace

MODEL = {"name": "podinfo", "namespace": "test", "target": "podinfo", "service": "podinfo", "ingress": None, "interval": "1m"}

# Flagger's Istio observer queries after its whitespace normalisation, written out by hand.
FLAGGER_SUCCESS_RATE = (
    'sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="prod", '
    'destination_workload=~"backend-service", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ '
    'reporter="destination", destination_workload_namespace="prod", destination_workload=~"backend-service" }[1m] ) ) * 100'
)
FLAGGER_DURATION = (
    'histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", '
    'destination_workload_namespace="prod", destination_workload=~"backend-service" }[1m] ) ) by (le) )'
)


@pytest.mark.parametrize("name, expected", [("request-success-rate", FLAGGER_SUCCESS_RATE), ("request-duration", FLAGGER_DURATION)])
def test_builtins_render_to_flaggers_promql(name, expected):
    spec = resolve_metric({"name": name, "thresholdRange": {"min": 99}})
    rendered = collapse_whitespace(render_metric(spec, RenderContext("prod", "backend-service")))
    assert rendered == expected


@pytest.mark.parametrize("template", ["{{ target }}", "{{target}}", "{{   target\t}}", "{{ .target }}", "{{\ntarget\n}}"])
def test_whitespace_inside_placeholders_is_tolerated(template):
    assert render_query('x{a="%s"}' % template, MODEL) == 'x{a="podinfo"}'


def test_trim_markers_remove_surrounding_whitespace_like_go_templates():
    assert render_query("a  {{- target -}}  b", MODEL) == "apodinfob"
    assert render_query("a  {{- target }}  b", MODEL) == "apodinfo  b"


def test_template_variables_are_substituted():
    rendered = render_query('m{code!="{{ variables.code }}"}[{{ interval }}]', MODEL, {"code": "404"})
    assert rendered == 'm{code!="404"}[1m]'


def test_missing_template_variable_is_an_error_naming_it():
    with pytest.raises(TemplateError, match="variables.code.*defined: other"):
        render_query('m{c="{{ variables.code }}"}', MODEL, {"other": "1"})


def test_unknown_expression_is_an_error():
    with pytest.raises(TemplateError, match="unknown template expression"):
        render_query('m{c="{{ canary.name }}"}', MODEL)


def test_unset_model_variable_is_an_error():
    with pytest.raises(TemplateError, match="'ingress' has no value"):
        render_query('m{c="{{ ingress }}"}', MODEL)


def test_unclosed_placeholder_is_an_error():
    with pytest.raises(TemplateError, match="without a matching"):
        render_query('m{c="{{ target "}', MODEL)


def test_value_with_quote_cannot_close_the_string_literal():
    model = dict(MODEL, target='x"} or vector(1) #')
    rendered = render_query('m{w=~"{{ target }}"}', model)
    assert rendered == 'm{w=~"x\\"} or vector(1) #"}'


def test_value_in_single_quoted_literal_escapes_single_quotes():
    model = dict(MODEL, target="a'b\"c")
    assert render_query("m{w='{{ target }}'}", model) == "m{w='a\\'b\"c'}"


def test_backslash_and_control_characters_are_escaped():
    assert escape_promql_string('a\\b\n"\x01') == 'a\\\\b\\n\\"\\x01'


def test_backtick_literal_rejects_backticks():
    with pytest.raises(TemplateError, match="backtick"):
        render_query("m{w=`{{ target }}`}", dict(MODEL, target="a`b"))
    assert render_query("m{w=`{{ target }}`}", dict(MODEL, target='a"b')) == 'm{w=`a"b`}'


def test_escaped_quote_in_template_does_not_end_the_literal():
    # The placeholder is still inside the string opened before the escaped quote.
    assert render_query('m{w="x\\"{{ target }}"}', dict(MODEL, target='p"')) == 'm{w="x\\"p\\""}'


def test_quote_inside_comment_does_not_open_a_literal():
    template = '# don\'t "quote"\nm[{{ interval }}]'
    assert render_query(template, MODEL) == '# don\'t "quote"\nm[1m]'


def test_bare_placeholder_rejects_values_that_would_become_query_syntax():
    with pytest.raises(TemplateError, match="outside a quoted string"):
        render_query("topk({{ variables.k }}, m)", MODEL, {"k": "1, vector(1)) or (m"})
    assert render_query("topk({{ variables.k }}, m)", MODEL, {"k": "3"}) == "topk(3, m)"


@pytest.mark.parametrize("interval", ["1m) or vector(1", "1 m", "m1", ""])
def test_interval_must_be_a_duration(interval):
    with pytest.raises(TemplateError):
        render_query("rate(m[{{ interval }}])", dict(MODEL, interval=interval))


def test_service_and_name_default_to_target():
    context = RenderContext("ns", "app")
    assert render_query("{{ service }}/{{ name }}", context.model("1m")) == "app/app"
    assert render_query("{{ service }}", RenderContext("ns", "app", service="svc").model("1m")) == "svc"


TEMPLATE = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "not-found", "namespace": "istio-system"},
    "spec": {"provider": {"type": "prometheus", "address": "http://prom:9090"}, "query": 'x{c="{{ variables.code }}"}'},
}


def test_template_ref_by_name_and_by_flagger_reference():
    for ref in ("not-found", {"name": "not-found", "namespace": "istio-system"}):
        spec = resolve_metric({"name": "nf", "templateRef": ref, "templateVariables": {"code": "404"}}, [TEMPLATE])
        assert spec.source == "template:not-found"
        assert render_metric(spec, RenderContext("a", "b")) == 'x{c="404"}'


def test_template_ref_in_another_namespace_does_not_match():
    with pytest.raises(MetricDefinitionError, match="matches none.*not-found/istio-system"):
        resolve_metric({"name": "nf", "templateRef": {"name": "not-found", "namespace": "other"}}, [TEMPLATE])


def test_inline_template_and_missing_variable_error_names_the_metric():
    spec = resolve_metric({"name": "nf", "template": TEMPLATE})
    with pytest.raises(TemplateError, match="metric 'nf'.*variables.code"):
        render_metric(spec, RenderContext("a", "b"))


def test_non_prometheus_provider_is_rejected():
    datadog = dict(TEMPLATE, spec={"provider": {"type": "datadog"}, "query": "avg:x"})
    with pytest.raises(MetricDefinitionError, match="'datadog' is not supported"):
        resolve_metric({"name": "dd", "template": datadog})


def test_custom_query_wins_over_builtin_name():
    spec = resolve_metric({"name": "request-success-rate", "query": "vector(1)"})
    assert spec.source == "query" and spec.builtin is None


@pytest.mark.parametrize(
    "metric, message",
    [
        ({"name": "unknown"}, "not a builtin"),
        ({"name": "m", "query": "x", "on_no_data": "maybe"}, "on_no_data"),
        ({"name": "m", "query": "x", "interval": "5 minutes"}, "interval"),
        ({"name": "m", "query": "x", "thresholdRange": {"min": 10, "max": 5}}, "greater than max"),
        ({"name": "m", "query": "x", "thresholdRange": {"min": "high"}}, "must be a number"),
        ({"name": "m", "query": "x", "thresholdRange": {"above": 1}}, "only min and max"),
        ({"query": "x"}, "needs a name"),
    ],
)
def test_bad_metric_definitions_are_explained(metric, message):
    with pytest.raises(MetricDefinitionError, match=message):
        resolve_metric(metric)


def test_defaults_follow_flagger():
    spec = resolve_metric({"name": "request-duration", "thresholdRange": {"max": 500}})
    assert (spec.interval, spec.on_no_data, spec.threshold_range.min, spec.threshold_range.max) == ("1m", "fail", None, 500.0)


def test_builtin_metrics_are_flaggers_two():
    assert set(BUILTIN_QUERIES) == {"request-success-rate", "request-duration"}

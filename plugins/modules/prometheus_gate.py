#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_gate
short_description: Judge a canary with Prometheus metric checks, Flagger-compatible
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - Evaluates the metric checks of a Flagger Canary's C(analysis.metrics) against Prometheus and says whether the canary
    passes. The same configuration gives the same verdicts as Flagger; the module adds watching inside the interval,
    comparison with the primary, rehearsal against past data, and distinct answers for no data, an unreachable
    Prometheus and a bad query.
  - Builtin metrics V(request-success-rate) and V(request-duration) use the PromQL of Flagger's Istio observer
    unchanged. Custom metrics use O(metrics[].query), an inline Flagger C(MetricTemplate) (O(metrics[].template)) or
    one from O(metric_templates) (O(metrics[].templateRef)).
  - Placeholders C({{ namespace }}), C({{ target }}), C({{ service }}), C({{ name }}), C({{ interval }}) and
    C({{ variables.<key> }}) are filled in as Flagger does; each value is escaped for the string literal it lands in,
    so an object name cannot change the query.
  - "Three kinds of trouble give three answers: a query Prometheus rejects (HTTP 400/422), an unknown template or a
    missing template variable fail the task at once as a configuration error; an unreachable Prometheus, a timeout or
    a 5xx is a failed check (RV(metrics[].result=error)) with the reason, never a pass; an empty or NaN result follows
    O(metrics[].on_no_data) and its reason says whether the workload has no Istio telemetry at all (sidecar missing?)
    or had no requests in the window (no traffic)."
  - Flagger judges the last series a query returns. When a query returns several series this module judges the worst
    one against the threshold, so a breach in any series is never hidden.
  - Queries are read-only, so check mode runs them normally.
  - See the collection's C(docs/prometheus_gate.md) for each mode and for rehearsing a gate against history.
extends_documentation_fragment:
  - progressive.delivery.prometheus
options:
  metrics:
    description:
      - The checks, written as in a Flagger Canary's C(analysis.metrics).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Metric name. V(request-success-rate) and V(request-duration) are the builtin Istio checks when no query or
            template is given.
        type: str
        required: true
      query:
        description:
          - A PromQL query template returning one number.
        type: str
      templateRef:
        description:
          - Name of a MetricTemplate in O(metric_templates), as a string or as Flagger's C({name, namespace}).
        type: raw
      template:
        description:
          - A Flagger C(MetricTemplate) manifest (C(spec.provider.type=prometheus), C(spec.query)).
          - Its C(spec.provider.address), when set, is the Prometheus that answers this metric, as in Flagger; see
            O(metric_templates) for the credentials.
        type: dict
      templateVariables:
        description:
          - Values for C({{ variables.<key> }}) placeholders.
        type: dict
      interval:
        description:
          - The query window, a Prometheus duration. Defaults to V(1m) as in Flagger.
        type: str
      thresholdRange:
        description:
          - Accepted range. A value below O(metrics[].thresholdRange.min) or above O(metrics[].thresholdRange.max)
            fails; a value equal to a bound passes. Without a range any value passes.
        type: dict
        suboptions:
          min:
            description: Smallest value that passes.
            type: float
          max:
            description: Largest value that passes.
            type: float
      on_no_data:
        description:
          - What an empty or NaN result means. V(fail) (Flagger's behaviour) counts it as a failed check, V(pass) lets it
            pass, V(skip) leaves the metric out of the verdict. The reason always carries the diagnosis.
        type: str
        choices: [fail, pass, skip]
        default: fail
      critical:
        description:
          - Marks a metric whose failure should roll back at once rather than count towards Flagger's C(threshold).
            The module reports it in RV(critical_failure); the caller decides.
        type: bool
        default: false
  metric_templates:
    description:
      - Flagger C(MetricTemplate) manifests that O(metrics[].templateRef) resolves against, for example read with
        C(kubernetes.core.k8s_info) or from the repository that holds the Canary.
      - A template's C(spec.provider.address), when set, is the Prometheus that answers its metrics, as in Flagger.
        Only the transport options O(prometheus_ca_cert), O(prometheus_validate_certs) and O(prometheus_timeout)
        carry over to it; the credentials options are sent to O(prometheus_url) only, never to another address.
        C(spec.provider.insecureSkipVerify=true) turns certificate validation off for that address.
      - This module does not read the cluster, so it cannot read the Secret a template's C(spec.provider.secretRef)
        names. When the address is O(prometheus_url) itself, the credentials options of this module apply instead.
        Otherwise the task fails, naming the Secret; give that Prometheus as O(prometheus_url) with
        O(prometheus_token) or O(prometheus_username)/O(prometheus_password), or use
        M(progressive.delivery.canary_analysis), which reads the Secret.
      - A template without C(spec.provider.address) is answered by O(prometheus_url). (Flagger rejects such a
        template.)
    type: list
    elements: dict
    default: []
  namespace:
    description:
      - Namespace of the canary workload (C({{ namespace }})).
    type: str
    required: true
  target:
    description:
      - Name of the canary workload, the Canary's C(targetRef.name) (C({{ target }})).
    type: str
    required: true
  service:
    description:
      - Service name (C({{ service }})). Defaults to O(target), as in Flagger.
    type: str
  canary_name:
    description:
      - Canary object name (C({{ name }})). Defaults to O(target).
    type: str
  primary:
    description:
      - Name of the primary workload that O(mode=compare) and O(mode=sequential) measure the canary against.
        Defaults to C(<target>-primary).
    type: str
  mode:
    description:
      - V(once) evaluates now, as Flagger does once per interval.
      - V(watch) evaluates every O(poll) seconds for O(duration) seconds and returns at the first breach, with all
        samples. Empty results and an unreachable Prometheus do not end the watch early; the last sample decides.
      - V(compare) measures the canary against O(primary) over the same window. V(request-success-rate) uses a
        one-sided two-proportion z-test on request and error counts; V(request-duration) fails when the canary's p99
        exceeds the primary's by more than O(latency_tolerance) and the share of slow requests is significantly
        higher. Custom metrics fail when the canary breaches its range and the primary does not (or less badly). With
        fewer than O(min_requests) on either side the verdict is V(inconclusive). A service-wide incident that hurts
        both versions alike passes; a canary clearly worse than the primary fails even inside the absolute range.
      - V(at) evaluates at the past moment O(time).
      - V(range) replays the checks over O(start)..O(end), one evaluation per O(step), to rehearse a gate against
        history.
      - V(sequential) watches like V(watch), but judges the builtin V(request-success-rate) and V(request-duration)
        with anytime-valid sequential tests on the exact counts of the canary and O(primary) since O(start) - the
        canary against the threshold, and against the primary. A test whose evidence reaches its boundary fails at
        once; at the end, a metric with at least O(sequential.min_requests) canary requests in this call passes, with
        fewer it counts as O(metrics[].on_no_data) says. Other metrics are judged as in V(watch). Pass the returned
        RV(sequential) as O(sequential.state) to the next call to go on counting. See the collection's
        C(docs/analysis.md).
    type: str
    choices: [once, watch, compare, at, range, sequential]
    default: once
  poll:
    description:
      - Seconds between evaluations in O(mode=watch); a number or a duration such as V(5s).
    type: raw
    default: 5
  duration:
    description:
      - How long O(mode=watch) watches, in seconds or as a duration such as V(1m). Usually the analysis interval.
    type: raw
    default: 60
  confidence:
    description:
      - Confidence of the statistical tests of O(mode=compare), between 0.5 and 1.
    type: float
    default: 0.95
  min_requests:
    description:
      - Requests each version needs in the window before O(mode=compare) judges it.
    type: int
    default: 50
  latency_tolerance:
    description:
      - Largest accepted ratio of canary p99 to primary p99 in O(mode=compare); V(1.2) lets the canary be 20% slower.
    type: float
    default: 1.2
  time:
    description:
      - Evaluation time for O(mode=at), also accepted by O(mode=compare). RFC 3339, unix seconds, V(now) or an offset
        such as V(-2h).
    type: raw
  start:
    description:
      - Start of the replay in O(mode=range); same formats as O(time).
      - In O(mode=sequential), when the canary began taking traffic; the counts start there. Defaults to the call's
        first poll. Ignored when O(sequential.state) already says it.
    type: raw
  sequential:
    description:
      - Settings of O(mode=sequential).
    type: dict
    suboptions:
      alpha:
        description: The highest probability of a false failure over all the calls that go on from one another;
          split evenly among the tests (two per metric).
        type: float
        default: 0.01
      tolerance:
        description: How much worse than the primary the canary may be before it counts as a regression
          (V(0.1) - up to 1.1 times the primary's error rate or share of slow requests).
        type: float
        default: 0.0
      min_effect:
        description: The smallest regression against the primary, beyond O(sequential.tolerance), the tests look for.
        type: float
        default: 0.1
      min_requests:
        description: Canary requests one call needs for a V(pass).
        type: int
        default: 10
      state:
        description: The RV(sequential) of the previous call, to go on counting from where it stopped.
        type: dict
  end:
    description:
      - End of the replay in O(mode=range); same formats as O(time).
    type: raw
    default: now
  step:
    description:
      - Seconds between evaluations in O(mode=range), or a duration such as V(1m). Use the analysis interval.
    type: raw
    default: 1m
  fail_on_breach:
    description:
      - When V(false), a failed gate returns RV(passed=false) and the caller decides. When V(true), the task fails
        whenever RV(passed) is false.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Only reads from Prometheus, so check mode evaluates the gate exactly as a normal run does.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: The module never changes anything.
notes:
  - Flagger's provider turns NaN and empty results into "no values found", which halts the analysis like a failed
    check. This module does the same with O(metrics[].on_no_data=fail) and adds the reason.
seealso:
  - name: Flagger metrics analysis
    description: Flagger's documentation of builtin metrics, MetricTemplates and threshold ranges.
    link: https://docs.flagger.app/usage/metrics
"""

EXAMPLES = r"""
- name: Check the canary once, as Flagger does each interval
  progressive.delivery.prometheus_gate:
    prometheus_url: http://prometheus.istio-system:9090
    namespace: prod
    target: backend-service
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 1m
  register: gate

- name: Watch through the interval and stop at the first breach
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    mode: watch
    poll: 5
    duration: 1m
    metrics: "{{ canary.spec.analysis.metrics }}"
  register: gate

- name: Judge one interval sequentially, counting from when the canary took traffic
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    mode: sequential
    start: "{{ canary_started_at }}"
    poll: 1
    duration: 1m
    sequential:
      alpha: 0.01
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
  register: first_interval

- name: Go on from the first interval's counts
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    mode: sequential
    duration: 1m
    sequential:
      state: "{{ first_interval.sequential }}"
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
  register: second_interval

- name: Compare the canary with the primary over the same window
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    mode: compare
    confidence: 0.99
    min_requests: 200
    latency_tolerance: 1.3
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
      - name: request-duration
        thresholdRange:
          max: 500

# Flagger's placeholders ({{ namespace }}, {{ target }}, ...) are filled in by this module, not by Ansible:
# mark a query written in a playbook !unsafe (or wrap it in {% raw %}...{% endraw %}) so Ansible leaves them alone.
- name: Custom metric from a MetricTemplate with variables
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    metric_templates:
      - apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata:
          name: not-found-percentage
        spec:
          provider:
            type: prometheus
          query: !unsafe |
            100 - sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}",response_code!="{{ variables.code }}"}[{{ interval }}]))
            / sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}"}[{{ interval }}])) * 100
    metrics:
      - name: not-found
        templateRef: not-found-percentage
        templateVariables:
          code: "404"
        thresholdRange:
          max: 5
        on_no_data: skip

- name: A MetricTemplate that names its own Prometheus (spec.provider.address) is answered there
  progressive.delivery.prometheus_gate:
    prometheus_url: http://prometheus.istio-system:9090
    namespace: prod
    target: backend-service
    metric_templates:
      - apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata:
          name: queue-depth
        spec:
          provider:
            type: prometheus
            address: http://prometheus.monitoring:9090
          query: !unsafe 'max(queue_depth{namespace="{{ namespace }}", app="{{ target }}"})'
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
      - name: queue-depth
        templateRef: queue-depth
        thresholdRange:
          max: 100

- name: Would this gate have rolled back last Tuesday's release?
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    mode: range
    start: "2024-05-07T14:00:00Z"
    end: "2024-05-07T14:30:00Z"
    step: 1m
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99

- name: Fail the play when the gate fails
  progressive.delivery.prometheus_gate:
    namespace: prod
    target: backend-service
    fail_on_breach: true
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
"""

RETURN = r"""
passed:
  description: Whether every counted metric passed. V(false) for a breach, an error, counted no-data, or an inconclusive comparison.
  returned: always
  type: bool
verdict:
  description: V(pass), V(fail) or V(inconclusive).
  returned: always
  type: str
critical_failure:
  description: Whether a metric marked O(metrics[].critical) did not pass.
  returned: always
  type: bool
metrics:
  description: One entry per metric, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Metric name.
      type: str
    source:
      description: Where the query came from, C(builtin:<name>), C(query) or C(template:<name>).
      type: str
    prometheus:
      description: The Prometheus that answered, its URL without credentials.
      type: str
    query:
      description: The rendered query as sent (whitespace collapsed).
      type: str
    value:
      description: The value judged (the worst series when there are several; in O(mode=range) the worst step). Null without data.
      type: float
    threshold_range:
      description: The accepted range, C({min, max}), or null.
      type: dict
    result:
      description: V(pass), V(fail), V(no_data), V(error), V(inconclusive) or V(skipped).
      type: str
    ok:
      description: Whether this metric counts as passing (for example V(no_data) with O(metrics[].on_no_data=pass)).
      type: bool
    reason:
      description: Why, in words, with the numbers and for no data the diagnosis.
      type: str
    series:
      description: Number of series the query returned.
      type: int
    primary_value:
      description: The primary's value of the same query (O(mode=compare)).
      type: float
      returned: when O(mode=compare)
    breaches:
      description: Number of breaching evaluations (O(mode=range)).
      type: int
      returned: when O(mode=range)
    first_breach_at:
      description: Time of the first breach (O(mode=range)).
      type: str
      returned: when O(mode=range) and a breach happened
  sample:
    - name: request-success-rate
      source: builtin:request-success-rate
      prometheus: http://prometheus.istio-system:9090
      query: sum( rate( istio_requests_total{ reporter="destination", ...
      value: 99.8
      threshold_range: {min: 99}
      result: pass
      ok: true
      reason: value 99.8 is within [min 99]
      series: 1
samples:
  description:
    - Every evaluation of O(mode=watch), O(mode=sequential) or O(mode=range), each with C(at), C(timestamp),
      C(passed) and per-metric C(name), C(value), C(result).
  returned: when O(mode=watch), O(mode=sequential) or O(mode=range)
  type: list
  elements: dict
breached:
  description: Whether O(mode=watch) or O(mode=sequential) stopped early at a breach.
  returned: when O(mode=watch) or O(mode=sequential)
  type: bool
evidence:
  description:
    - Each sequential test's evidence at each poll - C(metric), C(test) (V(rate), V(ratio), V(latency-limit),
      V(latency-order)), C(log_e_value), C(log_boundary) (the test fails when the first reaches the second), C(time).
  returned: when O(mode=sequential)
  type: list
  elements: dict
sequential:
  description: What the next call passes as O(sequential.state) to go on counting.
  returned: when O(mode=sequential)
  type: dict
comparison:
  description: The canary-versus-primary verdict with the numbers (counts, error rates, z, p-value, p99s, ratio).
  returned: when O(mode=compare)
  type: dict
evaluated_at:
  description: Time of the (last) evaluation, RFC 3339 UTC.
  returned: always
  type: str
elapsed:
  description: Seconds the module spent.
  returned: always
  type: float
config_error:
  description: Set when the task failed because of the configuration (bad query, template, credentials, URL).
  returned: on configuration errors
  type: bool
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import hide_url_secrets
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import run_mode, summarize
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.providers import gate_for
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import RenderContext, resolve_metric
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_gate import run_sequential
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.options import PROMETHEUS_ARG_SPEC, SEQUENTIAL_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    HAS_REQUESTS,
    PROMETHEUS_MUTUALLY_EXCLUSIVE,
    PROMETHEUS_REQUIRED_TOGETHER,
    REQUESTS_IMPORT_ERROR,
)

METRIC_OPTIONS = dict(
    name=dict(type="str", required=True),
    query=dict(type="str"),
    templateRef=dict(type="raw"),
    template=dict(type="dict"),
    templateVariables=dict(type="dict"),
    interval=dict(type="str"),
    thresholdRange=dict(type="dict", options=dict(min=dict(type="float"), max=dict(type="float"))),
    on_no_data=dict(type="str", choices=["fail", "pass", "skip"], default="fail"),
    critical=dict(type="bool", default=False),
)


MODE_CHOICES = ["once", "watch", "compare", "at", "range", "sequential"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            PROMETHEUS_ARG_SPEC,
            metrics=dict(type="list", elements="dict", required=True, options=METRIC_OPTIONS),
            metric_templates=dict(type="list", elements="dict", default=[]),
            namespace=dict(type="str", required=True),
            target=dict(type="str", required=True),
            service=dict(type="str"),
            canary_name=dict(type="str"),
            primary=dict(type="str"),
            mode=dict(type="str", default="once", choices=MODE_CHOICES),
            sequential=SEQUENTIAL_ARG_SPEC,
            poll=dict(type="raw", default=5),
            duration=dict(type="raw", default=60),
            confidence=dict(type="float", default=0.95),
            min_requests=dict(type="int", default=50),
            latency_tolerance=dict(type="float", default=1.2),
            time=dict(type="raw"),
            start=dict(type="raw"),
            end=dict(type="raw", default="now"),
            step=dict(type="raw", default="1m"),
            fail_on_breach=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
        mutually_exclusive=PROMETHEUS_MUTUALLY_EXCLUSIVE,
        required_together=PROMETHEUS_REQUIRED_TOGETHER,
        required_if=[("mode", "at", ["time"]), ("mode", "range", ["start"])],
    )
    hide_url_secrets(module, "prometheus_url")
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)

    started = time.monotonic()
    params = module.params
    try:
        specs = [resolve_metric(metric, params["metric_templates"]) for metric in params["metrics"]]
        context = RenderContext(params["namespace"], params["target"], params["service"], params["canary_name"])
        gate = gate_for(specs, context, params)
        result = run_sequential(gate, params) if params["mode"] == "sequential" else run_mode(gate, params)
    except DeliveryError as exc:
        # Prometheus being down is a failed check inside the result; what reaches here is the configuration.
        module.fail_json(msg="prometheus_gate: configuration error: %s" % exc.message, changed=False, config_error=True,
                         passed=False)

    result["critical_failure"] = any(m["critical"] and not m["ok"] for m in result["metrics"])
    result["elapsed"] = round(time.monotonic() - started, 3)
    message = summarize(result)
    if params["fail_on_breach"] and not result["passed"]:
        module.fail_json(msg=message, changed=False, **result)
    module.exit_json(msg=message, changed=False, **result)


if __name__ == "__main__":
    main()

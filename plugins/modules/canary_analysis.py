#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_analysis
short_description: Analyse one weight step of a canary release until it advances, promotes or rolls back
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - Runs on the Ansible controller (an action plugin). The P(progressive.delivery.canary#role) role calls it once for
    the whole analysis of a release (O(stage=release)); it is documented so that runbooks can drive a release, a
    single step, or the confirm-rollout wait, on their own.
  - One analysis asks the C(rollback) webhooks, runs the C(pre-rollout) (before the first step) or C(rollout)
    webhooks, checks the metrics in Prometheus (in C(fast) mode by watching through the interval, in C(flagger) mode
    once per interval), optionally compares the canary with the primary, and asks the C(confirm-traffic-increase) or
    C(confirm-promotion) gates when every check passed.
  - The decision follows Flagger's rules. Failed checks (a breach, no data, an unreachable Prometheus, a failed
    webhook) are cumulative and roll back at the plan's C(threshold); in C(fast) mode a critical metric or a hard
    breach rolls back at once, and in C(sequential) mode so does a sequential test that crosses its boundary; a
    closed gate holds the release and rolls it back after O(gate_timeout).
  - Analyses repeat inside this one task for as long as the step holds, with a flat cost per round and no limit on
    their number, so a manual gate may stay closed for days. While a gate is closed it is asked again every
    O(gate_poll) seconds. The lease is renewed while the task waits, so no other run takes the canary over.
  - Every analysis is printed as one line as it happens, recorded in the canary's state (the next run resumes from
    it) and sent to the C(event) webhooks. When the checks pass at a step that is not the last, the traffic moves to
    the next weight before the task returns.
  - With O(stage=confirm_rollout) it only waits for the C(confirm-rollout) gates, before anything changes.
  - With O(stage=route) it only routes traffic, as the plan's strategy says (see O(to)); this stage also runs in
    check mode, where it reports what it would change.
  - Every Flagger strategy in the plan is routed here. C(canary) moves the weight. C(ab-testing) sends the requests
    that match C(analysis.match) to the canary through a match route. C(blue-green) gives the canary no user traffic
    until a last step routes all traffic to it. C(blue-green-mirror) also copies C(mirrorWeight) percent of the
    requests to it. C(sessionAffinity) keeps a user on the version that first served it.
extends_documentation_fragment:
  - progressive.delivery.k8s_auth
  - progressive.delivery.prometheus
  - progressive.delivery.pushgateway
  - progressive.delivery.alerts
options:
  stage:
    description:
      - C(step) analyses the step at O(position) until the decision leaves it.
      - C(release) analyses step after step from O(position), in this one task, until a decision promotes, rolls
        back or stops the release; it returns what C(step) returns, summed over the steps it ran. One task per
        release instead of one per step keeps Ansible's own cost per task (a process fork, templating, the
        callbacks) out of every step.
      - C(run) runs the release along O(path), as the role does in one task - the pre-rollout check that Prometheus
        answers, the C(confirm-rollout) gates, the start of the canary, the analysis of every step (as C(release)),
        then the promotion (with C(stepWeightPromotion) and the C(post-rollout) webhooks) or the rollback, telling the
        C(event) webhooks of every phase change. It returns the run's outcome (RV(result), RV(reason), RV(hint))
        and what the report needs; a failure returns RV(touched), so the caller knows whether traffic must be put
        back.
      - C(plan) reads the Canary manifest O(manifest) and the MetricTemplates O(metric_templates) (a relative path
        next to the playbook, then in the directory ansible-playbook runs in), reads the MetricTemplates the manifest
        refers to and was not given from the cluster, as Flagger does, and returns the release plan in RV(plan), as
        the P(progressive.delivery.canary_plan#filter) filter builds it, with the O(alert_providers) files read
        (RV(alert_providers)). It needs neither O(plan) nor O(run_id), and
        also runs in check mode. The plan holds webhook metadata and provider addresses - register it with
        C(no_log).
      - C(confirm_rollout) asks the C(confirm-rollout) gates until they open, a C(rollback) webhook asks for a
        rollback, or O(gate_timeout) passes.
      - C(route) routes traffic as O(to) says and returns.
      - C(templates) reads the Flagger MetricTemplates named in O(template_refs) from the cluster
        (C(metrictemplates.flagger.app)) and returns them in RV(templates); it needs neither O(plan) nor O(run_id).
      - C(preflight) asks every metric of O(plan) once, each of its own Prometheus (a MetricTemplate's provider,
        C(spec.metricsServer), or this task's connection), before the canary takes traffic; a query error is
        reported in RV(metrics), no data is not. It needs no O(run_id) and also runs in check mode.
      - C(report) writes the release report O(report) as C(<report_path>.json) and C(<report_path>.html) on the
        controller (the directory is created; a file that already holds the same text is left alone; in check mode
        nothing is written), keeps it in the cluster with O(reports_kept), publishes the outcome with
        O(publish_stats), and prints the run's summary.
    type: str
    choices: [step, release, run, plan, confirm_rollout, route, templates, report, preflight]
    default: step
  to:
    description:
      - Where O(stage=route) puts the traffic.
      - C(step) routes as the step at O(position) of the plan's strategy does (weight, match route, mirror, sticky
        routes); the next run uses it to put back the traffic of a release it resumes.
      - C(primary) sends all traffic to the primary and removes what the strategy added to the VirtualService (the
        match route, the mirror, the sticky routes), as at the end of every release, promoted or rolled back.
      - C(canary) sends all traffic to the canary, as blue/green does before the promotion.
      - C(weight) sends O(weight) percent to the canary and removes what the strategy added.
    type: str
    choices: [step, primary, canary, weight]
    default: step
  plan:
    description:
      - The release plan the P(progressive.delivery.canary_plan#filter) filter builds from a Flagger Canary manifest
        (its name, namespace, target, steps, threshold, interval, metrics and webhooks).
      - Required by every stage but C(templates).
    type: dict
    default: {}
  position:
    description: Where the release stands, as the previous step returned it in RV(position).
    type: dict
    default: {}
    suboptions:
      index:
        description: Index of the step in the plan's steps; C(-1) for the pre-rollout checks before the first step.
        type: int
        default: -1
      failed_checks:
        description: Failed checks so far in this release.
        type: int
        default: 0
      gate_closed_since:
        description: Unix time since which a gate has been closed, for O(gate_timeout).
        type: float
      held_for_promotion:
        description: The confirm-promotion gate has held the release (phase C(WaitingPromotion)).
        type: bool
        default: false
  run_id:
    description:
      - Identity of this run; the canary's Lease must be held by it.
      - Required by every stage but C(templates), C(report) and C(preflight).
    type: str
  report:
    description:
      - With O(stage=report), the release report, as the P(progressive.delivery.canary_report#filter) filter builds it.
    type: dict
  report_path:
    description:
      - With O(stage=report), the path of the report files without their C(.json) and C(.html) extensions; without
        it no file is written (the report may still be kept in the cluster, O(reports_kept)).
    type: path
  template_refs:
    description:
      - With O(stage=templates), the MetricTemplates to read, each a C(name) and a C(namespace), as the
        P(progressive.delivery.canary_template_refs#filter) filter lists the ones not given to the role.
    type: list
    elements: dict
    default: []
  holder:
    description: Who holds the lock, for people reading the Lease. Derived from the AWX job or the host and process by default.
    type: str
  lease_ttl:
    description: Seconds the lease outlives its last renewal.
    type: int
    default: 120
  checksum:
    description: Revision of the canary, sent in every webhook payload.
    type: str
    default: ""
  mode:
    description:
      - C(fast) watches the metrics through each interval, evaluating every O(poll) seconds.
      - C(flagger) checks once per interval, as Flagger does.
      - C(sequential) watches like C(fast), but judges the builtin C(request-success-rate) and C(request-duration)
        with anytime-valid sequential tests on the exact counts since the canary began taking traffic, against
        their thresholds and against the primary (see O(sequential)). Other metrics are checked as in C(fast) mode.
    type: str
    choices: [fast, flagger, sequential]
    default: fast
  poll:
    description: Seconds (or a duration such as C(500ms)) between two evaluations in C(fast) mode, and before re-checking after a failed check.
    type: raw
    default: 5
  gate_poll:
    description: Seconds (or a duration) between two asks of a closed gate.
    type: raw
    default: 5
  gate_timeout:
    description: Seconds a gate may stay closed before the release rolls back (or, for confirm-rollout, is not started); C(0) waits without limit.
    type: raw
    default: 0
  hard_breach_margin:
    description: In C(fast) mode, a value beyond its bound by more than this share of the bound rolls back at once; negative turns it off.
    type: float
    default: 0.2
  compare:
    description:
      - Compare the canary with the primary over the same window, as
        O(progressive.delivery.prometheus_gate#module:mode=compare) does.
    type: dict
    suboptions:
      confidence:
        description: Confidence of the error-rate test.
        type: float
        default: 0.95
      min_requests:
        description: Requests each version needs before the comparison judges.
        type: int
        default: 50
      latency_tolerance:
        description: Ratio of canary to primary p99 latency tolerated.
        type: float
        default: 1.2
  sequential:
    description:
      - Settings of O(mode=sequential). A test whose evidence reaches its boundary rolls the canary back at once;
        an interval with at least O(sequential.min_requests) canary requests and no crossing passes; an interval
        with fewer is inconclusive and counts as the metric's C(on_no_data) says (Flagger's rule, a failed check).
    type: dict
    suboptions:
      alpha:
        description: The highest probability, over the whole release, of rolling back a canary that is as good as
          the primary and within its thresholds. Split evenly among the tests (two per metric).
        type: float
        default: 0.01
      tolerance:
        description: How much worse than the primary the canary may be before it counts as a regression
          (C(0.1) - up to 1.1 times the primary's error rate, or share of slow requests).
        type: float
        default: 0.0
      min_effect:
        description: The smallest regression, beyond O(sequential.tolerance), the tests look for (C(0.1) - 10 %
          worse). Smaller regressions go undetected rather than slow down the detection of large ones.
        type: float
        default: 0.1
      min_requests:
        description: Canary requests an interval needs for a verdict.
        type: int
        default: 10
      state:
        description:
          - The RV(sequential) a previous step's task returned - the counts and tests go on from there. Without it
            the counts start when this task first routes traffic to the canary, or at its first analysis.
        type: dict
  router:
    description:
      - The route whose weights the release moves - an Istio VirtualService or a Gateway API HTTPRoute, as the
        plan's C(provider) says.
      - Without it, the route M(progressive.delivery.canary_step) generates, named after the apex Service.
    type: dict
    aliases: [virtual_service]
    suboptions:
      kind:
        description:
          - C(VirtualService) for C(provider=istio), C(HTTPRoute) for C(gatewayapi:v1) and C(gatewayapi:v1beta1);
            derived from the plan when not given, and refused when it contradicts the plan.
        type: str
        choices: [VirtualService, HTTPRoute]
      name:
        description: Its name.
        type: str
        required: true
      route:
        description:
          - For a route the user owns, the VirtualService's HTTP route (by C(name)) or the HTTPRoute's rule (by
            C(name)) the canary drives.
        type: str
      api_version:
        description:
          - The route's C(apiVersion), as M(progressive.delivery.canary_step) recorded it at initialization
            (RV(progressive.delivery.canary_step#module:state.route.apiVersion)); discovered when not given.
          - One of C(networking.istio.io/v1), C(networking.istio.io/v1beta1), C(networking.istio.io/v1alpha3),
            C(gateway.networking.k8s.io/v1) or C(gateway.networking.k8s.io/v1beta1).
        type: str
  weight:
    description:
      - With O(stage=route) and O(to=weight), the canary's share in percent; used by the role for
        C(stepWeightPromotion), where the canary's share shrinks one interval at a time.
    type: int
  manifest:
    description:
      - With O(stage=plan), the Flagger Canary manifest - a path to a YAML file, YAML text (which may also hold
        MetricTemplates), or a dict.
    type: raw
  metric_templates:
    description: With O(stage=plan), Flagger MetricTemplates the manifest refers to, as paths, YAML texts or dicts.
    type: list
    elements: raw
    default: []
  interval_override:
    description: With O(stage=plan), replaces the manifest's C(analysis.interval) (C(500ms), C(10s)); empty keeps it.
    type: str
    default: ""
  metric_interval_override:
    description: With O(stage=plan), replaces every metric's C(interval); empty keeps them.
    type: str
    default: ""
  critical_metrics:
    description: With O(stage=plan), metrics whose failure rolls back at once, whatever the threshold.
    type: list
    elements: str
    default: []
  mesh_provider:
    description: With O(stage=plan), the provider when the manifest gives none (C(istio) or C(gatewayapi:v1)).
    type: str
    default: ""
  adopt_virtual_service:
    description:
      - With O(stage=plan), the VirtualService the release is to drive instead of a generated one (C(adopt),
        C(route)); refused when the manifest's provider routes through the Gateway API.
    type: dict
    default: {}
  adopt_http_route:
    description:
      - With O(stage=plan), the HTTPRoute the release is to drive instead of a generated one (C(adopt), C(rule));
        refused when the manifest's provider is Istio.
    type: dict
    default: {}
  reports_kept:
    description:
      - With O(stage=report), keep the report in the ConfigMap C(<canary>-canary-reports) beside the canary's state,
        with the reports of the last O(reports_kept) runs (docs/status.md). C(0) keeps none. A report that cannot be
        kept is a warning.
    type: int
    default: 0
  publish_stats:
    description:
      - With O(stage=report), also publish the outcome (C(canary_phase), C(canary_reason), C(canary_final_weight),
        C(canary_failed_checks), C(canary_duration_seconds), C(canary_report), C(canary_run_id)) as custom stats, as
        M(ansible.builtin.set_stats) does, for AWX.
    type: bool
    default: false
  path:
    description:
      - With O(stage=run), what this run does, as the role decides it from M(progressive.delivery.canary_step)'s
        C(detect) - C(new) (a new revision), C(restart) (a new revision replaced the one a dead run analysed),
        C(resume) and C(continue) (go on from where the state says the release stands), C(promote) and C(finalize)
        (finish a promotion a previous run started), C(rollback) (roll back a release a dead run left).
    type: str
    choices: [new, restart, resume, continue, promote, finalize, rollback]
  resume:
    description:
      - With O(stage=run), the C(resume) that C(detect) returned - C(weight), C(step_index), C(failed_checks) and
        C(phase) of the release a previous run left; where a resumed analysis goes on from.
    type: dict
    default: {}
  reason:
    description: With O(stage=run) and O(path=rollback), why the release is rolled back, for the state and the report.
    type: str
    default: ""
  recovery_timeout:
    description:
      - With O(stage=run), how long a rollback keeps trying to route all traffic to the primary and to scale the
        canary down while the API server fails, in seconds or as a duration (C(2m)). A refusal (403, 404) is not
        tried again.
    type: raw
    default: 120
  recovery_delay:
    description: With O(stage=run), the wait between two of those tries, in seconds or as a duration.
    type: raw
    default: 5
  webhook_validate_certs:
    description: Verify the TLS certificates of webhook receivers.
    type: bool
    default: true
  webhook_ca_cert:
    description: CA bundle for webhook receivers.
    type: path
attributes:
  check_mode:
    support: none
    description: An analysis needs live traffic and calls webhooks that act; in check mode the task is skipped.
  diff_mode:
    support: none
    description: Nothing to show before the analysis has run.
notes:
  - Runs on the controller whatever the play's hosts; it needs network access to the cluster, Prometheus and the
    webhook receivers from there.
  - RBAC needed besides what M(progressive.delivery.canary_step) and M(progressive.delivery.vs_weight) (or
    M(progressive.delivery.httproute_weight)) need - none.
seealso:
  - name: The canary role
    description: How the role drives a release step by step.
    link: https://github.com/progressive-delivery/progressive.delivery/blob/main/docs/role.md
"""

EXAMPLES = r"""
- name: Analyse the whole release, step after step, until it promotes or rolls back
  progressive.delivery.canary_analysis:
    stage: release
    plan: "{{ release_plan }}"
    run_id: "{{ run_id }}"
    checksum: "{{ revision }}"
    prometheus_url: http://prometheus.istio-system:9090
  register: release

- name: Release a new revision from the start of the canary to its promotion or rollback
  progressive.delivery.canary_analysis:
    stage: run
    path: new
    plan: "{{ release_plan }}"
    run_id: "{{ run_id }}"
    checksum: "{{ revision }}"
    prometheus_url: http://prometheus.istio-system:9090
  register: run

- name: Analyse the step at 20 % until it moves on
  progressive.delivery.canary_analysis:
    plan: "{{ release_plan }}"
    position: {index: 1, failed_checks: 0}
    run_id: "{{ run_id }}"
    checksum: "{{ revision }}"
    prometheus_url: http://prometheus.istio-system:9090
  register: step

- name: Wait for approval before the canary starts
  progressive.delivery.canary_analysis:
    stage: confirm_rollout
    plan: "{{ release_plan }}"
    run_id: "{{ run_id }}"
    gate_poll: 10
    gate_timeout: 3600

- name: Put all traffic back on the primary and remove the A/B match route
  progressive.delivery.canary_analysis:
    stage: route
    to: primary
    plan: "{{ release_plan }}"
    run_id: "{{ run_id }}"
    router:
      name: backend-service
"""

RETURN = r"""
plan:
  description: With O(stage=plan), the release plan, as the P(progressive.delivery.canary_plan#filter) filter builds it.
  returned: stage is plan
  type: dict
alert_providers:
  description: With O(stage=plan), O(alert_providers) with each path replaced by its file's text; never shown.
  returned: stage is plan
  type: list
  elements: raw
stored_report:
  description: With O(stage=report) and O(reports_kept), where the report was kept (C(configMap), C(runId)).
  returned: stage is report and the report was kept
  type: dict
result:
  description: With O(stage=run), how the run ended - C(Succeeded), C(Failed), C(NothingToDo) (a closed
    C(confirm-rollout) gate started nothing) or empty (the run did not end the release).
  returned: stage is run
  type: str
  sample: Succeeded
hint:
  description: With O(stage=run), what to do next, for a release that did not succeed.
  returned: stage is run
  type: str
failed_checks:
  description: With O(stage=run), the failed checks at the end of the analysis.
  returned: stage is run
  type: int
touched:
  description:
    - With O(stage=run), whether the run moved traffic or scaled a workload; also returned with a failure, so that a
      rescue puts traffic back only when it was moved.
  returned: stage is run
  type: bool
move:
  description:
    - How the step (or the release) ended - C(advance) (traffic moved to the next weight), C(promote) or C(rollback).
  returned: stage is step or release
  type: str
  sample: advance
reason:
  description: Why the release is promoted or rolled back.
  returned: stage is step, release or run
  type: str
  sample: "failed checks threshold reached 2/2 at weight 20%: request-success-rate 95 (min 99) FAILED"
weight:
  description: Canary weight after the move (with O(stage=route), after the routing).
  returned: stage is step, release, run or route
  type: int
  sample: 30
phase:
  description: Phase after the move (C(Progressing), C(WaitingPromotion), C(Promoting) or C(Failed)).
  returned: stage is step or release
  type: str
position:
  description: Position after the move, to pass to the next step.
  returned: stage is step or release
  type: dict
analyses:
  description: Analyses run in this task.
  returned: stage is step, release or run
  type: int
gate_asks:
  description: Times a gate was asked.
  returned: always
  type: int
timeline:
  description: Report timeline entries of this task (checks, weight changes, gate answers).
  returned: stage is step, release or run
  type: list
  elements: dict
samples:
  description: Metric values seen in this task, for the report's chart.
  returned: stage is step, release or run
  type: list
  elements: dict
evidence:
  description:
    - With O(mode=sequential), each test's evidence at each poll - C(metric), C(test) (C(rate), C(ratio),
      C(latency-limit) or C(latency-order)), C(log_e_value), C(log_boundary) (the test fails when the first reaches
      the second), C(time) and C(weight). Empty in the other modes.
  returned: stage is step, release or run
  type: list
  elements: dict
sequential:
  description: With O(mode=sequential), what the next step's task passes as O(sequential.state); empty otherwise.
  returned: stage is step, release or run
  type: dict
outcome:
  description: With O(stage=confirm_rollout), C(open), C(timed_out) or C(rollback_requested).
  returned: stage is confirm_rollout
  type: str
waited:
  description: With O(stage=confirm_rollout), seconds waited for the gates.
  returned: stage is confirm_rollout
  type: float
written:
  description: With O(stage=report), the files written (those that did not already hold the report).
  returned: stage is report
  type: list
  elements: str
json:
  description: With O(stage=report), the path of the JSON report.
  returned: stage is report
  type: str
html:
  description: With O(stage=report), the path of the HTML report.
  returned: stage is report
  type: str
templates:
  description: With O(stage=templates), the MetricTemplate objects read from the cluster.
  returned: stage is templates
  type: list
  elements: dict
metrics:
  description:
    - With O(stage=preflight), one entry per metric as M(progressive.delivery.prometheus_gate) returns them; C(result)
      is C(error) for a metric its Prometheus cannot answer.
  returned: stage is preflight
  type: list
  elements: dict
passed:
  description: With O(stage=preflight), no metric's query failed.
  returned: stage is preflight
  type: bool
routed_to:
  description: With O(stage=route), where the traffic now goes, as people read it.
  returned: stage is route
  type: str
  sample: iteration 2/10
changes:
  description: With O(stage=route), one line per change made to the route.
  returned: stage is route
  type: list
  elements: str
api_version:
  description: With O(stage=route), the API version of the route.
  returned: stage is route
  type: str
  sample: gateway.networking.k8s.io/v1
route:
  description: With O(stage=route), the kind and name of the route, as people read it.
  returned: stage is route
  type: str
  sample: HTTPRoute podinfo
"""

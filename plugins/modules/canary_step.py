#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_step
short_description: One step of a canary release's workload lifecycle, with durable state and a lock
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - Drives the workloads of one canary the way Flagger's canary controller does, one O(action) per task, so that a
    playbook run can be killed at any point and the next run carries on from what is recorded in the cluster.
  - C(initialize) creates C(<target>-primary) from the target Deployment (selector and pod labels rewritten to
    C(<value>-primary), ConfigMaps and Secrets the pods read copied as C(-primary)), the Services C(<svc>),
    C(<svc>-primary) and C(<svc>-canary), the DestinationRules C(<svc>-primary) and C(<svc>-canary) and the
    VirtualService C(<svc>) (primary 100, canary 0), or adopts a VirtualService the user owns. With
    O(provider=gatewayapi) it creates no DestinationRules and routes with a Gateway API HTTPRoute C(<svc>) instead,
    or adopts an HTTPRoute the user owns. It waits for the primary, points the apex Service at it and scales the
    target to 0. A second call changes nothing.
  - C(detect) hashes the target's pod template and the data of the ConfigMaps/Secrets it reads and compares it
    with the recorded revisions; RV(revision) says C(new_revision), C(nothing_to_do) or C(in_progress). It also
    reads the route's live weights and the replicas of the target and the primary and compares them with the
    recorded position; RV(drift) says what a failed or killed run left out of step and what repairs it. It writes
    nothing.
  - C(start) scales the canary up and waits for it within O(progress_deadline_seconds); a canary that never becomes
    ready is scaled back to 0 and the release is C(Failed) with the reason. When the target changed while its
    previous revision was being analysed, the analysis restarts at weight 0 with no failed checks
    (RV(restarted) is true); route all traffic to the primary before that.
  - C(record) stores one analysis result (weight, metric values and verdicts, webhook outcomes, failed checks).
  - C(promote) copies the target's template and ConfigMaps/Secrets into the primary and waits for its rollout.
    It first saves the primary's pod template and the data of its C(-primary) ConfigMaps (in the state) and
    Secrets (in the Secret C(<name>-canary-previous-secrets), never in the state, a result or a diff).
    When the primary does not become ready the task fails and the phase stays C(Promoting), so the caller leaves
    traffic on the canary. When it is ready the phase is C(Finalising); move all traffic to the primary, then run
    C(finalize), which scales the canary to 0 and ends in C(Succeeded).
  - C(rollback) scales the canary to 0 and ends in C(Failed) with O(reason); during a promotion the data of the
    C(-primary) ConfigMaps and Secrets, then the primary's previous pod template, are restored. The same revision is
    not started again until it changes or C(retry) re-arms it. In a release that is over (C(Initialized),
    C(Succeeded), C(Failed)) the phase stays and a canary left with replicas is scaled to 0 and O(reason), when it
    differs from the stored message, becomes the state's message (the role's drift repair). Route all traffic to
    the primary first.
  - C(update_target) sets O(image) and/or O(pod_annotations) on the target Deployment (not during a promotion), so
    a run can deploy the revision it then releases. Nothing else in the target changes.
  - C(retry) re-arms a C(Failed) release. C(status) returns the stored state and, like C(detect), RV(drift).
    With O(watch=true) it first follows the release, reading the state and the Lease every O(watch_interval), one
    line in RV(watch.lines) per change (printed as it comes when the task runs in the controller's process), until
    the release ends (a phase that is not in progress and no run holding the lock) or O(watch_timeout) passes, which
    fails the task. With O(report_run) it also returns a report kept by C(store_report), in RV(report).
  - C(store_report) keeps O(report) in the ConfigMap C(<name>-canary-reports) under O(run_id), with the reports of
    the last O(reports_kept) runs, gzipped in C(binaryData); C(data.index.json) lists them, oldest first, and
    C(data.latest) names the newest key. The reports stay under 768 KiB together (a ConfigMap holds 1 MiB); a report
    too large for its share loses its chart samples (thinned, then all), then the sequential tests' evidence, then
    the middle of its timeline, and lists what it lost in C(stored.dropped). A report that cannot be stored is a
    warning, never a failure. It takes no lock and changes no phase.
    C(lock) and C(unlock) take and give back the canary's Lease.
  - C(prepare) runs C(lock), C(initialize), C(update_target) (only when given O(image) or O(pod_annotations)) and
    C(detect) in that order with the same options, as one call, and stops where one fails. It returns what C(detect)
    returns, with RV(initialized), RV(initialize_changed) and RV(route_api_version) from C(initialize), the
    changes, warnings and diffs of every step, and the RV(decision) a run takes from there. With O(suspended) it
    only takes the lock.
  - C(delete) is Flagger's C(revertOnDeletion) in any phase. It scales the target back up (to the primary's
    replicas) and waits until it is ready, points the apex Service C(<svc>) at the target's pods and routes the
    VirtualService's primary and canary destinations to the apex host C(<svc>) (only the named route of an adopted
    one), then deletes the primary Deployment and its autoscaler copy, the C(-primary)/C(-canary) Services and
    DestinationRules, the C(-primary) ConfigMaps and Secrets, the saved Secrets, the state and the Lease. The apex
    Service and a generated VirtualService stay, as they carry the traffic. It refuses, changing nothing, when the
    target runs a revision the primary does not (an analysis or a failed release), and when the credentials lack
    the ClusterRole C(progressive-delivery-delete) of C(docs/rbac.yml). Objects not marked as this canary's are
    never deleted. A second call changes nothing.
  - State is a ConfigMap C(<name>-canary-state) (key C(state.json)) written with optimistic concurrency. Each phase
    change emits a Kubernetes Event on the target Deployment.
  - Every object the module creates carries the label C(app.kubernetes.io/managed-by=progressive.delivery) and the
    annotation C(progressive.delivery/canary=<namespace>/<name>); an existing object without them is never changed
    and makes the task fail before anything is written.
  - The lock is a C(coordination.k8s.io/v1) Lease C(<name>-canary-lock) whose C(holderIdentity) is O(run_id).
    Every action renews it when this run holds it and refuses to write while another live run does.
extends_documentation_fragment:
  - progressive.delivery.k8s_auth
  - progressive.delivery.pushgateway
  - progressive.delivery.alerts
options:
  action:
    description:
      - What to do. See the description for each action.
    type: str
    required: true
    choices: [initialize, detect, start, record, promote, finalize, rollback, retry, status, lock, unlock, update_target,
              prepare, store_report, delete]
  name:
    description:
      - Name of the canary (Flagger's C(metadata.name)); names the state ConfigMap and the Lease.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the canary, its target and every object it creates.
    type: str
    required: true
  target:
    description:
      - Name of the target Deployment (Flagger's C(spec.targetRef.name)). Defaults to O(name).
    type: str
  target_kind:
    description:
      - Kind of the target (Flagger's C(spec.targetRef.kind)). Only C(Deployment) is supported; anything else fails
        with an explanation.
    type: str
    default: Deployment
  service:
    description:
      - Flagger's C(spec.service), keys spelled as in the Canary manifest. Needed by C(initialize).
      - Used keys are C(name) (default O(target)), C(port) (required), C(targetPort) (default C(port)), C(portName)
        (default C(http)), C(appProtocol), C(portDiscovery), C(hosts), C(gateways) (default C(mesh)), C(delegation),
        C(match), C(retries), C(timeout), C(headers), C(corsPolicy), C(rewrite), C(trafficPolicy), C(apex),
        C(primary) and C(canary). Other keys are ignored.
      - With O(provider=gatewayapi), C(gatewayRefs) (a list of C({name, namespace, sectionName, port}), required)
        is used too, and C(gateways), C(delegation), C(retries), C(corsPolicy) and C(trafficPolicy) are not (the
        C(canary) role's plan refuses them). C(match) conditions may use C(uri), C(method) (exact), C(headers) and
        C(queryParams) (exact or regex).
      - C(appProtocol) is set on the main port of the three Services.
      - C(delegation=true) generates a delegate VirtualService, without hosts and gateways, for a root
        VirtualService to delegate to; with C(hosts) or C(gateways) the task fails, as Istio would ignore it.
      - C(apex), C(primary) and C(canary) are C({labels, annotations}) for the Services C(<svc>), C(<svc>-primary)
        and C(<svc>-canary); the apex ones also go on the generated VirtualService. Each C(initialize) sets them again
        and removes the ones it set before and that are no longer given; labels and annotations added by others stay.
        The selector label and the ownership marker win over a given key of the same name.
    type: dict
  provider:
    description:
      - The router the canary's traffic goes through, from Flagger's C(spec.provider).
      - C(istio) generates (or adopts) an Istio VirtualService and the DestinationRules C(<svc>-primary) and
        C(<svc>-canary).
      - C(gatewayapi) generates (or adopts) a Gateway API HTTPRoute (C(gateway.networking.k8s.io)), as Flagger's
        C(gatewayapi:v1) provider does, on any implementation of it; no DestinationRules are made. The generated
        HTTPRoute C(<svc>) has C(parentRefs) from C(service.gatewayRefs) (required), C(hostnames) from
        C(service.hosts), and one rule with the C(service.match) conditions (every path when none), the request
        timeout C(service.timeout), header filters from C(service.headers), a URL rewrite from C(service.rewrite),
        and the backends C(<svc>-primary) (weight 100) and C(<svc>-canary) (weight 0) on C(service.port). A later
        C(initialize) sets these again and keeps the weights, other filters (a mirror) and other rules.
    type: str
    choices: [istio, gatewayapi]
    default: istio
  route_api_version:
    description:
      - With O(provider=gatewayapi), the HTTPRoute version to use, C(gateway.networking.k8s.io/v1) (Flagger's
        C(gatewayapi:v1)) or C(gateway.networking.k8s.io/v1beta1) (C(gatewayapi:v1beta1)). When the cluster does not
        serve it, the other one is used with a warning. Defaults to the newest the cluster serves.
      - The version used is recorded in the state (C(route.apiVersion)).
    type: str
    choices: [gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1]
  virtual_service:
    description:
      - Drive a route object the user owns instead of generating C(<svc>), a VirtualService with O(provider=istio)
        or an HTTPRoute with O(provider=gatewayapi).
    type: dict
    suboptions:
      adopt:
        description:
          - Name of the existing VirtualService or HTTPRoute. It is only read by this module; its route is changed by
            the traffic step (M(progressive.delivery.vs_weight) for a VirtualService).
          - An adopted HTTPRoute must have a rule whose C(backendRefs) are the Services C(<svc>-primary) and
            C(<svc>-canary); its other rules, filters, hostnames and parents are never changed.
        type: str
      route:
        description:
          - Name of the HTTP route (C(spec.http[].name)) whose destinations the canary drives. Required with
            O(virtual_service.adopt) for a VirtualService.
          - For an HTTPRoute, the name of the rule (C(spec.rules[].name), Gateway API v1.2 and later) the canary
            drives; without it, the only rule whose backends are the primary and canary Services.
        type: str
  adopt_flagger:
    description:
      - With O(action=initialize), take over the objects Flagger generated for the Canary named O(name) (their
        controller C(ownerReference) is a C(flagger.app) C(Canary) of that name) instead of refusing them - the
        Deployment C(<target>-primary), its autoscaler and C(-primary) config copies, the Services C(<svc>),
        C(<svc>-primary) and C(<svc>-canary), the DestinationRules and the VirtualService C(<svc>), or the HTTPRoute
        C(<svc>) with O(provider=gatewayapi). An apex Service without owner whose selector already points at the
        primary's pods is taken over too.
      - Each object gets the collection's ownership label and annotation and loses its Flagger C(ownerReferences),
        so deleting the Canary or uninstalling Flagger cannot garbage-collect it. The primary keeps its replicas and
        its pods (its pod template is not changed) and the route keeps its weights.
      - When the adopted primary runs another pod spec than the target, the next release analyses the target's.
      - Without it, initialize fails naming this option when it finds objects Flagger generated, and changes nothing.
      - See C(docs/migrating-from-flagger.md) for the whole migration.
    type: bool
    default: false
  autoscaler:
    description:
      - Name of a HorizontalPodAutoscaler (C(autoscaling/v2)) that scales the target (Flagger's
        C(spec.autoscalerRef.name)). It gets a C(-primary) copy that scales the primary.
    type: str
  progress_deadline_seconds:
    description:
      - How long a canary or primary may take to become ready (Flagger's C(spec.progressDeadlineSeconds)).
    type: int
    default: 600
  primary_ready_threshold:
    description:
      - Percent of the primary's updated replicas that must be available for it to count as ready (Flagger's
        C(analysis.primaryReadyThreshold)), in every wait on the primary (C(initialize), C(promote)) and on the target
        before C(delete) gives it the traffic back. Every replica must still be updated.
    type: int
    default: 100
  canary_ready_threshold:
    description:
      - Percent of the canary's updated replicas that must be available for it to count as ready (Flagger's
        C(analysis.canaryReadyThreshold)), in the wait of C(start).
    type: int
    default: 100
  wait_timeout:
    description:
      - Overrides O(progress_deadline_seconds) for the waits of this task.
      - With O(action=start), C(0) scales the canary up without waiting for it; the caller checks readiness itself.
        Other actions always check readiness at least once.
    type: int
  run_id:
    description:
      - Identity of this playbook run, the same for all its tasks; it is the Lease's C(holderIdentity).
      - Defaults to C(awx-job-<JOB_ID>) under AWX, else to the host, pid and start time of the C(ansible-playbook)
        process found among this task's parents. Pass it explicitly when the module runs on a remote host.
    type: str
  holder:
    description:
      - Free text naming this run in lock errors. Defaults to the AWX job id, host and pid.
    type: str
  lease_ttl:
    description:
      - Seconds after the last renewal when another run may take the lock over. Must outlast the longest gap
        between two tasks of a run (an analysis interval plus its webhooks).
    type: int
    default: 120
  lock_wait:
    description:
      - Seconds O(action=lock) and O(action=prepare) wait, trying again every 2 seconds, while another live run holds
        the lock. Any other failure ends the task at once. V(0) refuses a held lock at once.
    type: int
    default: 0
  suspended:
    description:
      - For O(action=prepare), the Canary's C(spec.suspend). When true the call only takes the lock and changes
        nothing, the target included; RV(decision) says so.
      - Refused with any other action.
    type: bool
    default: false
  analysis:
    description:
      - One analysis result, for O(action=record).
      - O(action=rollback) reads only its C(failed_checks), the count of failed checks that led to the rollback, and
        stores it, and its C(metrics) and C(webhooks), the analysis that decided the rollback, which it keeps in the
        rollback's history entry.
    type: dict
    suboptions:
      weight:
        description: Canary weight the analysis ran at.
        type: int
      iteration:
        description:
          - Number of this analysis. Defaults to the stored count plus one; recording the same iteration, weight,
            failed checks and phase again changes nothing, so a resumed run can repeat its last task safely.
        type: int
      metrics:
        description: Metric results, each with C(name), C(value), C(result) and C(reason).
        type: list
        elements: dict
      webhooks:
        description: Webhook outcomes, each with C(name), C(type), C(result) and C(reason).
        type: list
        elements: dict
      failed_checks:
        description: Failed-check count after this analysis. Defaults to the stored count.
        type: int
      phase:
        description: Phase after this analysis.
        type: str
        choices: [Progressing, Waiting, WaitingPromotion]
      summary:
        description: A sentence for the state, the history and the Event.
        type: str
  phase:
    description:
      - With O(action=record), the phase when O(analysis.phase) is not given.
      - With O(action=rollback), the resulting phase; only C(Failed) is accepted.
    type: str
    choices: [Progressing, Waiting, WaitingPromotion, Failed]
  reason:
    description:
      - Why the release is rolled back, for O(action=rollback); stored in the state and the Event.
    type: str
  on_resume:
    description:
      - What RV(resume.action) proposes for a release left in progress by a run that died (its lock expired).
      - C(resume) continues the analysis at the recorded weight, or finishes a promotion that had started.
      - C(rollback) rolls it back, restoring the primary when a promotion had started.
      - Either way, when the target changed since the analysis began, RV(resume.action) is C(restart).
    type: str
    choices: [resume, rollback]
    default: resume
  image:
    description:
      - New container image for O(action=update_target).
    type: str
  container:
    description:
      - Container that gets O(image). Defaults to the first container of the pod template.
    type: str
  pod_annotations:
    description:
      - Pod template annotations to set with O(action=update_target); other annotations are kept.
    type: dict
  history_limit:
    description:
      - How many analysis and transition entries the state keeps.
    type: int
    default: 50
  watch:
    description:
      - With O(action=status), follow the release until it ends, as described above.
    type: bool
    default: false
  watch_interval:
    description:
      - Time between two reads of a watch, in seconds or as a duration such as C(500ms) or C(2s).
    type: raw
    default: 2s
  watch_timeout:
    description:
      - How long a watch may last before the task fails, in seconds or as a duration such as C(30m) or C(1h).
    type: raw
    default: 1h
  report_run:
    description:
      - With O(action=status), the run whose stored report to return in RV(report), or C(latest).
    type: str
  report:
    description:
      - The report to keep with O(action=store_report), the dictionary the C(progressive.delivery.canary) role
        writes as JSON.
    type: dict
  reports_kept:
    description:
      - How many runs' reports O(action=store_report) keeps; the oldest go first.
    type: int
    default: 10
  alerting:
    description:
      - The C(alerting) entry of the plan the P(progressive.delivery.canary_plan#filter) filter builds, with the
        Canary's alerts, the facts of its new-revision alert and the gates whose webhooks set C(muteAlert). When a state
        write changes the phase (new revision, waiting for approval, promoted, rolled back), each alert whose
        severity asks for it is sent through its provider; a delivery that fails is a warning, never a failure.
        See docs/alerts.md.
      - Without it, or without alerts in it, nothing is sent.
    type: dict
notes:
  - Traffic is not shifted by this module. M(progressive.delivery.vs_weight) moves the VirtualService weights;
    O(action=record) stores the weight the analysis ran at.
  - Check mode is supported for every action; the result is the plan, listed in RV(actions). Diff mode shows the
    owned parts of each object before and after.
requirements:
  - kubernetes >= 24.2.0
seealso:
  - module: progressive.delivery.vs_weight
  - module: progressive.delivery.prometheus_gate
"""

EXAMPLES = r"""
- name: Take the canary's lock for this run
  progressive.delivery.canary_step:
    action: lock
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"

- name: Lock, create or check the canary's objects and look for a new revision, in one call
  progressive.delivery.canary_step:
    action: prepare
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    lock_wait: 60
    service:
      port: 9898
  register: prepared

- name: Create the primary, services, destination rules and virtual service
  progressive.delivery.canary_step:
    action: initialize
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    service:
      port: 80
      gateways:
        - public-gateway.istio-system.svc.cluster.local
      hosts:
        - api.example.com

- name: Route with a Gateway API HTTPRoute attached to a shared Gateway (Flagger's provider gatewayapi:v1)
  progressive.delivery.canary_step:
    action: initialize
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    provider: gatewayapi
    route_api_version: gateway.networking.k8s.io/v1
    service:
      port: 80
      hosts:
        - api.example.com
      gatewayRefs:
        - name: public
          namespace: gateways

- name: Is there a new revision?
  progressive.delivery.canary_step:
    action: detect
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
  register: detected

- name: Scale the canary up
  progressive.delivery.canary_step:
    action: start
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    progress_deadline_seconds: 120
  when: detected.revision == 'new_revision'

- name: Record one analysis
  progressive.delivery.canary_step:
    action: record
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    analysis:
      weight: 10
      failed_checks: 0
      metrics:
        - name: request-success-rate
          value: 99.9
          result: pass

- name: Copy the canary into the primary
  progressive.delivery.canary_step:
    action: promote
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"

- name: Take the canary down and give the service back to the target (Flagger's revertOnDeletion)
  progressive.delivery.canary_step:
    action: delete
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"
    service:
      port: 80

- name: Give the lock back
  progressive.delivery.canary_step:
    action: unlock
    name: backend-service
    namespace: prod
    run_id: "{{ canary_run_id }}"

- name: Follow the release until it ends, a line per change
  progressive.delivery.canary_step:
    action: status
    name: backend-service
    namespace: prod
    watch: true
    watch_interval: 2s
    watch_timeout: 1h

- name: Read the report of the last run kept in the cluster
  progressive.delivery.canary_step:
    action: status
    name: backend-service
    namespace: prod
    report_run: latest
  register: stored
"""

RETURN = r"""
phase:
  description: Phase after the action (Flagger's names), empty before initialization.
  returned: always
  type: str
  sample: Progressing
state:
  description:
    - The whole stored state, as kept in the ConfigMap C(<name>-canary-state).
    - Keys include C(phase), C(canaryWeight), C(failedChecks), C(stepIndex), C(iterations), C(lastAppliedSpec),
      C(lastPromotedSpec), C(failedSpec), C(trackedConfigs), C(runId), C(target), C(service), C(virtualService),
      C(route) (C({kind, apiVersion, name, rule, adopted}), the VirtualService or HTTPRoute that routes the canary),
      C(message), C(reason), C(startedAt), C(lastTransitionTime), C(lastUpdateTime), C(primaryTemplateBeforePromotion),
      C(primaryConfigsBeforePromotion) (ConfigMap data and the names of the Secrets saved when a promotion started)
      and C(history).
  returned: always
  type: dict
drift:
  description:
    - For O(action=detect), O(action=prepare) and O(action=status) (once the canary is initialized), the live route
      and workloads against the position the state recorded.
    - For a release that is over, the only safe position is all traffic on the primary and the canary at 0
      replicas. For a release in progress, traffic on a canary with no ready replica is drift, and so is a live
      weight that differs from the recorded one.
  returned: with O(action=detect), O(action=prepare) and O(action=status)
  type: dict
  contains:
    found:
      description: True when the cluster is not where the state says.
      type: bool
    problems:
      description: Each mismatch, in words.
      type: list
      elements: str
    message:
      description: One line for people, what was found and what repairs it; empty without drift.
      type: str
      sample: >-
        Drift on canary prod/app: the state says Failed at 0% (run run-1) but the route VirtualService prod/app
        sends 30% of the requests to the canary, which has 0 of 0 replicas ready. Repair: all traffic to the primary.
    next:
      description:
        - C(none), C(repair) (a release that is over is put back on its safe position), C(wait) (a live run holds
          the lock and drives the traffic), or the RV(resume.action) that takes a release in progress over.
      type: str
    route_to_primary:
      description: All traffic must go to the primary before anything else.
      type: bool
    scale_down:
      description: Then the canary goes to 0 replicas (O(action=rollback) does it for a release that is over).
      type: bool
    recorded:
      description: The recorded C(phase), C(canary_weight), C(step_index), C(run_id) and C(last_update_time).
      type: dict
    live:
      description:
        - C(route) (kind, namespace and name), C(route_error) (why the route could not be read, else null),
          C(match_route) (the A/B match route this collection added, when it is still there, else null),
          C(primary_weight), C(canary_weight) (null when unread), C(canary_replicas), C(canary_ready_replicas),
          C(primary_replicas) and C(primary_ready_replicas).
      type: dict
revision:
  description: For O(action=detect), O(action=prepare) and O(action=start), C(new_revision), C(nothing_to_do) or
    C(in_progress).
  returned: when computed
  type: str
  sample: new_revision
initialized:
  description:
    - For O(action=initialize), true when this call created the primary and the routing for the first time (phase
      C(Initialized)); false when they already existed.
  returned: with O(action=initialize) and O(action=prepare)
  type: bool
  sample: true
initialize_changed:
  description:
    - For O(action=prepare), true when its C(initialize) step created or changed any object.
  returned: with O(action=prepare)
  type: bool
  sample: false
route_api_version:
  description:
    - For O(action=prepare), the apiVersion of the VirtualService or HTTPRoute its C(initialize) step found served;
      empty when that step did not run or failed.
  returned: with O(action=prepare)
  type: str
  sample: networking.istio.io/v1
steps:
  description:
    - For O(action=prepare), the steps that ran, in order; a failed call ends with the step that failed.
  returned: with O(action=prepare)
  type: list
  elements: str
  sample: [lock, initialize, detect]
decision:
  description:
    - For O(action=prepare), what a run does from there, as the canary role takes it. The task prints its
      C(message), as the call ends in the controller's process or once the module has returned elsewhere.
  returned: with O(action=prepare)
  type: dict
  contains:
    path:
      description:
        - V(new) (a new revision to analyse), V(nothing) (no new revision, or a canary just initialized),
          V(suspended), or what to do about a release in progress (V(continue), V(resume), V(restart), V(promote),
          V(finalize), V(rollback)).
      type: str
      sample: new
    message:
      description: The decision as one line.
      type: str
      sample: "New revision 6d5f7c9b8 of prod/backend: starting the canary analysis"
    result:
      description: For a run that ends here (V(nothing), V(suspended)), C(Initialized) or C(NothingToDo); empty otherwise.
      type: str
      sample: ""
    reason:
      description: Why a run ends here; empty otherwise.
      type: str
      sample: ""
restarted:
  description:
    - For O(action=start), true when the target changed during the analysis of its previous revision and the
      analysis restarted at weight 0 with no failed checks.
  returned: with O(action=start)
  type: bool
  sample: false
canary_weight:
  description: The recorded canary weight.
  returned: always
  type: int
  sample: 10
failed_checks:
  description: The recorded failed-check count.
  returned: always
  type: int
  sample: 0
iterations:
  description: The recorded number of analyses of the current release.
  returned: always
  type: int
  sample: 3
checksum:
  description: Hash of the target's pod template and the data of the ConfigMaps/Secrets it reads.
  returned: always
  type: str
  sample: 5f1c0a4e9b7d2c31
tracked_configs:
  description: Hash of each tracked ConfigMap and Secret, keyed C(configmap/<name>) or C(secret/<name>).
  returned: always
  type: dict
lock:
  description: The canary's Lease.
  returned: always
  type: dict
  contains:
    held:
      description: Whether a live run holds it.
      type: bool
    ours:
      description: Whether this run holds it.
      type: bool
    run_id:
      description: The holder's run id.
      type: str
    holder:
      description: The holder's description.
      type: str
    acquired:
      description: When the holder took it.
      type: str
    renewed:
      description: When the holder last renewed it.
      type: str
    age_seconds:
      description: Seconds since it was acquired.
      type: float
    lease_duration_seconds:
      description: The TTL.
      type: int
    expires_in_seconds:
      description: Seconds until another run may take it over.
      type: float
resume:
  description: What this run should do about a release in progress.
  returned: always
  type: dict
  contains:
    needed:
      description: True when another run left a release in progress and its lock is free.
      type: bool
    action:
      description:
        - C(none), C(continue), C(wait), C(resume), C(restart), C(promote), C(finalize) or C(rollback).
        - C(restart) when the target changed while its previous revision was being analysed (only known to actions
          that read the target, such as O(action=detect)); route all traffic to the primary, then O(action=start).
      type: str
    weight:
      description: The canary weight to set before going on (the recorded step, or 0 for a restart or a rollback).
      type: int
    message:
      description: Why the analysis restarts.
      returned: when RV(resume.action) is C(restart)
      type: str
    phase:
      description: The recorded phase.
      type: str
    iterations:
      description: The recorded number of analyses (0 for a restart).
      type: int
    failed_checks:
      description: The recorded failed checks (0 for a restart).
      type: int
    previous_run:
      description: The run id that last wrote the state.
      type: str
    step_index:
      description:
        - The index in the plan's weight steps of the recorded step, -1 before the first step (also for a restart or
          a rollback); null in a state written before the index was kept.
      type: int
run_id:
  description: The run id this task used.
  returned: always
  type: str
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
message:
  description: A sentence about the outcome.
  returned: always
  type: str
watch:
  description: What a watch saw.
  returned: with O(action=status) and O(watch=true)
  type: dict
  contains:
    lines:
      description:
        - One line per change, the newest 1000, each C(HH:MM:SS) (UTC) then the phase, the canary weight, the failed
          checks, the metrics of the last analysis of the release (C(name=value), C((fail)) after a failed one) and
          the lock holder.
      type: list
      elements: str
      sample: ["08:30:49 Progressing, weight 40%, failed checks 0, request-success-rate=100 request-duration=48.06, lock: host vm pid 5061"]
    ended:
      description: True when the release ended; false when the watch timed out.
      type: bool
    timed_out:
      description: The opposite of RV(watch.ended).
      type: bool
    seconds:
      description: How long the watch lasted.
      type: float
    last:
      description: The last line, without its time.
      type: str
report:
  description: The stored report of O(report_run), as the role wrote it (with C(stored.dropped) when it was trimmed).
  returned: with O(action=status) and O(report_run)
  type: dict
report_run:
  description: The run id of RV(report).
  returned: with O(action=status) and O(report_run)
  type: str
stored_reports:
  description:
    - The stored runs, oldest first, each with C(runId), C(key) (in C(binaryData)), C(result), C(reason),
      C(startedAt), C(finishedAt), C(storedAt), C(size) (base64 characters) and C(dropped).
  returned: with O(action=status) and O(report_run)
  type: list
  elements: dict
stored_report:
  description: The index entry of the report just stored (as in RV(stored_reports)) and its C(configMap); null when
    it could not be stored (see the warnings).
  returned: with O(action=store_report)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_module, ensure_kubernetes
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_task import (
    StepOptionError,
    argument_spec,
    check_options,
    run_step,
)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    ensure_kubernetes(module)
    try:
        check_options(module.params)
    except StepOptionError as error:
        module.fail_json(msg=error.message)
    outcome = run_step(module.params, client_from_module(module), module.check_mode, module._diff)
    for warning in outcome.warnings:
        module.warn(warning)
    if outcome.failure is not None:
        module.fail_json(msg=outcome.failure, **outcome.result)
    module.exit_json(**outcome.result)


if __name__ == "__main__":
    main()

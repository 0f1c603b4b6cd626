#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_webhook
short_description: Call a Flagger-compatible canary webhook, smoke test, load test or manual gate
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - POSTs Flagger's webhook payload C({name, namespace, phase, checksum, metadata}) as JSON to O(url) and judges the
    answer as Flagger does, so receivers written for Flagger (its load tester, helm/bats testers, gates, chat
    notifiers) work unchanged.
  - HTTP status 200, 201 and 202 pass. Every other status fails, with the response body (bounded by O(max_body), HTML
    reduced to its text) as the reason.
  - Hooks with side effects (V(pre-rollout), V(rollout), V(post-rollout), V(event)) fail the task when they do not
    pass. Gates (V(confirm-rollout), V(confirm-traffic-increase), V(confirm-promotion)) and V(rollback) only ask a
    question, so a closed gate is an answer, not a failure; see RV(passed), RV(rollback_requested) and RV(outcome).
  - Gates can wait until they open, with a time limit Flagger does not have (O(gate_timeout)) and a choice of what
    a timeout means (O(on_gate_timeout)).
  - Transport errors (connection refused, DNS, connect timeout) are retried O(retries) times with exponential
    backoff. A read timeout is retried only for gates, because a test or load run may already have started.
  - Redirects 307 and 308 to the same host are followed with the payload; 301, 302 and 303 would drop the payload and
    are reported instead. Redirects to another host are refused, so O(headers) never reach a host the task did not name.
  - See the collection's C(docs/webhooks.md) for when the C(progressive.delivery.canary) role calls each type.
requirements:
  - requests
options:
  url:
    description:
      - The webhook address, C(http://) or C(https://), as in a Flagger Canary's C(analysis.webhooks[].url).
      - User name, password and query values in the URL are hidden in the values this module returns and in its
        messages, but Ansible shows the option itself in the task invocation at C(-v); put credentials in O(headers).
    type: str
    required: true
  type:
    description:
      - Flagger's webhook type. It decides whether the call is a gate and whether it runs in check mode.
      - V(rollback) is a gate whose open state (a 2xx answer) means "roll back now".
    type: str
    default: rollout
    choices:
      - confirm-rollout
      - pre-rollout
      - rollout
      - confirm-traffic-increase
      - confirm-promotion
      - post-rollout
      - rollback
      - event
  name:
    description:
      - Canary name sent as C(name) in the payload. Flagger's load tester keys gates by C(name.namespace).
    type: str
    required: true
  namespace:
    description:
      - Canary namespace sent as C(namespace) in the payload.
    type: str
    required: true
  phase:
    description:
      - Flagger canary phase sent as C(phase) in the payload.
      - Flagger sends V(Progressing) for confirm, pre-rollout, rollout and traffic hooks, and the final phase
        (V(Succeeded) or V(Failed)) for post-rollout hooks.
    type: str
    default: Progressing
    choices:
      - Initializing
      - Initialized
      - Waiting
      - Progressing
      - WaitingPromotion
      - Promoting
      - Finalising
      - Succeeded
      - Failed
      - Terminating
      - Terminated
  checksum:
    description:
      - Release checksum sent as C(checksum), so a receiver can tell one release from the next.
    type: str
    default: ''
  metadata:
    description:
      - Sent as C(metadata), a map of strings as in Flagger. Numbers and booleans are sent as strings; nested values
        are refused.
      - For Flagger's load tester, C(type) (V(cmd) runs in the background, V(bash) blocks and fails with the command's
        output) and C(cmd).
      - For V(event) hooks, C(eventMessage) and C(eventType) as Flagger sends them; C(timestamp) (Unix milliseconds) is
        added when missing.
      - Flagger users put credentials here (the load tester's C(headers)), so the values are secret. Ansible shows
        them as C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER) in the task invocation and hides them wherever they appear in
        the result, a receiver's echo included. Values shorter than 6 characters (C(cmd), a count) and values equal
        to O(name), O(namespace), O(phase), O(type) or O(checksum) stay readable. RV(metadata_keys) names what was
        sent.
      - Metadata values still reach the receiver, and may appear in its logs; O(headers) do not.
    type: dict
    default: {}
  timeout:
    description:
      - Time limit for one request, in seconds or as a Go duration string as in a Flagger Canary (V(30s), V(1m),
        V(500ms)). Must be greater than zero.
    type: raw
    default: 10
  retries:
    description:
      - How many times a request that failed in transport is repeated, with exponential backoff (0.5 s, 1 s, 2 s, ...
        at most 5 s). HTTP answers are never retried.
    type: int
    default: 2
  headers:
    description:
      - Extra HTTP request headers, for example an C(Authorization) header. The values are secret and never appear in
        the result or the log.
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the server's TLS certificate. Turn off only for throw-away tests.
    type: bool
    default: true
  ca_cert:
    description:
      - Path to a PEM CA bundle that signed the webhook server's certificate, used instead of the system CA store.
    type: path
  follow_redirects:
    description:
      - Follow 307 and 308 redirects to the same host, keeping the POST and its payload.
    type: bool
    default: true
  wait:
    description:
      - For gates only, ask again every O(gate_poll) until the gate opens (for V(rollback), until a rollback is
        requested) or O(gate_timeout) passes.
    type: bool
    default: false
  rollback_url:
    description:
      - While a confirm gate waits (O(wait=true)), also ask this V(rollback) webhook at every poll, with the same
        payload, phase V(Waiting) and O(headers). A 2xx answer stops the wait with RV(rollback_requested=true) and
        RV(outcome=rollback), as Flagger checks rollback hooks while a canary waits for approval.
      - For Flagger's load tester, its C(/rollback/check) address.
    type: str
  gate_timeout:
    description:
      - How long O(wait) waits, in seconds or as a duration string. V(0) waits without limit, as Flagger does.
    type: raw
    default: 0
  gate_poll:
    description:
      - Pause between two gate checks while waiting, in seconds or as a duration string.
    type: raw
    default: 5
  on_gate_timeout:
    description:
      - What a gate that stays closed for O(gate_timeout) means.
      - V(fail) fails the task.
      - V(rollback) succeeds with RV(rollback_requested=true), so the release is rolled back.
      - V(wait) succeeds with RV(passed=false) and RV(outcome=waiting), so the caller keeps the canary waiting and asks
        again later, as Flagger does while it keeps analysing a canary that waits for promotion.
    type: str
    default: fail
    choices:
      - fail
      - rollback
      - wait
  max_body:
    description:
      - Characters of the response body kept in RV(body) and in failure messages.
    type: int
    default: 1024
attributes:
  check_mode:
    description: Can run in check mode and report what would happen without changing anything.
    support: full
    details:
      - Gates and V(rollback) checks only read, so they run. Hooks with side effects are not sent and are reported
        with RV(skipped=true).
  diff_mode:
    description: Returns details on what is sent (or would be sent) in diff mode.
    support: full
    details:
      - For hooks with side effects, the diff shows the request that is (or would be) sent, without header values.
seealso:
  - name: Flagger webhooks
    description: The webhook types, payload and load tester API this module is compatible with.
    link: https://docs.flagger.app/usage/webhooks
"""

EXAMPLES = r"""
- name: Run a smoke test through Flagger's load tester (blocking bash command)
  progressive.delivery.canary_webhook:
    type: pre-rollout
    url: http://flagger-loadtester.test/
    name: podinfo
    namespace: test
    timeout: 2m
    metadata:
      type: bash
      cmd: "curl -sf http://podinfo-canary.test:9898/healthz"

- name: Start background load for the analysis
  progressive.delivery.canary_webhook:
    type: rollout
    url: http://flagger-loadtester.test/
    name: podinfo
    namespace: test
    metadata:
      type: cmd
      cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"

- name: Wait up to 30 minutes for a person to approve the promotion, then roll back
  progressive.delivery.canary_webhook:
    type: confirm-promotion
    url: http://flagger-loadtester.test/gate/check
    name: podinfo
    namespace: test
    wait: true
    gate_timeout: 30m
    gate_poll: 10s
    on_gate_timeout: rollback
    rollback_url: http://flagger-loadtester.test/rollback/check
  register: promotion_gate

- name: Ask whether someone requested a rollback
  progressive.delivery.canary_webhook:
    type: rollback
    url: http://flagger-loadtester.test/rollback/check
    name: podinfo
    namespace: test
  register: rollback_check

- name: Tell a receiver about a transition, authenticated by a secret header
  progressive.delivery.canary_webhook:
    type: event
    url: https://events.example.com/flagger
    name: podinfo
    namespace: test
    phase: Succeeded
    ca_cert: /etc/pki/internal-ca.pem
    headers:
      Authorization: "Bearer {{ events_token }}"
    metadata:
      eventMessage: "Promotion completed! podinfo.test"
      eventType: Normal
"""

RETURN = r"""
passed:
  description:
    - V(true) when the webhook answered 200-202. For confirm gates this means "open"; for V(rollback) it means a
      rollback was requested (also in RV(rollback_requested)).
    - V(null) when the hook was skipped in check mode.
  returned: always
  type: bool
  sample: true
rollback_requested:
  description:
    - V(true) when a V(rollback) hook answered 2xx, or a gate timed out with O(on_gate_timeout=rollback).
  returned: always
  type: bool
  sample: false
outcome:
  description:
    - V(passed) hook passed or gate open; V(failed) the receiver answered outside 200-202; V(error) no HTTP answer
      (see RV(error_kind)); V(closed) a gate or rollback check said no; V(timeout) a gate stayed closed for
      O(gate_timeout) and the task fails; V(rollback) a rollback is requested; V(waiting) a gate timed out with
      O(on_gate_timeout=wait); V(skipped) not sent in check mode.
  returned: always
  type: str
  sample: passed
status:
  description: HTTP status of the last answer, V(null) when there was none.
  returned: always
  type: int
  sample: 200
reason:
  description: HTTP reason phrase of the last answer.
  returned: always
  type: str
  sample: OK
body:
  description:
    - The last response body, at most O(max_body) characters, HTML reduced to its text, binary bodies summarised.
  returned: always
  type: str
  sample: Approved
body_truncated:
  description: Whether RV(body) was cut.
  returned: always
  type: bool
  sample: false
error:
  description: Why no HTTP answer was received (connection refused, timeout, TLS verification, refused redirect).
  returned: always
  type: str
  sample: connection refused
error_kind:
  description: V(connection), V(connect_timeout), V(timeout), V(tls), V(redirect) or V(request); V(null) with an answer.
  returned: always
  type: str
  sample: connection
elapsed:
  description: Seconds the module spent on the webhook, waiting included.
  returned: always
  type: float
  sample: 0.042
attempts:
  description: HTTP requests sent, retries, redirects and gate checks included.
  returned: always
  type: int
  sample: 1
polls:
  description: Gate checks made (1 for a gate without O(wait), 0 for other hooks).
  returned: always
  type: int
  sample: 4
gate_waited:
  description: Seconds spent waiting for a gate, 0 without O(wait).
  returned: always
  type: float
  sample: 15.02
gate_timed_out:
  description: Whether the gate stayed closed for O(gate_timeout).
  returned: always
  type: bool
  sample: false
skipped:
  description: V(true) when a hook with side effects was not sent because of check mode.
  returned: always
  type: bool
  sample: false
redirected_to:
  description: Address the request was redirected to and answered from, credentials hidden.
  returned: always
  type: str
  sample: https://hooks.example.com/v2/
url:
  description: The webhook address with credentials and query values hidden.
  returned: always
  type: str
  sample: http://flagger-loadtester.test/gate/check
type:
  description: The webhook type.
  returned: always
  type: str
  sample: confirm-promotion
canary:
  description: The canary as C(name.namespace).
  returned: always
  type: str
  sample: podinfo.test
phase:
  description: The phase sent in the payload.
  returned: always
  type: str
  sample: Progressing
metadata_keys:
  description: Names of the metadata entries sent (values are not returned).
  returned: always
  type: list
  elements: str
  sample: [cmd, type]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import hide_url_secrets, keep_readable
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.outcome import refused_result
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.runner import run_webhook
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import CANARY_PHASES, ON_GATE_TIMEOUT, WEBHOOK_TYPES, spec_from_params
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.transport import HAS_REQUESTS, REQUESTS_IMPORT_ERROR


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            type=dict(type="str", default="rollout", choices=list(WEBHOOK_TYPES)),
            name=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            phase=dict(type="str", default="Progressing", choices=list(CANARY_PHASES)),
            checksum=dict(type="str", default=""),
            metadata=dict(type="dict", default={}, no_log=True),
            timeout=dict(type="raw", default=10),
            retries=dict(type="int", default=2),
            headers=dict(type="dict", default={}, no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_cert=dict(type="path"),
            follow_redirects=dict(type="bool", default=True),
            wait=dict(type="bool", default=False),
            rollback_url=dict(type="str"),
            gate_timeout=dict(type="raw", default=0),
            gate_poll=dict(type="raw", default=5),
            on_gate_timeout=dict(type="str", default="fail", choices=list(ON_GATE_TIMEOUT)),
            max_body=dict(type="int", default=1024),
        ),
        supports_check_mode=True,
    )
    hide_url_secrets(module, "url", "rollback_url")
    keep_readable(module, "metadata", public=("name", "namespace", "phase", "type", "checksum"))
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    try:
        spec = spec_from_params(module.params)
    except DeliveryError as exc:
        module.fail_json(msg=f"canary_webhook: {exc.message}", **refused_result(module.params, exc.message))

    run = run_webhook(spec, check_mode=module.check_mode)
    for warning in run.warnings:
        module.warn(warning)
    if module._diff and not spec.is_gate:
        run.result["diff"] = {"before": "", "after": run.diff_after}
    if run.failed:
        module.fail_json(msg=run.msg, **run.result)
    module.exit_json(msg=run.msg, **run.result)


if __name__ == "__main__":
    main()

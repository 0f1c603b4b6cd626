# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger-compatible webhooks: the call a canary_webhook task makes.

The payload, the 200-202 rule and the meaning of each hook type are Flagger's,
so an existing load tester, gate or notification receiver works unchanged.
What is added: bounded retries for transport errors, gates that can time out,
bodies that cannot flood a job log, and secrets that never reach the result.

Options and payload are in ``webhooks/spec.py``, the HTTP call in ``webhooks/transport.py``,
response bodies in ``webhooks/body_summary.py``, result keys in ``webhooks/outcome.py`` and gate
polling in ``webhooks/gate.py``: import each name from there.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.redaction import mask, secret_strings, url_secrets
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.gate import gate_answer, wait_for_gate
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.outcome import WebhookRun, base_result, record_answer
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import WebhookSpec, build_payload, describe_request
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.transport import REDIRECT_STATUSES, Answer, WebhookClient


def run_webhook(
    spec: WebhookSpec,
    check_mode: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WebhookRun:
    """Send the webhook ``spec`` describes (or, for a waiting gate, poll it) and say what the task reports.

    Metadata values, header values and URL credentials are hidden in everything returned, a receiver's echo of
    them included: the analysis puts webhook messages into the report, the state and Kubernetes Events.
    """
    return _without_secrets(_run(spec, check_mode, sleep, clock), spec)


# Values the role itself puts into event metadata, and the payload's own fields: never secret, kept readable.
_PUBLIC_METADATA = ("eventMessage", "eventType", "timestamp")


def webhook_secrets(spec: WebhookSpec) -> set[str]:
    """What a webhook call must never show: its metadata and header values and its URLs' credentials."""
    public = {spec.name, spec.namespace, spec.canary, spec.phase, spec.hook_type, spec.checksum}
    metadata = {key: value for key, value in spec.metadata.items() if key not in _PUBLIC_METADATA}
    found = (secret_strings(metadata) - public) | secret_strings(spec.headers)
    return found | url_secrets(spec.url) | url_secrets(spec.rollback_url)


def _without_secrets(run: WebhookRun, spec: WebhookSpec) -> WebhookRun:
    secrets = webhook_secrets(spec)
    if not secrets:
        return run
    run.result = _masked(run.result, secrets)
    run.msg = mask(run.msg, secrets)
    run.warnings = [mask(warning, secrets) for warning in run.warnings]
    run.diff_after = mask(run.diff_after, secrets)
    return run


def _masked(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, secrets) for item in value]
    return value


def _run(
    spec: WebhookSpec,
    check_mode: bool,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> WebhookRun:
    started = clock()
    payload = build_payload(spec.name, spec.namespace, spec.phase, spec.checksum, spec.metadata, spec.hook_type)
    result = base_result(spec, payload)
    if check_mode and not spec.is_gate:
        result.update(skipped=True, outcome="skipped", passed=None, changed=False)
        message = f"check mode: {spec.hook_type} webhook for {spec.canary} not sent (it has side effects)"
        return WebhookRun(result, False, message, diff_after=describe_request(spec, payload))

    client = WebhookClient(spec, sleep=sleep)
    try:
        if spec.wait:
            return wait_for_gate(spec, client, payload, result, started, sleep, clock)
        answer = client.call(payload)
    finally:
        client.close()
    record_answer(result, answer, client.requests_sent, clock() - started)
    result["polls"] = 1 if spec.is_gate else 0
    if spec.is_gate:
        return gate_answer(spec, answer, result)
    # a receiver that answered, or timed out while working, may have acted; a refused connection did nothing
    result["changed"] = answer.status is not None or answer.error_kind == "timeout"
    sent = describe_request(spec, payload)
    if answer.passed:
        result["outcome"] = "passed"
        return WebhookRun(result, False, f"{spec.hook_type} webhook for {spec.canary} passed (HTTP {answer.status})", diff_after=sent)
    result["outcome"] = "error" if answer.error else "failed"
    return WebhookRun(result, True, _failure_message(spec, answer), diff_after=sent)


def _failure_message(spec: WebhookSpec, answer: Answer) -> str:
    who = f"{spec.hook_type} webhook for canary {spec.canary} at {spec.shown_url}"
    if answer.error_kind in ("timeout",):
        return (
            f"{who} gave no answer within timeout {spec.timeout:g}s. Raise timeout, or make the hook return sooner: a load test "
            "should run in the background (metadata.type: cmd on Flagger's load tester)."
        )
    if answer.error_kind == "tls":
        return f"{who}: {answer.error}."
    if answer.error_kind == "redirect":
        return f"{who}: {answer.error}."
    if answer.error:
        tries = f"after {answer.attempts} attempts" if answer.attempts > 1 else "on the only attempt (retries: 0)"
        return (
            f"{who} could not be reached {tries}: {answer.error}. Check the url and that the receiver runs and is reachable "
            "from the Ansible controller."
        )
    if answer.status in REDIRECT_STATUSES:
        where = f" to {answer.location}" if answer.location else ""
        return (
            f"{who} answered HTTP {answer.status} redirecting{where}. A {answer.status} turns the POST into a GET without the "
            "payload, so it is not followed: set url to the final address."
        )
    body = f": {answer.body}" if answer.body else " with an empty body"
    return f"{who} answered HTTP {answer.status} {answer.reason}".rstrip() + f" (only 200-202 pass){body}"

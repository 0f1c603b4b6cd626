# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Confirm and rollback gates: one question, or polling until the gate opens, a rollback is asked or time runs out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.outcome import WebhookRun, answer_text, record_answer
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import WebhookSpec
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.transport import Answer, WebhookClient


def gate_answer(spec: WebhookSpec, answer: Answer, result: dict[str, Any]) -> WebhookRun:
    """A gate asked once: open or closed is an answer, not a failure, so the task never fails here."""
    warnings: list[str] = []
    if answer.error:
        warnings.append(f"{spec.hook_type} gate for {spec.canary} at {spec.shown_url} could not be asked: {answer.error}")
    if spec.hook_type == "rollback":
        result["rollback_requested"] = answer.passed
        result["outcome"] = "rollback" if answer.passed else ("error" if answer.error else "closed")
        state = "requests a rollback" if answer.passed else "does not request a rollback"
        return WebhookRun(result, False, f"rollback webhook for {spec.canary} {state} ({answer_text(answer)})", warnings)
    result["outcome"] = "passed" if answer.passed else ("error" if answer.error else "closed")
    state = "open" if answer.passed else "closed"
    return WebhookRun(result, False, f"{spec.hook_type} gate for {spec.canary} is {state} ({answer_text(answer)})", warnings)


def wait_for_gate(
    spec: WebhookSpec,
    client: WebhookClient,
    payload: Mapping[str, Any],
    result: dict[str, Any],
    started: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> WebhookRun:
    """Ask the gate every gate_poll seconds until it opens, the rollback hook asks for a rollback, or gate_timeout passes."""
    deadline = started + spec.gate_timeout if spec.gate_timeout else None
    rollback_client = WebhookClient(replace(spec, url=spec.rollback_url, hook_type="rollback"), sleep=sleep) if spec.rollback_url else None
    # Flagger reports a canary held at a gate as Waiting to its rollback hooks.
    rollback_payload = dict(payload, phase="Waiting")
    polls = 0
    try:
        while True:
            answer = client.call(payload)
            polls += 1
            if answer.passed:
                break
            if rollback_client is not None:
                rollback_answer = rollback_client.call(rollback_payload)
                if rollback_answer.passed:
                    return _rolled_back_while_waiting(spec, answer, rollback_answer, result, polls, clock() - started,
                                                      client.requests_sent + rollback_client.requests_sent)
            now = clock()
            if deadline is not None and now >= deadline:
                break
            pause = spec.gate_poll if deadline is None else min(spec.gate_poll, deadline - now)
            sleep(max(pause, 0.0))
    finally:
        if rollback_client is not None:
            rollback_client.close()
    elapsed = clock() - started
    sent = client.requests_sent + (rollback_client.requests_sent if rollback_client is not None else 0)
    record_answer(result, answer, sent, elapsed)
    result.update(polls=polls, gate_waited=round(elapsed, 3))
    if answer.passed:
        if spec.hook_type == "rollback":
            result.update(rollback_requested=True, outcome="rollback")
            return WebhookRun(result, False, f"rollback webhook for {spec.canary} requested a rollback after {elapsed:.1f}s")
        result["outcome"] = "passed"
        return WebhookRun(result, False, f"{spec.hook_type} gate for {spec.canary} opened after {elapsed:.1f}s ({polls} checks)")

    result.update(gate_timed_out=True, passed=False)
    waited = f"{spec.gate_timeout:g}s"
    last = answer_text(answer)
    if spec.on_gate_timeout == "rollback":
        result.update(rollback_requested=True, outcome="rollback")
        return WebhookRun(
            result,
            False,
            f"{spec.hook_type} gate for {spec.canary} stayed closed for {waited}; on_gate_timeout=rollback asks for a rollback (last answer: {last})",
        )
    if spec.on_gate_timeout == "wait":
        result["outcome"] = "waiting"
        return WebhookRun(
            result,
            False,
            f"{spec.hook_type} gate for {spec.canary} still closed after {waited}; on_gate_timeout=wait leaves the canary waiting (last answer: {last})",
        )
    result["outcome"] = "timeout"
    return WebhookRun(result, True, _gate_timeout_message(spec, waited, last))


def _rolled_back_while_waiting(
    spec: WebhookSpec, answer: Answer, rollback_answer: Answer, result: dict[str, Any], polls: int, elapsed: float, sent: int
) -> WebhookRun:
    record_answer(result, answer, sent, elapsed)
    result.update(polls=polls, gate_waited=round(elapsed, 3), passed=False, rollback_requested=True, outcome="rollback")
    return WebhookRun(
        result,
        False,
        f"{spec.hook_type} gate for {spec.canary} was still closed when the rollback webhook {redact_url(spec.rollback_url or '')} "
        f"requested a rollback after {elapsed:.1f}s ({answer_text(rollback_answer)})",
    )


def _gate_timeout_message(spec: WebhookSpec, waited: str, last: str) -> str:
    if spec.hook_type == "rollback":
        return (
            f"rollback webhook for {spec.canary} at {spec.shown_url} did not request a rollback within gate_timeout {waited} "
            f"(last answer: {last}). Use on_gate_timeout: wait to treat silence as 'carry on'."
        )
    open_hint = ""
    parts = urlsplit(spec.url)
    if parts.path.rstrip("/").endswith("/gate/check"):
        base = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/")[: -len("/check")] + "/open", "", ""))
        open_hint = f" Open it with: curl -d '{{\"name\": \"{spec.name}\", \"namespace\": \"{spec.namespace}\"}}' {base} ."
    return (
        f"{spec.hook_type} gate for canary {spec.canary} at {spec.shown_url} stayed closed for gate_timeout {waited} "
        f"(last answer: {last}).{open_hint} Raise gate_timeout, set it to 0 to wait without limit, or choose on_gate_timeout: "
        "rollback or wait."
    )

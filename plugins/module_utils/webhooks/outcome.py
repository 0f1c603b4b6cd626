# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a webhook task reports: the Ansible result keys, and how an answer reads in a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import WebhookSpec
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.transport import Answer


@dataclass
class WebhookRun:
    """What the module reports: Ansible result keys plus whether and why the task fails."""

    result: dict[str, Any]
    failed: bool
    msg: str
    warnings: list[str] = field(default_factory=list)
    diff_after: str = ""


def base_result(spec: WebhookSpec, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Every result key with its value before any request; the module documents each one."""
    return _unsent(spec.hook_type, spec.shown_url, spec.canary, spec.phase, payload["metadata"])


def refused_result(params: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The result of a task whose options were refused before anything was sent: every documented key is there."""
    result = _unsent(params.get("type"), redact_url(str(params.get("url") or "")),
                     "%s.%s" % (params.get("name"), params.get("namespace")), params.get("phase"),
                     params.get("metadata") if isinstance(params.get("metadata"), Mapping) else {})
    result.update(outcome="error", error=reason, error_kind="request")
    return result


def _unsent(hook_type: Any, url: str, canary: str, phase: Any, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "changed": False,
        "type": hook_type,
        "url": url,
        "canary": canary,
        "phase": phase,
        "metadata_keys": sorted(metadata),
        "passed": False,
        "rollback_requested": False,
        "status": None,
        "reason": None,
        "body": "",
        "body_truncated": False,
        "error": None,
        "error_kind": None,
        "elapsed": 0.0,
        "attempts": 0,
        "polls": 0,
        "redirected_to": None,
        "skipped": False,
        "gate_waited": 0.0,
        "gate_timed_out": False,
        "outcome": None,
    }


def record_answer(result: dict[str, Any], answer: Answer, requests_sent: int, elapsed: float) -> None:
    """Copy the last answer into the result; ``attempts`` counts every request sent, redirects and retries included."""
    result.update(
        passed=answer.passed,
        status=answer.status,
        reason=answer.reason or None,
        body=answer.body,
        body_truncated=answer.body_truncated,
        error=answer.error,
        error_kind=answer.error_kind,
        attempts=requests_sent,
        redirected_to=answer.redirected_to,
        elapsed=round(elapsed, 3),
    )


def answer_text(answer: Answer) -> str:
    """An answer as a message fragment: the error, or the status with reason and body."""
    if answer.error:
        return answer.error
    text = f"HTTP {answer.status}"
    if answer.reason:
        text += f" {answer.reason}"
    if answer.body:
        text += f": {answer.body}"
    return text

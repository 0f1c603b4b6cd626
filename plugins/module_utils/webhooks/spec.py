# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Webhook options checked before any request is sent, and the payload Flagger posts.

The payload and the meaning of each hook type are Flagger's, so an existing load tester,
gate or notification receiver works unchanged.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.durations import GO, DurationError, to_seconds
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url

WEBHOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
CONFIRM_TYPES = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion")
# Gates only ask a question, so they are safe to send in check mode and to repeat.
GATE_TYPES = CONFIRM_TYPES + ("rollback",)

CANARY_PHASES = (
    "Initializing",
    "Initialized",
    "Waiting",
    "Progressing",
    "WaitingPromotion",
    "Promoting",
    "Finalising",
    "Succeeded",
    "Failed",
    "Terminating",
    "Terminated",
)
ON_GATE_TIMEOUT = ("fail", "rollback", "wait")


class WebhookInputError(DeliveryError, ValueError):
    """Bad options, found before any request is sent."""


def parse_duration(value: Any, option: str, allow_zero: bool = False) -> float:
    """Seconds from a number or a Go duration string ("30s", "1m30s", "250ms"); see ``durations``."""
    if isinstance(value, bool) or value is None:
        raise WebhookInputError(f"{option} must be a number of seconds or a duration like '30s' or '1m', got {value!r}.")
    try:
        seconds = to_seconds(value, GO)
    except DurationError:
        raise WebhookInputError(
            f"{option}: cannot read {str(value).strip()!r} as a duration. Use seconds (10, 2.5) or Go's duration format as in a "
            "Flagger Canary ('30s', '1m', '1m30s', '500ms')."
        ) from None
    if not math.isfinite(seconds):
        raise WebhookInputError(f"{option} must be a finite duration, got {value!r}.")
    if seconds < 0:
        raise WebhookInputError(f"{option} must not be negative, got {value!r}.")
    if seconds == 0 and not allow_zero:
        raise WebhookInputError(f"{option} must be greater than zero, got {value!r}.")
    return seconds


def validate_url(url: str) -> str:
    """The URL when it is an absolute http(s) URL with a host; an error a person can act on otherwise."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        shown = redact_url(text) if parts.scheme else text
        raise WebhookInputError(
            f"url must start with http:// or https://, got {shown!r}. Webhooks are HTTP POST requests, as in Flagger's "
            "analysis.webhooks[].url (e.g. http://flagger-loadtester.test/)."
        )
    if not parts.hostname:
        raise WebhookInputError(f"url {redact_url(text)!r} has no host name.")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise WebhookInputError(f"url {redact_url(text)!r} has an invalid port: {exc}.") from None
    return text


def normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Flagger's metadata is map[string]string: scalars become strings, anything nested is refused."""
    result: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if isinstance(value, bool):
            result[str(key)] = "true" if value else "false"
        elif value is None:
            result[str(key)] = ""
        elif isinstance(value, (str, int, float)):
            result[str(key)] = str(value)
        else:
            raise WebhookInputError(
                f"metadata.{key} must be a string (Flagger sends metadata as a map of strings), got a {type(value).__name__}. "
                "Encode structured values yourself, e.g. with the to_json filter."
            )
    return result


def normalize_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            raise WebhookInputError(f"headers.{key} must be a string.")
        text = str(value)
        if "\n" in text or "\r" in text:
            raise WebhookInputError(f"headers.{key} must not contain line breaks.")
        result[str(key)] = text
    return result


def build_payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, str],
    hook_type: str,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The JSON body Flagger posts; event hooks carry a millisecond timestamp as Flagger's do."""
    body_metadata = dict(metadata)
    if hook_type == "event" and "timestamp" not in body_metadata:
        body_metadata["timestamp"] = str(now_ms if now_ms is not None else int(time.time() * 1000))
    return {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "checksum": checksum,
        "metadata": body_metadata,
    }


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    hook_type: str
    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: dict[str, str]
    timeout: float
    retries: int
    headers: dict[str, str] = field(repr=False)
    verify: bool | str
    wait: bool
    gate_timeout: float
    gate_poll: float
    on_gate_timeout: str
    max_body: int
    follow_redirects: bool = True
    rollback_url: str | None = None

    @property
    def is_gate(self) -> bool:
        return self.hook_type in GATE_TYPES

    @property
    def canary(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)


def spec_from_params(params: Mapping[str, Any]) -> WebhookSpec:
    """Validate module options into a WebhookSpec; raises WebhookInputError before any request is made."""
    hook_type = params.get("type") or "rollout"
    if hook_type not in WEBHOOK_TYPES:
        raise WebhookInputError(f"type must be one of {', '.join(WEBHOOK_TYPES)}; got {hook_type!r}.")
    phase = params.get("phase") or "Progressing"
    if phase not in CANARY_PHASES:
        raise WebhookInputError(f"phase must be one of Flagger's canary phases ({', '.join(CANARY_PHASES)}); got {phase!r}.")
    for option in ("name", "namespace"):
        if not params.get(option):
            raise WebhookInputError(f"{option} is required: Flagger's payload names the canary by name and namespace.")
    retries = params.get("retries", 2)
    if retries is None or int(retries) < 0:
        raise WebhookInputError(f"retries must be zero or more, got {retries!r}.")
    max_body = params.get("max_body", 1024)
    if max_body is None or int(max_body) < 64:
        raise WebhookInputError(f"max_body must be at least 64 characters, got {max_body!r}.")
    on_gate_timeout = params.get("on_gate_timeout") or "fail"
    if on_gate_timeout not in ON_GATE_TIMEOUT:
        raise WebhookInputError(f"on_gate_timeout must be one of {', '.join(ON_GATE_TIMEOUT)}; got {on_gate_timeout!r}.")
    wait = bool(params.get("wait"))
    if wait and hook_type not in GATE_TYPES:
        raise WebhookInputError(
            f"wait applies to gates ({', '.join(GATE_TYPES)}); a {hook_type} hook is called once. Drop wait or change type."
        )
    verify: bool | str = bool(params.get("validate_certs", True))
    if verify and params.get("ca_cert"):
        verify = str(params["ca_cert"])
    return WebhookSpec(
        url=validate_url(params.get("url") or ""),
        hook_type=hook_type,
        name=str(params["name"]),
        namespace=str(params["namespace"]),
        phase=phase,
        checksum=str(params.get("checksum") or ""),
        metadata=normalize_metadata(params.get("metadata")),
        timeout=parse_duration(params.get("timeout", 10), "timeout"),
        retries=int(retries),
        headers=normalize_headers(params.get("headers")),
        verify=verify,
        wait=wait,
        gate_timeout=parse_duration(params.get("gate_timeout", 0), "gate_timeout", allow_zero=True),
        gate_poll=parse_duration(params.get("gate_poll", 5), "gate_poll"),
        on_gate_timeout=on_gate_timeout,
        max_body=int(max_body),
        follow_redirects=bool(params.get("follow_redirects", True)),
        rollback_url=_rollback_url(params, hook_type, wait),
    )


def _rollback_url(params: Mapping[str, Any], hook_type: str, wait: bool) -> str | None:
    url = params.get("rollback_url")
    if not url:
        return None
    if hook_type not in CONFIRM_TYPES or not wait:
        raise WebhookInputError(
            "rollback_url is asked while a confirm gate waits; it needs type confirm-rollout, confirm-traffic-increase or "
            "confirm-promotion and wait: true."
        )
    return validate_url(url)


def describe_request(spec: WebhookSpec, payload: Mapping[str, Any]) -> str:
    """The request as a person reads it in --diff output; header names only, never their values."""
    lines = [f"POST {spec.shown_url}"]
    lines.extend(f"{name}: <hidden>" for name in sorted(spec.headers))
    lines.append(json.dumps(payload, indent=2, sort_keys=True))
    return "\n".join(lines) + "\n"

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sending a phase change's alert to every alert of the Canary whose severity asks for it.

Called after each state write. A provider that cannot be found, read or reached is a warning in the task's result,
never a failure: the release goes on as if alerting were off. Warnings name the alert and the provider, and show of
the address only its scheme and host, since webhook URLs carry their token in the path.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from ansible_collections.progressive.delivery.plugins.module_utils.alerts import events as ev
from ansible_collections.progressive.delivery.plugins.module_utils.alerts import payloads
from ansible_collections.progressive.delivery.plugins.module_utils.alerts.providers import (
    AlertProviderError,
    Provider,
    find_provider,
    parse_manifests,
)
from ansible_collections.progressive.delivery.plugins.module_utils.alerts.severity import should_alert
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import transport_reason
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

try:
    import requests

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

# Flagger gives a notification 5 seconds.
DEFAULT_TIMEOUT = 5.0

# The alert options of canary_step and canary_analysis (doc fragment ``alerts``).
ALERT_ARG_SPEC: dict[str, dict[str, Any]] = {
    "alert_providers": {"type": "list", "elements": "raw", "no_log": True},
    "alert_validate_certs": {"type": "bool", "default": True},
    "alert_ca_cert": {"type": "path"},
    "alert_timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
}
# canary_step's own: the plan's ``alerting`` entry (canary_analysis reads it from its plan).
ALERTING_ARG_SPEC: dict[str, dict[str, Any]] = {"alerting": {"type": "dict"}}


def where(address: str) -> str:
    """Scheme and host of an address: its path and query may hold the webhook's token."""
    try:
        parts = urlsplit(address)
        host = parts.hostname or "?"
        port = ":%d" % parts.port if parts.port else ""
    except ValueError:
        return "<unparsable address>"
    return "%s://%s%s" % (parts.scheme or "http", host, port)


@dataclass(frozen=True)
class AlertOptions:
    """The Canary's alerts (the plan's ``alerting``) and how to reach their providers."""

    alerts: Sequence[Mapping[str, Any]]
    fields: Sequence[Mapping[str, str]] = ()
    muted: Sequence[str] = ()
    threshold: int | None = None
    providers: Sequence[Any] = field(default_factory=tuple)
    validate_certs: bool = True
    ca_cert: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_params(cls, params: Mapping[str, Any], alerting: Mapping[str, Any] | None = None) -> "AlertOptions | None":
        """The options, or None when the Canary has no alerts: alerting is off."""
        alerting = alerting if alerting is not None else (params.get("alerting") or {})
        alerts = list((alerting or {}).get("alerts") or [])
        if not alerts:
            return None
        return cls(alerts=alerts, fields=list(alerting.get("fields") or []), muted=list(alerting.get("muted") or []),
                   threshold=alerting.get("threshold"), providers=tuple(params.get("alert_providers") or ()),
                   validate_certs=params.get("alert_validate_certs", True) is not False,
                   ca_cert=params.get("alert_ca_cert") or None,
                   timeout=float(params.get("alert_timeout") or DEFAULT_TIMEOUT))


def post(options: AlertOptions, provider: Provider, url: str, body: Mapping[str, Any]) -> str | None:
    """POST one alert; None when delivered, else the reason (without the address)."""
    if not HAS_REQUESTS:
        return "the Python library 'requests' is missing"
    headers = {"Content-Type": "application/json"}
    if provider.token:
        headers["Authorization"] = "Bearer %s" % provider.token
    verify: bool | str = options.ca_cert if options.validate_certs and options.ca_cert else options.validate_certs
    proxies = {"http": provider.proxy, "https": provider.proxy} if provider.proxy else None
    try:
        response = requests.post(url, json=body, headers=headers, timeout=options.timeout, verify=verify,
                                 proxies=proxies, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        return transport_reason(exc)
    if response.status_code // 100 != 2:
        detail = " ".join((response.text or "").split())[:200]
        return "HTTP %d%s" % (response.status_code, " (%s)" % detail if detail else "")
    return None


def send(options: AlertOptions | None, kube: Any, name: str, namespace: str, before: str, state: st.CanaryState,
         clock: Callable[[], float] = time.time) -> list[str]:
    """Send the alert of the change from phase ``before`` to ``state.phase``; the warnings of what failed."""
    if options is None:
        return []
    event = ev.transition_event(before, state, options.threshold, options.muted)
    if event is None:
        return []
    message = payloads.Message(name=name, namespace=namespace, text=event.message, severity=event.severity,
                               fields=list(options.fields) if event.with_fields else [], phase=event.phase,
                               checksum=state.last_applied_spec or "", event_type=event.event_type,
                               timestamp_ms=int(clock() * 1000))
    warnings: list[str] = []
    try:
        given = parse_manifests(options.providers)
    except AlertProviderError as exc:
        return ["alerts were not sent: %s" % exc.message]
    for alert in options.alerts:
        if not should_alert(str(alert.get("severity") or "info"), event.severity):
            continue
        ref = alert.get("provider") or {}
        what = "alert %r (%s)" % (alert.get("name"), event.message)
        try:
            provider = find_provider(given, str(ref.get("name")), str(ref.get("namespace")), kube)
            url, body = payloads.build(provider.type, provider.address, message, provider.channel, provider.username,
                                       str(alert.get("name")))
        except AlertProviderError as exc:
            warnings.append("%s was not sent: %s" % (what, exc.message))
            continue
        except ValueError as exc:
            warnings.append("%s was not sent: AlertProvider %s/%s: %s" % (what, ref.get("namespace"), ref.get("name"), exc))
            continue
        problem = post(options, provider, url, body)
        if problem:
            warnings.append("%s was not sent through %s to %s: %s" % (what, provider.label, where(url), problem))
    return warnings

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger-compatible webhooks: validation, payloads, the HTTP call and gate polling.

The payload, the 200-202 rule and the meaning of each hook type are Flagger's,
so an existing load tester, gate or notification receiver works unchanged.
What is added: bounded retries for transport errors, gates that can time out,
bodies that cannot flood a job log, and secrets that never reach the result.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

try:
    import requests

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

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
SIDE_EFFECT_TYPES = ("pre-rollout", "rollout", "post-rollout", "event")

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

PASSING_STATUSES = range(200, 203)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# 301/302/303 turn a POST into a bodiless GET, which no webhook receiver understands.
BODY_PRESERVING_REDIRECTS = (307, 308)
MAX_REDIRECTS = 5
# Enough to summarise an HTML error page; a webhook answering megabytes is cut off unread.
READ_LIMIT_BYTES = 64 * 1024
BACKOFF_BASE = 0.5
BACKOFF_CAP = 5.0
USER_AGENT = "progressive.delivery-webhook/0.1"

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_HTML_HINT = re.compile(r"^\s*(<!doctype html|<html|<head|<body|<\?xml)", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_DROP = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class WebhookInputError(ValueError):
    """Bad options, found before any request is sent."""


# ---------------------------------------------------------------- validation


def parse_duration(value: Any, option: str, allow_zero: bool = False) -> float:
    """Seconds from a number or a Go duration string ("30s", "1m30s", "250ms")."""
    if isinstance(value, bool) or value is None:
        raise WebhookInputError(f"{option} must be a number of seconds or a duration like '30s' or '1m', got {value!r}.")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        seconds = _parse_duration_text(text, option)
    if not math.isfinite(seconds):
        raise WebhookInputError(f"{option} must be a finite duration, got {value!r}.")
    if seconds < 0:
        raise WebhookInputError(f"{option} must not be negative, got {value!r}.")
    if seconds == 0 and not allow_zero:
        raise WebhookInputError(f"{option} must be greater than zero, got {value!r}.")
    return seconds


def _parse_duration_text(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    sign = 1.0
    body = text
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    position = 0
    total = 0.0
    for match in _GO_DURATION.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise WebhookInputError(
            f"{option}: cannot read {text!r} as a duration. Use seconds (10, 2.5) or Go's duration format as in a Flagger "
            "Canary ('30s', '1m', '1m30s', '500ms')."
        )
    return sign * total


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


def redact_url(url: str) -> str:
    """The URL without user:password and with query values hidden, fit for results and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = urlencode([(key, "***") for key, _value in parse_qsl(query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


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


# ---------------------------------------------------------------- responses


def is_passing_status(status: int | None) -> bool:
    """Flagger's rule: 200, 201 and 202 pass; every other status (other 2xx included) does not."""
    return status is not None and status in PASSING_STATUSES


def summarize_body(raw: bytes, content_type: str | None, max_body: int, total_length: int | None) -> tuple[str, bool]:
    """A short, printable rendering of a response body and whether it was cut.

    total_length is the body's full size when known; None means more was sent than was read.
    """
    incomplete = total_length is None or total_length > len(raw)
    size = f"{total_length} bytes in all" if total_length is not None else f"more than {len(raw)} bytes"
    if not raw:
        return "", False
    if b"\x00" in raw[:1024]:
        return f"<binary body, {size}>", False
    charset = "utf-8"
    match = re.search(r"charset=([\w.-]+)", content_type or "", re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    if "html" in (content_type or "").lower() or _HTML_HINT.match(text):
        text = _html_to_text(text)
    text = _CONTROL.sub("", text).strip()
    if not incomplete and len(text) <= max_body:
        return text, False
    suffix = f" ... [cut, {size}]"
    return text[: max(max_body - len(suffix), 0)].rstrip() + suffix, True


def _html_to_text(text: str) -> str:
    title_match = _HTML_TITLE.search(text)
    title = _WHITESPACE.sub(" ", html.unescape(title_match.group(1))).strip() if title_match else ""
    stripped = _HTML_DROP.sub(" ", text)
    stripped = _WHITESPACE.sub(" ", html.unescape(_HTML_TAG.sub(" ", stripped))).strip()
    if title and not stripped.startswith(title):
        return f"HTML page '{title}': {stripped}" if stripped else f"HTML page '{title}'"
    return f"HTML page: {stripped}" if stripped else "HTML page without text"


# ---------------------------------------------------------------- HTTP


@dataclass
class Answer:
    """One webhook request's outcome after retries and redirects."""

    status: int | None = None
    reason: str = ""
    body: str = ""
    body_truncated: bool = False
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    redirected_to: str | None = None
    location: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and is_passing_status(self.status)


class _RedirectRefused(Exception):
    pass


class WebhookClient:
    """Sends one payload with Flagger's semantics; transport errors are retried with backoff."""

    def __init__(self, spec: WebhookSpec, sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self.sleep = sleep
        self.requests_sent = 0
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT})
        if spec.verify is False:
            try:
                from urllib3.exceptions import InsecureRequestWarning
                import urllib3

                urllib3.disable_warnings(InsecureRequestWarning)
            except ImportError:
                pass

    def close(self) -> None:
        self.session.close()

    def call(self, payload: Mapping[str, Any]) -> Answer:
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        answer = Answer()
        # A read timeout means the receiver may already be running the hook; only questions are safe to repeat.
        retry_read_timeouts = self.spec.is_gate
        for attempt in range(self.spec.retries + 1):
            if attempt:
                self.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
            answer = Answer(attempts=attempt + 1)
            try:
                self._post_following_redirects(data, answer)
                return answer
            except _RedirectRefused as exc:
                answer.error, answer.error_kind = str(exc), "redirect"
                return answer
            except requests.exceptions.SSLError as exc:
                answer.error, answer.error_kind = self._tls_message(exc), "tls"
                return answer
            except requests.exceptions.ConnectTimeout:
                answer.error, answer.error_kind = f"no connection within {self.spec.timeout:g}s", "connect_timeout"
            except requests.exceptions.ReadTimeout:
                answer.error, answer.error_kind = f"no answer within timeout {self.spec.timeout:g}s", "timeout"
                if not retry_read_timeouts:
                    return answer
            except requests.exceptions.ConnectionError as exc:
                answer.error, answer.error_kind = _connection_reason(exc), "connection"
            except requests.exceptions.RequestException as exc:
                answer.error, answer.error_kind = f"request failed: {_first_line(exc)}", "request"
                return answer
        return answer

    def _post_following_redirects(self, data: bytes, answer: Answer) -> None:
        url = self.spec.url
        for _hop in range(MAX_REDIRECTS + 1):
            self.requests_sent += 1
            response = self.session.post(
                url,
                data=data,
                headers=dict(self.spec.headers, **{"Content-Type": "application/json"}),
                timeout=(self.spec.timeout, self.spec.timeout),
                verify=self.spec.verify,
                allow_redirects=False,
                stream=True,
            )
            try:
                if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                    target = urljoin(url, response.headers["Location"])
                    answer.location = redact_url(target)
                    if self._may_follow(response.status_code, url, target):
                        url = target
                        answer.redirected_to = redact_url(target)
                        continue
                self._read(response, answer)
                return
            finally:
                response.close()
        raise _RedirectRefused(f"more than {MAX_REDIRECTS} redirects, last to {redact_url(url)}")

    def _may_follow(self, status: int, source: str, target: str) -> bool:
        if not self.spec.follow_redirects or status not in BODY_PRESERVING_REDIRECTS:
            return False
        before, after = urlsplit(source), urlsplit(target)
        if (before.hostname or "").lower() != (after.hostname or "").lower():
            # headers often carry credentials; they must not travel to a host the user did not name.
            raise _RedirectRefused(
                f"answered {status} redirecting to another host ({redact_url(target)}); webhook headers are only sent to the "
                "host in url. Set url to the new address if it is trusted"
            )
        if before.scheme == "https" and after.scheme != "https":
            raise _RedirectRefused(f"answered {status} redirecting from https to plain http ({redact_url(target)}); refused")
        return True

    def _read(self, response: Any, answer: Answer) -> None:
        answer.status = response.status_code
        answer.reason = response.reason or ""
        # Flagger's timeout bounds the whole call, so a receiver trickling a body does not hold the run either.
        deadline = time.monotonic() + self.spec.timeout
        chunks: list[bytes] = []
        received = 0
        complete = True
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            received += len(chunk)
            if received >= READ_LIMIT_BYTES or time.monotonic() > deadline:
                complete = False
                break
        raw = b"".join(chunks)[:READ_LIMIT_BYTES]
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit():
            total: int | None = int(declared)
        else:
            total = received if complete else None
        answer.body, answer.body_truncated = summarize_body(raw, response.headers.get("Content-Type"), self.spec.max_body, total)

    def _tls_message(self, exc: Exception) -> str:
        reason = _first_line(exc)
        if self.spec.verify is True:
            hint = (
                "The server's certificate is not trusted by the system CA store. Give the CA bundle that signed it in ca_cert, "
                "or, only for a throw-away test, set validate_certs: false"
            )
        else:
            hint = f"Check that ca_cert ({self.spec.verify}) is the CA that signed the server's certificate and that the host name matches"
        return f"TLS verification failed ({reason}). {hint}"


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found (DNS)"),
        ("nodename nor servname", "host name not found (DNS)"),
        ("Temporary failure in name resolution", "host name not found (DNS)"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
        ("Connection reset", "connection reset by the server"),
        ("Connection aborted", "connection aborted"),
    ):
        if needle in text:
            return reason
    return f"connection failed: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else exc.__class__.__name__
    return line if len(line) <= 300 else line[:297] + "..."


# ---------------------------------------------------------------- the run


@dataclass
class WebhookRun:
    """What the module reports: Ansible result keys plus whether and why the task fails."""

    result: dict[str, Any]
    failed: bool
    msg: str
    warnings: list[str] = field(default_factory=list)
    diff_after: str = ""


def run_webhook(
    spec: WebhookSpec,
    check_mode: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WebhookRun:
    started = clock()
    payload = build_payload(spec.name, spec.namespace, spec.phase, spec.checksum, spec.metadata, spec.hook_type)
    result = _base_result(spec, payload)
    if check_mode and not spec.is_gate:
        result.update(skipped=True, outcome="skipped", passed=None, changed=False)
        message = f"check mode: {spec.hook_type} webhook for {spec.canary} not sent (it has side effects)"
        return WebhookRun(result, False, message, diff_after=describe_request(spec, payload))

    client = WebhookClient(spec, sleep=sleep)
    try:
        if spec.wait:
            return _wait_for_gate(spec, client, payload, result, started, sleep, clock)
        answer = client.call(payload)
    finally:
        client.close()
    _record_answer(result, answer, client.requests_sent, clock() - started)
    result["polls"] = 1 if spec.is_gate else 0
    if spec.is_gate:
        return _gate_answer(spec, answer, result)
    # a receiver that answered, or timed out while working, may have acted; a refused connection did nothing
    result["changed"] = answer.status is not None or answer.error_kind == "timeout"
    sent = describe_request(spec, payload)
    if answer.passed:
        result["outcome"] = "passed"
        return WebhookRun(result, False, f"{spec.hook_type} webhook for {spec.canary} passed (HTTP {answer.status})", diff_after=sent)
    result["outcome"] = "error" if answer.error else "failed"
    return WebhookRun(result, True, _failure_message(spec, answer), diff_after=sent)


def describe_request(spec: WebhookSpec, payload: Mapping[str, Any]) -> str:
    """The request as a person reads it in --diff output; header names only, never their values."""
    lines = [f"POST {spec.shown_url}"]
    lines.extend(f"{name}: <hidden>" for name in sorted(spec.headers))
    lines.append(json.dumps(payload, indent=2, sort_keys=True))
    return "\n".join(lines) + "\n"


def _base_result(spec: WebhookSpec, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "changed": False,
        "type": spec.hook_type,
        "url": spec.shown_url,
        "canary": spec.canary,
        "phase": spec.phase,
        "metadata_keys": sorted(payload["metadata"]),
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


def _record_answer(result: dict[str, Any], answer: Answer, requests_sent: int, elapsed: float) -> None:
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


def _gate_answer(spec: WebhookSpec, answer: Answer, result: dict[str, Any]) -> WebhookRun:
    warnings: list[str] = []
    if answer.error:
        warnings.append(f"{spec.hook_type} gate for {spec.canary} at {spec.shown_url} could not be asked: {answer.error}")
    if spec.hook_type == "rollback":
        result["rollback_requested"] = answer.passed
        result["outcome"] = "rollback" if answer.passed else ("error" if answer.error else "closed")
        state = "requests a rollback" if answer.passed else "does not request a rollback"
        return WebhookRun(result, False, f"rollback webhook for {spec.canary} {state} ({_answer_text(answer)})", warnings)
    result["outcome"] = "passed" if answer.passed else ("error" if answer.error else "closed")
    state = "open" if answer.passed else "closed"
    return WebhookRun(result, False, f"{spec.hook_type} gate for {spec.canary} is {state} ({_answer_text(answer)})", warnings)


def _wait_for_gate(
    spec: WebhookSpec,
    client: WebhookClient,
    payload: Mapping[str, Any],
    result: dict[str, Any],
    started: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> WebhookRun:
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
    _record_answer(result, answer, sent, elapsed)
    result.update(polls=polls, gate_waited=round(elapsed, 3))
    if answer.passed:
        if spec.hook_type == "rollback":
            result.update(rollback_requested=True, outcome="rollback")
            return WebhookRun(result, False, f"rollback webhook for {spec.canary} requested a rollback after {elapsed:.1f}s")
        result["outcome"] = "passed"
        return WebhookRun(result, False, f"{spec.hook_type} gate for {spec.canary} opened after {elapsed:.1f}s ({polls} checks)")

    result.update(gate_timed_out=True, passed=False)
    waited = f"{spec.gate_timeout:g}s"
    last = _answer_text(answer)
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
    _record_answer(result, answer, sent, elapsed)
    result.update(polls=polls, gate_waited=round(elapsed, 3), passed=False, rollback_requested=True, outcome="rollback")
    return WebhookRun(
        result,
        False,
        f"{spec.hook_type} gate for {spec.canary} was still closed when the rollback webhook {redact_url(spec.rollback_url or '')} "
        f"requested a rollback after {elapsed:.1f}s ({_answer_text(rollback_answer)})",
    )


def _answer_text(answer: Answer) -> str:
    if answer.error:
        return answer.error
    text = f"HTTP {answer.status}"
    if answer.reason:
        text += f" {answer.reason}"
    if answer.body:
        text += f": {answer.body}"
    return text


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

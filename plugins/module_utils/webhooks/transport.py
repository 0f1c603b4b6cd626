# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One webhook request with Flagger's 200-202 rule, sent with bounded retries, careful redirects and TLS, and a bounded read."""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urljoin, urlsplit

from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.body_summary import summarize_body
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import WebhookSpec

try:
    import requests

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

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


def is_passing_status(status: int | None) -> bool:
    """Flagger's rule: 200, 201 and 202 pass; every other status (other 2xx included) does not."""
    return status is not None and status in PASSING_STATUSES


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

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus HTTP API client with errors sorted by what a person must do about them."""

from __future__ import annotations

import json
import math
import re
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url

try:
    import requests

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()


# Resolved here rather than with an argument-spec fallback so the same rule applies to
# every caller (modules, benchmarks, tests) without importing AnsibleModule machinery.
PROMETHEUS_ENV_VARS: dict[str, str] = {
    "prometheus_url": "PROMETHEUS_URL",
    "prometheus_token": "PROMETHEUS_TOKEN",
}

PROMETHEUS_REQUIRED_TOGETHER = [["prometheus_username", "prometheus_password"], ["prometheus_client_cert", "prometheus_client_key"]]
PROMETHEUS_MUTUALLY_EXCLUSIVE = [["prometheus_token", "prometheus_username"]]


class PrometheusError(DeliveryError):
    """Base class; ``str()`` is a sentence a person can act on."""


class PrometheusConfigError(PrometheusError):
    """The request can never succeed as configured: wrong URL, credentials, or a query Prometheus rejects."""


class PrometheusQueryError(PrometheusConfigError):
    """Prometheus rejected the query itself (HTTP 400/422, errorType bad_data/execution)."""

    def __init__(self, message: str, query: str, error_type: str | None = None, status: int | None = None):
        super().__init__(message)
        self.query = query
        self.error_type = error_type
        self.status = status


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not answer now: unreachable, timed out, 5xx. A check that cannot pass."""


@dataclass
class Series:
    labels: dict[str, str]
    value: float | None = None
    timestamp: float | None = None
    values: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class QueryResult:
    result_type: str
    series: list[Series]

    @property
    def empty(self) -> bool:
        return not self.series

    def finite_values(self) -> list[float]:
        return [s.value for s in self.series if s.value is not None and not math.isnan(s.value)]


def parse_sample_value(raw: Any) -> float:
    """Prometheus encodes sample values as strings, including ``NaN``, ``+Inf`` and ``-Inf``."""
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise PrometheusUnavailable("Prometheus returned a sample value that is not a number: %r" % (raw,)) from None


def parse_query_data(data: dict[str, Any]) -> QueryResult:
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "scalar":
        timestamp, value = result
        return QueryResult("scalar", [Series({}, parse_sample_value(value), float(timestamp))])
    if result_type == "vector":
        series = []
        for item in result or []:
            timestamp, value = item["value"]
            series.append(Series(dict(item.get("metric") or {}), parse_sample_value(value), float(timestamp)))
        return QueryResult("vector", series)
    if result_type == "matrix":
        series = []
        for item in result or []:
            points = [(float(t), parse_sample_value(v)) for t, v in item.get("values") or []]
            last = points[-1] if points else (None, None)
            series.append(Series(dict(item.get("metric") or {}), last[1], last[0], points))
        return QueryResult("matrix", series)
    if result_type == "string":
        raise PrometheusConfigError("the query returns a string, not a number; a metric check needs a scalar or an instant vector")
    raise PrometheusUnavailable("Prometheus answered with an unknown resultType %r" % (result_type,))


def collapse_whitespace(query: str) -> str:
    # Same normalisation Flagger applies before sending, so rendered queries compare equal across tools.
    return " ".join(query.split())


class PrometheusClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        headers: dict[str, str] | None = None,
        ca_cert: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        validate_certs: bool = True,
        timeout: float = 10.0,
    ):
        if not HAS_REQUESTS:
            raise PrometheusConfigError("the Python library 'requests' is required to talk to Prometheus")
        if not url or not url.startswith(("http://", "https://")):
            raise PrometheusConfigError(
                "prometheus_url %r is not an http(s) URL; set prometheus_url or the PROMETHEUS_URL environment variable, "
                "for example http://prometheus.istio-system:9090" % (redact_url(url) if url else url,)
            )
        self.url = url.rstrip("/")
        self.display_url = redact_url(self.url)
        self.timeout = float(timeout)
        self.request_count = 0
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        for name, value in (headers or {}).items():
            self._session.headers[str(name)] = str(value)
        if token:
            self._session.headers["Authorization"] = "Bearer %s" % token
        elif username is not None and password is not None:
            self._session.auth = (username, password)
        self._session.verify = ca_cert if (ca_cert and validate_certs) else bool(validate_certs)
        if client_cert:
            self._session.cert = (client_cert, client_key) if client_key else client_cert

    def close(self) -> None:
        self._session.close()

    def query(self, query: str, time: float | None = None) -> QueryResult:
        params: dict[str, Any] = {"query": collapse_whitespace(query)}
        if time is not None:
            params["time"] = _format_time(time)
        return self._parse(self._get("/api/v1/query", params, query))

    def query_range(self, query: str, start: float, end: float, step: float) -> QueryResult:
        params = {"query": collapse_whitespace(query), "start": _format_time(start), "end": _format_time(end), "step": "%gs" % step}
        return self._parse(self._get("/api/v1/query_range", params, query))

    def _parse(self, data: dict[str, Any]) -> QueryResult:
        try:
            return parse_query_data(data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PrometheusUnavailable("Prometheus at %s answered with a malformed result (%s): %s" % (
                self.display_url, exc.__class__.__name__, _clip(json.dumps(data, default=str)))) from None

    def _get(self, path: str, params: dict[str, Any], query: str) -> dict[str, Any]:
        # Ask Prometheus to give up slightly before we do, so a slow query reports its own timeout.
        params = dict(params, timeout="%gs" % max(self.timeout * 0.9, 0.1))
        url = self.url + path
        self.request_count += 1
        try:
            response = self._session.get(url, params=params, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise PrometheusUnavailable(
                "TLS handshake with Prometheus at %s failed (%s); check prometheus_ca_cert, prometheus_client_cert/key "
                "or prometheus_validate_certs" % (self.display_url, transport_reason(exc))
            ) from None
        except requests.exceptions.Timeout:
            raise PrometheusUnavailable(
                "Prometheus at %s did not answer within %gs; it may be overloaded or the query too expensive "
                "(raise prometheus_timeout or shorten the interval)" % (self.display_url, self.timeout)
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise PrometheusUnavailable(
                "cannot connect to Prometheus at %s (%s); check that it is running and prometheus_url is right" % (self.display_url, transport_reason(exc))
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PrometheusUnavailable("request to Prometheus at %s failed: %s" % (self.display_url, transport_reason(exc))) from None
        return self._interpret(response, query)

    def _interpret(self, response: Any, query: str) -> dict[str, Any]:
        status = response.status_code
        body: dict[str, Any] | None
        try:
            body = response.json()
        except ValueError:
            body = None
        error_text = _error_text(body, response.text)
        error_type = body.get("errorType") if isinstance(body, dict) else None
        if status in (400, 422) or error_type in ("bad_data",):
            raise PrometheusQueryError(
                "Prometheus rejected the query (HTTP %d, %s): %s. Query: %s" % (status, error_type or "error", error_text, collapse_whitespace(query)),
                query,
                error_type,
                status,
            )
        if status in (401, 403):
            raise PrometheusConfigError(
                "Prometheus at %s refused the credentials (HTTP %d): %s; check prometheus_token, prometheus_username/password "
                "or prometheus_headers" % (self.display_url, status, error_text)
            )
        if status == 404:
            raise PrometheusConfigError(
                "no Prometheus API at %s (HTTP 404 for %s); prometheus_url must be the base URL that serves /api/v1/query, "
                "including any path prefix" % (self.display_url, response.request.path_url.split("?")[0] if response.request else "/api/v1/query")
            )
        if status >= 400:
            raise PrometheusUnavailable("Prometheus at %s answered HTTP %d: %s" % (self.display_url, status, error_text))
        if not isinstance(body, dict) or "data" not in body and body.get("status") != "error":
            raise PrometheusUnavailable(
                "the server at %s answered HTTP %d with something that is not a Prometheus API response: %s" % (self.display_url, status, _clip(response.text))
            )
        if body.get("status") == "error":
            raise PrometheusUnavailable("Prometheus at %s reported %s: %s" % (self.display_url, error_type or "an error", error_text))
        data = body["data"]
        if not isinstance(data, dict):
            raise PrometheusUnavailable("Prometheus at %s answered with malformed data: %s" % (self.display_url, _clip(response.text)))
        return data


def resolve_connection(params: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    resolved = dict(params)
    for option, variable in PROMETHEUS_ENV_VARS.items():
        if resolved.get(option) in (None, "") and environ.get(variable):
            resolved[option] = environ[variable]
    return resolved


def client_from_params(params: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> PrometheusClient:
    params = resolve_connection(params, environ)
    return PrometheusClient(
        url=params.get("prometheus_url") or "",
        token=params.get("prometheus_token"),
        username=params.get("prometheus_username"),
        password=params.get("prometheus_password"),
        headers=params.get("prometheus_headers"),
        ca_cert=params.get("prometheus_ca_cert"),
        client_cert=params.get("prometheus_client_cert"),
        client_key=params.get("prometheus_client_key"),
        validate_certs=params.get("prometheus_validate_certs", True),
        timeout=params.get("prometheus_timeout") or 10.0,
    )


def _format_time(value: float) -> str:
    return "%.3f" % value


# urllib3 wraps the socket error in text that also repeats the whole URL with
# the encoded query; the errno sentence is what a person needs.
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_KNOWN_CAUSES = ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "Connection refused", "Connection reset",
                 "Name or service not known", "timed out", "Remote end closed connection")


def transport_reason(exc: BaseException) -> str:
    """The short cause of a transport failure, e.g. ``Connection refused``, never the request URL."""
    text = str(exc)
    for cause in _KNOWN_CAUSES:
        if cause in text:
            return cause
    match = _ERRNO_TEXT.search(text)
    if match:
        return match.group(1).strip()
    return exc.__class__.__name__


def _clip(text: str, limit: int = 300) -> str:
    text = (text or "").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def _error_text(body: Any, raw: str) -> str:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return _clip(raw) or "no details"

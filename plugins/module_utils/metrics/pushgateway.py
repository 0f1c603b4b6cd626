# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pushing series to a Prometheus Pushgateway: the text exposition format and one PUT per grouping key.

A playbook run is a batch job: it cannot be scraped, so it pushes. A PUT replaces every series of its grouping key,
so the last push of a run is what Prometheus sees until the next run pushes.
"""

from __future__ import annotations

import base64
import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import transport_reason
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url

try:
    import requests

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGE = "gauge"
HISTOGRAM = "histogram"

# The Pushgateway connection options of canary_step and canary_analysis (doc fragment ``pushgateway``).
PUSHGATEWAY_ARG_SPEC: dict[str, dict[str, Any]] = {
    "pushgateway_url": {"type": "str"},
    "pushgateway_token": {"type": "str", "no_log": True},
    "pushgateway_ca_cert": {"type": "path"},
    "pushgateway_validate_certs": {"type": "bool", "default": True},
    "pushgateway_timeout": {"type": "float", "default": 5.0},
}


@dataclass(frozen=True)
class Sample:
    """One line of a metric family: ``suffix`` is ``_bucket``, ``_sum`` or ``_count`` for a histogram's parts."""

    labels: Mapping[str, str]
    value: float
    suffix: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str
    samples: Sequence[Sample] = field(default_factory=tuple)


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def exposition(families: Iterable[Family]) -> str:
    """The Prometheus text format (version 0.0.4) of ``families``; a family without samples is left out."""
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.append("# HELP %s %s" % (family.name, escape_help(family.help)))
        lines.append("# TYPE %s %s" % (family.name, family.kind))
        for sample in family.samples:
            labels = ",".join('%s="%s"' % (key, escape_label_value(str(value))) for key, value in sample.labels.items())
            lines.append("%s%s%s %s" % (family.name, sample.suffix, "{%s}" % labels if labels else "",
                                        format_value(sample.value)))
    return "\n".join(lines) + "\n" if lines else ""


def histogram_samples(labels: Mapping[str, str], observations: Sequence[float], buckets: Sequence[float]) -> list[Sample]:
    """The cumulative buckets, sum and count of ``observations``."""
    samples = [Sample(dict(labels, le=format_value(bound)), sum(1 for value in observations if value <= bound), "_bucket")
               for bound in buckets]
    samples.append(Sample(dict(labels, le="+Inf"), len(observations), "_bucket"))
    samples.append(Sample(dict(labels), float(sum(observations)), "_sum"))
    samples.append(Sample(dict(labels), len(observations), "_count"))
    return samples


def grouping_path(grouping: Mapping[str, str]) -> str:
    """``/metrics/job/<job>/<label>/<value>...``; a value with a slash, or an empty one, is sent base64-encoded."""
    if not grouping.get("job"):
        raise ValueError("the grouping key needs a job")
    parts = ["/metrics"]
    for key, value in [("job", grouping["job"])] + [(k, v) for k, v in grouping.items() if k != "job"]:
        value = str(value)
        if "/" in value or value == "":
            encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii") or "="
            parts.append("%s@base64/%s" % (key, encoded))
        else:
            parts.append("%s/%s" % (key, quote(value, safe="")))
    return "/".join(parts)


@dataclass(frozen=True)
class PushOptions:
    url: str
    token: str | None = None
    ca_cert: str | None = None
    validate_certs: bool = True
    timeout: float = 5.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "PushOptions | None":
        """The options, or None when no URL is set: pushing is off."""
        url = (params.get("pushgateway_url") or "").strip()
        if not url:
            return None
        return cls(url=url.rstrip("/"), token=params.get("pushgateway_token") or None,
                   ca_cert=params.get("pushgateway_ca_cert") or None,
                   validate_certs=params.get("pushgateway_validate_certs", True) is not False,
                   timeout=float(params.get("pushgateway_timeout") or 5.0))


def push(options: PushOptions, grouping: Mapping[str, str], families: Iterable[Family]) -> str | None:
    """PUT the families under ``grouping``, replacing what was pushed there before.

    Returns None on success, else a warning that names the Pushgateway (without credentials) and the cause; it never
    raises, since a release must not fail because its metrics could not be pushed.
    """
    where = redact_url(options.url)
    if not HAS_REQUESTS:
        return "release metrics were not pushed to %s: the Python library 'requests' is missing" % where
    try:
        path = grouping_path(grouping)
    except ValueError as exc:
        return "release metrics were not pushed to %s: %s" % (where, exc)
    headers = {"Content-Type": CONTENT_TYPE}
    if options.token:
        headers["Authorization"] = "Bearer %s" % options.token
    verify: bool | str = options.ca_cert if options.validate_certs and options.ca_cert else options.validate_certs
    try:
        response = requests.put(options.url + path, data=exposition(families).encode("utf-8"), headers=headers,
                                timeout=options.timeout, verify=verify, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        return "release metrics were not pushed to %s: %s" % (where, transport_reason(exc))
    if response.status_code // 100 != 2:
        detail = " ".join((response.text or "").split())[:200]
        suffix = " (%s)" % detail if detail else ""
        return "release metrics were not pushed to %s: HTTP %d%s" % (where, response.status_code, suffix)
    return None

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reports of a canary's last runs, kept in its ConfigMap ``<canary>-canary-reports``; this file knows the data only.

Each report is gzipped JSON under ``binaryData.<key>`` (the run id, with anything a ConfigMap key or a kubectl
jsonpath cannot hold replaced by ``_``); ``data.index.json`` lists the stored runs, oldest first, and ``data.latest``
names the newest key. The API server refuses a ConfigMap over 1 MiB, so the reports together stay under
``MAX_TOTAL_CHARS``: a report too large for its share loses detail in a fixed order (see ``TRIMS``) and says what
it lost in ``stored.dropped``; the oldest runs go first when the total is still too large.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import re
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.report.files import report_json

INDEX_KEY = "index.json"
LATEST_KEY = "latest"
LATEST = "latest"
KIND = "canary-reports"
DEFAULT_KEPT = 10
# base64 characters of every stored report together: 1 MiB is the API server's limit for the whole object, and the
# index, the metadata and base64's own overhead need room beside the reports.
MAX_TOTAL_CHARS = 768 * 1024
# A key is at most 253 characters; a run id longer than this is cut, with a hash keeping it unique.
_KEY_LENGTH = 200
_NOT_IN_KEY = re.compile(r"[^-_a-zA-Z0-9]")
# gzip's output must not depend on the time it runs, so storing the same report twice changes nothing.
_GZIP_MTIME = 0


class StoredReportError(ValueError):
    """A stored report or its index cannot be read, or a run asked for is not stored."""


def report_key(run_id: str) -> str:
    """The ``binaryData`` key of ``run_id``'s report: the run id itself when it is a plain name.

    Dots are replaced too, so ``kubectl get -o jsonpath='{.binaryData.<key>}'`` needs no escaping.
    """
    key = _NOT_IN_KEY.sub("_", run_id)[:_KEY_LENGTH]
    if key != run_id or not key:
        key = "%s-%s" % (key, hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8])
    return key


def encode_report(report: Mapping[str, Any]) -> str:
    """The report's JSON, gzipped and base64-encoded as ``binaryData`` holds it."""
    packed = gzip.compress(report_json(report).encode("utf-8"), mtime=_GZIP_MTIME)
    return base64.b64encode(packed).decode("ascii")


def decode_report(text: str, where: str) -> dict[str, Any]:
    try:
        report = json.loads(gzip.decompress(base64.b64decode(text, validate=True)).decode("utf-8"))
    except (ValueError, OSError, EOFError) as exc:
        raise StoredReportError("the report %s is not gzipped JSON (%s): delete that key" % (where, exc)) from None
    if not isinstance(report, dict):
        raise StoredReportError("the report %s is not a JSON object: delete that key" % where)
    return report


def _thin_samples(report: dict[str, Any], keep_one_in: int) -> str | None:
    """Keep one sample in ``keep_one_in`` of each metric, its first and last always; None when nothing went."""
    samples = report.get("samples") or []
    by_metric: dict[Any, list[int]] = {}
    for position, sample in enumerate(samples):
        by_metric.setdefault(sample.get("metric") if isinstance(sample, Mapping) else None, []).append(position)
    kept = set()
    for positions in by_metric.values():
        kept.update(positions[::keep_one_in])
        kept.add(positions[-1])
    if len(kept) == len(samples):
        return None
    report["samples"] = [sample for position, sample in enumerate(samples) if position in kept]
    return "samples: one in %d kept per metric (%d of %d)" % (keep_one_in, len(kept), len(samples))


def _drop(key: str, what: str) -> Callable[[dict[str, Any]], str | None]:
    def trim(report: dict[str, Any]) -> str | None:
        if not report.get(key):
            return None
        count = len(report[key]) if isinstance(report[key], (list, dict)) else 1
        report[key] = [] if isinstance(report[key], list) else None
        return "%s: all %d dropped" % (what, count)
    return trim


def _shorten_timeline(report: dict[str, Any]) -> str | None:
    """Keep the timeline's first 20 and last 80 entries: how the release began and how it ended."""
    timeline = report.get("timeline") or []
    if len(timeline) <= 100:
        return None
    report["timeline"] = timeline[:20] + timeline[-80:]
    return "timeline: %d entries in the middle dropped (the first 20 and the last 80 kept)" % (len(timeline) - 100)


# What a report too large for its share gives up, least useful first: the chart's samples (thinned, then all), the
# sequential tests' evidence, then the middle of the timeline. The outcome, reason and thresholds always stay.
TRIMS: tuple[Callable[[dict[str, Any]], str | None], ...] = (
    lambda report: _thin_samples(report, 2),
    lambda report: _thin_samples(report, 4),
    lambda report: _thin_samples(report, 16),
    _drop("samples", "samples"),
    _drop("evidence", "evidence"),
    _shorten_timeline,
)


def fit_report(report: Mapping[str, Any], limit: int) -> tuple[str, list[str]]:
    """The encoded report within ``limit`` characters, and what was dropped to fit (also in its ``stored.dropped``).

    Raises StoredReportError when even the trimmed report does not fit.
    """
    trimmed = copy.deepcopy(dict(report))
    dropped: list[str] = []
    text = encode_report(trimmed)
    for trim in TRIMS:
        if len(text) <= limit:
            break
        what = trim(trimmed)
        if what:
            dropped.append(what)
            trimmed["stored"] = {"dropped": list(dropped)}
            text = encode_report(trimmed)
    if len(text) > limit:
        raise StoredReportError("the report is %d characters once gzipped and trimmed, over the %d its ConfigMap "
                                "share allows" % (len(text), limit))
    return text, dropped


def parse_index(config_map: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The stored runs, oldest first; an unreadable index is an empty one (the reports are a record, not state)."""
    text = ((config_map or {}).get("data") or {}).get(INDEX_KEY)
    try:
        index = json.loads(text) if text else []
    except ValueError:
        return []
    if not isinstance(index, list):
        return []
    return [entry for entry in index if isinstance(entry, dict) and isinstance(entry.get("key"), str)]


def index_entry(report: Mapping[str, Any], run_id: str, key: str, size: int, dropped: list[str],
                stored_at: str) -> dict[str, Any]:
    return {"runId": run_id, "key": key, "result": report.get("result"), "reason": report.get("reason"),
            "startedAt": report.get("started_at"), "finishedAt": report.get("finished_at"), "storedAt": stored_at,
            "size": size, "dropped": list(dropped)}


def rotate(index: list[dict[str, Any]], entry: dict[str, Any], keep: int,
           max_total: int = MAX_TOTAL_CHARS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The index with ``entry`` last (replacing the same run's), and the entries that no longer fit.

    At most ``keep`` runs stay, and the oldest go while all of them together exceed ``max_total`` characters; the
    new entry always stays.
    """
    kept = [old for old in index if old.get("runId") != entry["runId"] and old.get("key") != entry["key"]]
    kept.append(entry)
    removed: list[dict[str, Any]] = []
    while len(kept) > max(keep, 1) or (len(kept) > 1 and sum(int(e.get("size") or 0) for e in kept) > max_total):
        removed.append(kept.pop(0))
    return kept, removed


def with_report(existing: Mapping[str, Any] | None, report: Mapping[str, Any], run_id: str, keep: int,
                stored_at: str, max_total: int = MAX_TOTAL_CHARS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ConfigMap's ``data`` and ``binaryData`` with ``report`` stored, and its index entry.

    Keys of other runs that are not in the index (runs rotated out, or stored by hand) are removed with the rotated
    runs, so the object never grows past what the index accounts for.
    """
    key = report_key(run_id)
    text, dropped = fit_report(report, max_total // max(keep, 1))
    entry = index_entry(report, run_id, key, len(text), dropped, stored_at)
    index, _removed = rotate(parse_index(existing), entry, keep, max_total)
    binary = dict((existing or {}).get("binaryData") or {})
    binary[key] = text
    kept_keys = {e["key"] for e in index}
    binary = {k: v for k, v in binary.items() if k in kept_keys}
    data = dict((existing or {}).get("data") or {})
    data[INDEX_KEY] = json.dumps(index, sort_keys=True, separators=(",", ":"))
    data[LATEST_KEY] = key
    return {"data": data, "binaryData": binary}, entry


def find_run(index: list[dict[str, Any]], run: str, where: str) -> dict[str, Any]:
    """The index entry of ``run`` (a run id, its key, or ``latest``)."""
    if not index:
        raise StoredReportError("no report is stored in %s: the canary role stores one per run when "
                                "canary_reports_kept is above 0" % where)
    if run == LATEST:
        return index[-1]
    for entry in reversed(index):
        if run in (entry.get("runId"), entry.get("key")):
            return entry
    raise StoredReportError("no report of run %r is stored in %s; stored runs: %s"
                            % (run, where, ", ".join(str(e.get("runId")) for e in index)))


def load_report(config_map: Mapping[str, Any] | None, run: str, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored report of ``run`` and its index entry."""
    entry = find_run(parse_index(config_map), run, where)
    text = ((config_map or {}).get("binaryData") or {}).get(entry["key"])
    if not text:
        raise StoredReportError("the index of %s lists run %s under key %s, but that key holds nothing"
                                % (where, entry.get("runId"), entry["key"]))
    return decode_report(text, "%s of run %s in %s" % (entry["key"], entry.get("runId"), where)), entry

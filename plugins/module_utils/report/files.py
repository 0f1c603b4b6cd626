# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report's JSON and HTML files, written on the controller where the play runs."""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.report.html import render_report_html

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


def _json_safe(value: Any) -> Any:
    # JSON has no NaN or infinity, and Python would write them anyway: a 0/0 success rate or an
    # e-value past a float's range becomes null, which every reader (and the HTML page) takes as unknown.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def report_json(report: Mapping[str, Any]) -> str:
    """The JSON text, laid out as Ansible's ``to_nice_json`` lays it out; never NaN or infinity, which JSON does not have."""
    return json.dumps(_json_safe(report), indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False, default=str,
                      allow_nan=False) + "\n"


def _write(path: str, text: str, check_mode: bool) -> bool:
    """Write ``text`` to ``path`` unless it already holds it; a reader never sees half a file."""
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as current:
            if current.read() == data:
                return False
    except FileNotFoundError:
        pass
    if check_mode:
        return True
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".report-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def write_report_files(report: Mapping[str, Any], path: str, check_mode: bool = False) -> dict[str, Any]:
    """Write ``<path>.json`` and ``<path>.html``, creating their directory; returns what changed and where."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory) and not check_mode:
        os.makedirs(directory, mode=DIRECTORY_MODE, exist_ok=True)
    written = []
    for suffix, text in ((".json", report_json(report)), (".html", render_report_html(report))):
        if _write(path + suffix, text, check_mode):
            written.append(path + suffix)
    return {"changed": bool(written), "written": written, "json": path + ".json", "html": path + ".html"}

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A manifest as the role is given it: YAML text of one or more documents (a Canary and its MetricTemplates), a list
of documents, or one document."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core itself needs PyYAML
    yaml = None


class DocumentError(DeliveryError):
    """Text that is not YAML; the message says where, never what the line holds."""


def load_documents(value: Any, what: str) -> list[Any]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        if yaml is None:
            raise DocumentError("%s is YAML text but PyYAML is not available" % what)
        try:
            return [doc for doc in yaml.safe_load_all(value) if doc is not None]
        except yaml.YAMLError as exc:
            # PyYAML's own message quotes the offending line, which may hold a token: say only where it is.
            mark = getattr(exc, "problem_mark", None)
            where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise DocumentError("%s is not valid YAML%s: %s" % (what, where, problem)) from None
    if isinstance(value, list):
        return list(value)
    return [value]

# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API errors turned into sentences a person can act on.

Pure Python (no kubernetes import) so it can be unit-tested and used by code
that only needs to classify a Status object.
"""

from __future__ import annotations

import json
from typing import Any

# What a person should check for each status, independent of the object.
STATUS_HINTS: dict[int, str] = {
    400: "the request was malformed: check the option values against the API reference",
    401: ("the credentials were rejected: check api_key / the kubeconfig user's token or certificate, "
          "or that the service account token is still valid"),
    404: "check the name and namespace, and that the API (CRD) is installed in the cluster",
    409: "another writer changed the object at the same time or it already exists: re-run to read the latest version",
    410: "the requested resource version is too old: re-run to read the latest version",
    415: "the API does not accept this patch type for this kind (custom resources take merge or JSON patches)",
    422: "the object was rejected as invalid: fix the fields named in the causes",
    429: "the API server is throttling requests: retry later or lower the request rate",
    500: "the API server failed internally: retry, and check the API server's health",
    503: "the API server is unavailable: retry, and check the API server's health",
}

VERB_OF_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class KubeApiError(Exception):
    """An API call that did not succeed, with everything needed to explain it."""

    def __init__(self, status: int | None, reason: str, message: str, body: dict | None = None,
                 method: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or ""
        self.message = message or ""
        self.body = body
        self.method = method
        self.path = path

    @property
    def causes(self) -> list[dict]:
        details = (self.body or {}).get("details") or {}
        return list(details.get("causes") or [])

    def explain(self, action: str, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        """One paragraph: what failed, what the server said, and what to do about it."""
        target = kind
        if name:
            target += " %s/%s" % (namespace, name) if namespace else " " + name
        elif namespace:
            target += " in namespace %s" % namespace
        if self.status is None:
            return "Could not %s %s: %s" % (action, target, self.message)
        said = "HTTP %s %s" % (self.status, self.reason or "")
        text = "Could not %s %s: %s: %s." % (action, target, said.strip(), self.message.rstrip("."))
        causes = self.causes
        if causes:
            text += " Causes: " + "; ".join(
                "%s: %s" % (cause.get("field", "?"), cause.get("message", cause.get("reason", ""))) for cause in causes
            ) + "."
        text += " " + self.hint(action, kind, namespace) + "."
        return text

    def hint(self, action: str, kind: str, namespace: str | None = None) -> str:
        if self.status == 403:
            # The request names the RBAC verb and resource; the action ("acquire", "discover") is only what we meant.
            verb = self.rbac_verb() or (action.split()[0] if action else "get")
            where = "in namespace %s" % namespace if namespace else "cluster-wide"
            return ("the credentials lack permission: grant the '%s' verb on %s %s through a Role/ClusterRole "
                    "(see docs/rbac.yml)" % (verb, self.rbac_resource() or kind, where))
        if self.status == 409 and self.reason == "AlreadyExists":
            return "an object with that name already exists: delete it or choose another name"
        return STATUS_HINTS.get(self.status or 0, "check the API server's logs")

    def _path_parts(self) -> tuple[str, list[str]] | None:
        """(API group, the segments after the version) of the request's path, None when it is not a resource path."""
        segments = [segment for segment in (self.path or "").split("?", 1)[0].split("/") if segment]
        if len(segments) >= 3 and segments[0] == "api":
            return "", segments[2:]
        if len(segments) >= 4 and segments[0] == "apis":
            return segments[1], segments[3:]
        return None

    def rbac_resource(self) -> str | None:
        """The resource as RBAC names it (``leases.coordination.k8s.io``, ``configmaps``), from the request's path."""
        parts = self._path_parts()
        if parts is None:
            return None
        group, rest = parts
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
            rest = rest[2:]
        if not rest:
            return None
        return "%s.%s" % (rest[0], group) if group else rest[0]

    def rbac_verb(self) -> str | None:
        """The RBAC verb of the request: a GET without an object name is a ``list``."""
        verb = VERB_OF_METHOD.get(self.method or "")
        parts = self._path_parts()
        if verb == "get" and parts is not None:
            rest = parts[1][2:] if len(parts[1]) > 2 and parts[1][0] == "namespaces" else parts[1]
            if len(rest) == 1:
                return "list"
        return verb

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return "HTTP %s %s: %s" % (self.status, self.reason, self.message)


def _decode(body: Any) -> dict | None:
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        try:
            decoded = json.loads(body)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def error_from_status(status: int | None, http_reason: str | None, body: Any, method: str | None = None,
                      path: str | None = None) -> KubeApiError:
    """Build an error from an HTTP answer, preferring the Status object the API server sends."""
    decoded = _decode(body)
    if decoded and decoded.get("kind") == "Status":
        return KubeApiError(status=decoded.get("code") or status, reason=decoded.get("reason") or http_reason or "",
                            message=decoded.get("message") or "", body=decoded, method=method, path=path)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:300] + "..."
    return KubeApiError(status=status, reason=http_reason or "", message=text or (http_reason or "no body"),
                        body=None, method=method, path=path)

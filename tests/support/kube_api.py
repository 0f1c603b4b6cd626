"""Pieces of a Kubernetes API server for unit tests against a real local HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from ansible_collections.progressive.delivery.plugins.module_utils.kube import client as kube


def status_body(code: int, reason: str, message: str, **details) -> dict:
    """A ``Status`` object as the API server sends it with an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details, "code": code}


def json_response(body, code: int = 200) -> Response:
    return Response(json.dumps(body), status=code, content_type="application/json")


def client_for(httpserver) -> kube.KubeClient:
    """The collection's client, talking to ``httpserver`` with a bearer token."""
    return kube.client_from_auth(kube.resolve_auth({"host": httpserver.url_for("").rstrip("/"), "api_key": "t"},
                                                   environ={}))

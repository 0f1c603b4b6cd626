"""A small Kubernetes REST client for the lab's own bootstrap, seed and mesh mirror.

The lab talks to the API with `requests` alone, so it needs nothing of the
collection and no client library; the collection's tests use the real
`kubernetes` client against the same server.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import requests


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def resource_path(group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


class Api:
    def __init__(self, url: str, token: str, ca_cert: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would otherwise replace the lab's CA.
        self.session.trust_env = False
        self.session.verify = ca_cert
        self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                content_type: str = "application/json", expect: tuple[int, ...] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body)
        response = self.session.request(method, self.url + path, data=data, params=params, timeout=self.timeout,
                                        headers={"Content-Type": content_type} if data is not None else None)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code not in expect:
            message = payload.get("message") if isinstance(payload, dict) else str(payload)[:200]
            raise ApiError(response.status_code, f"{method} {path}: {message}", payload)
        return payload

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def create(self, path: str, body: dict) -> dict:
        """POST, treating AlreadyExists as success: bootstrap and seeding are idempotent."""
        try:
            return self.request("POST", path, body)
        except ApiError as error:
            if error.status != 409:
                raise
            return error.body if isinstance(error.body, dict) else {}

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def json_patch(self, path: str, operations: list[dict]) -> dict:
        return self.request("PATCH", path, operations, content_type="application/json-patch+json")

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Iterator[dict]:
        """Watch events from `resource_version` on, as decoded dicts, until the server ends the stream."""
        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        with self.session.get(self.url + path, params=params, stream=True, timeout=(self.timeout, timeout_seconds + 30)) as response:
            if response.status_code != 200:
                raise ApiError(response.status_code, f"watch {path}", response.text[:200])
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

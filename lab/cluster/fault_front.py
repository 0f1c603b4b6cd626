"""A TLS front to the real kube-apiserver that answers chosen requests with an error or a delay.

A real API server has no switch for "answer the next two updates with 409";
tests that need one send their module through this front (the lab's
`fault_kubeconfig`) and manage faults at /lab/v1/faults exactly as on the
emulator. Everything else passes through unchanged; watches are not
supported (their answers are read whole).
"""
from __future__ import annotations

import json
import pathlib
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from lab.faults import FaultInjector, faults_endpoint
from lab.http_methods import EveryMethod
from lab.kube import status as st

FAULTS_PATH = "/lab/v1/faults"
_FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "User-Agent")
_OBJECT_PATH = re.compile(r"^/apis?/(?:(?P<group>[^/]+)/)?v[^/]+/(?:namespaces/[^/]+/)?(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?")


def fault_status(code: int, path: str) -> dict:
    """The Status a real API server would send with this code, naming the object the path addresses."""
    match = _OBJECT_PATH.match(path)
    details = None
    if match:
        details = {key: value for key, value in (("name", match.group("name")), ("group", match.group("group")),
                                                 ("kind", match.group("plural"))) if value}
    return st.injected_fault(code, details)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that went away while its request was held (a killed module) is expected here.
        pass


class FaultFront:
    def __init__(self, upstream: str, ca_cert: pathlib.Path, cert: pathlib.Path, key: pathlib.Path, admin_token: str,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = FaultInjector()
        self.admin_token = admin_token
        self._ca_cert = str(ca_cert)
        self._local = threading.local()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self._server = _QuietServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def session(self) -> requests.Session:
        # One session per handler thread: sessions are not shared between threads.
        if not hasattr(self._local, "session"):
            session = requests.Session()
            session.trust_env = False
            session.verify = self._ca_cert
            self._local.session = session
        return self._local.session

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="fault-front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(front: FaultFront) -> type:
    class FrontHandler(EveryMethod, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # pylint: disable=redefined-builtin
            pass

        def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _send_json(self, code: int, body: dict) -> None:
            self._send(code, json.dumps(body).encode())

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if path.rstrip("/") == FAULTS_PATH:
                self._serve_faults(method, body)
                return
            decision = front.faults.decide(method, path)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.status is not None:
                self._send_json(decision.status, fault_status(decision.status, path))
                return
            headers = {name: self.headers[name] for name in _FORWARDED_HEADERS if self.headers.get(name)}
            try:
                answer = front.session().request(method, front.upstream + self.path, data=body or None,
                                                 headers=headers, timeout=60)
            except requests.RequestException as error:
                self._send_json(503, st.status_body(503, "ServiceUnavailable", f"the API server is unreachable: {error}"))
                return
            self._send(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"))

        def _serve_faults(self, method: str, body: bytes) -> None:
            if self.headers.get("Authorization") != f"Bearer {front.admin_token}":
                self._send_json(403, st.status_body(403, "Forbidden", "only the lab's admin manages faults"))
                return
            self._send_json(*faults_endpoint(front.faults, method, body))

    return FrontHandler
